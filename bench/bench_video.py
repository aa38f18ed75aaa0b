"""How coherent and how fast a dreamed clip is, from one run: a camera panning and zooming over a photo
(art/camera.py) dreamed coherently (dreamer.dreaming.clips) and frame by frame as photos (the flicker baseline).

Prints the warping error (Lai et al. 2018, dreamer.engine.coherence.warping_error) of the coherent dream, the
independent one and the source (the floor), each dream's strength (mean |dream - source|, 0-255), and seconds a
frame after the first against a still render of one frame of the same size (each frame of the independent dream is
one; medians, after a warm-up, as the CPU may be shared).

Run: .venv/bin/python bench/bench_video.py [--style vgg16-eyes] [--size 256] [--frames 24] [--out DIR]
"""

import argparse
import runpy
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from dreamer.engine.backends import activate  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photo", default=str(ROOT / "inputs" / "coffee.jpg"))
    parser.add_argument("--style", default="vgg16-eyes")
    parser.add_argument("--size", type=int, default=256, help="the clip's long side (16:9)")
    parser.add_argument("--frames", type=int, default=24)
    parser.add_argument("--fps", type=float, default=12)
    parser.add_argument("--clip-steps", type=int, help="the style's clip_steps (default: dreamer.dreaming.clips')")
    parser.add_argument("--clip-carry", type=float, help="the style's clip_carry")
    parser.add_argument("--out", help="a folder for the dreamed clips (MP4) and a sheet of frames (PNG)")
    args = parser.parse_args()
    activate()
    from dreamer.dreaming import RenderOptions
    from dreamer.dreaming.clips import dream_clip
    from dreamer.engine.coherence import warping_error
    from dreamer.media.clip_writer import write_clip
    from dreamer.media.clips import open_clip
    from dreamer.networks import get_style
    from dreamer.style import clip_carry, clip_steps

    style = get_style(args.style).replace(clip_steps=args.clip_steps, clip_carry=args.clip_carry)
    options = RenderOptions(size=args.size)
    camera = runpy.run_path(str(ROOT / "art" / "camera.py"))
    size = (args.size, round(args.size * 9 / 16 / 2) * 2)
    with Image.open(args.photo) as photo:
        filmed = camera["film"](photo.convert("RGB"), size, args.frames)
    tmp = Path(tempfile.mkdtemp())
    source_path = tmp / "camera.mp4"
    camera["write"](source_path, filmed, [i / args.fps for i in range(args.frames)], tone_at=0.5)
    clip = open_clip(source_path, args.size)
    timed = list(clip.frames())
    sources = [frame for _, frame in timed]

    list(dream_clip(timed[:2], style, options))  # warm-up: the network loaded, the shapes traced
    runs, seconds = {}, {}
    for name, independent in (("coherent", False), ("independent", True)):
        stamps, frames = [time.perf_counter()], []
        for _, frame in dream_clip(timed, style, options, independent):
            frames.append(frame)
            stamps.append(time.perf_counter())
        runs[name] = frames
        seconds[name] = float(np.median(np.diff(stamps)[1:]))  # a frame after the first (median: the CPU is shared)
    still = float(np.median(np.diff(stamps)))  # each independent frame is a still render of one frame
    errors = {name: warping_error(frames, sources) for name, frames in runs.items()}
    errors["source"] = warping_error(sources, sources)
    strength = {name: float(np.mean([np.abs(f.astype(np.float32) - s) for f, s in zip(frames, sources)]))
                for name, frames in runs.items()}

    print(f"{args.style} at {sources[0].shape[1]}x{sources[0].shape[0]}, {len(sources)} frames of a "
          f"camera panning and zooming over {Path(args.photo).name}; clip_steps {clip_steps(style)} (of "
          f"{style.octaves} octaves x {style.steps} for a still), clip_carry {clip_carry(style):g}")
    print(f"{'':14}{'warping error':>15}{'strength':>10}{'s a frame':>11}")
    for name in ("coherent", "independent"):
        print(f"{name:14}{errors[name]:15.5f}{strength[name]:10.2f}{seconds[name]:11.2f}")
    print(f"{'source':14}{errors['source']:15.5f}")
    print(f"{'still':14}{'':25}{still:11.2f}")
    drift = [np.mean(np.abs(f.astype(np.float32) - s)) for f, s in zip(runs["coherent"], sources)]
    print(f"coherent strength, first frame to last: {drift[0]:.2f} -> {drift[-1]:.2f}")
    print(f"coherent / independent: warping error {errors['coherent'] / errors['independent']:.2f}x (goal <= 0.4), "
          f"strength {strength['coherent'] / strength['independent']:.2f}x (goal >= 0.8); "
          f"a frame after the first {seconds['coherent'] / still:.2f}x a still (goal <= 0.33)")
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        picks = np.linspace(0, len(sources) - 1, 4).round().astype(int)
        rows = [np.concatenate([frames[i] for i in picks], axis=1) for frames in (sources, *runs.values())]
        Image.fromarray(np.concatenate(rows, axis=0)).save(out / "frames.png")
        for name, frames in runs.items():
            write_clip(out / f"{name}.mp4", zip([t for t, _ in timed], frames), lambda: clip.end, clip.audio())
        print(f"wrote {out}/frames.png (rows: source, coherent, independent), coherent.mp4, independent.mp4")


if __name__ == "__main__":
    main()
