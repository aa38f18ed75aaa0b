"""`dreamer render` of clips (videos, animated GIFs and WebPs): each dreamed coherently into an MP4, WebM or GIF with
its sound (dreamer.dreaming.clips), the clips of a style together, a progress bar over their frames; a render killed
midway resumes when run again."""

import argparse
import math
import os
import sys
from pathlib import Path

from dreamer.errors import DreamerError
from dreamer.files.safety import Inputs, check_outputs
from dreamer.media.clip_writer import CLIP_FORMATS
from dreamer.media.clips import ANIMATION_SUFFIXES, MAX_FPS, is_clip, parse_seconds


def arguments(parser) -> None:
    """The clip options of `dreamer render` on `parser`."""
    parser.add_argument("--seconds", type=_seconds, metavar="A-B",
                        help="a clip's part to dream, in seconds (2-7.5; 2- for the rest)")
    parser.add_argument("--fps", type=_fps, metavar="N",
                        help="resample a clip to N frames a second (default: its own frames and times)")


def _seconds(text: str) -> tuple[float, float]:
    try:
        return parse_seconds(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r}: {exc}") from None


def _fps(text: str) -> float:
    try:
        fps = float(text)
    except ValueError:
        fps = math.nan
    if not 0 < fps <= MAX_FPS:
        raise argparse.ArgumentTypeError(f"{text!r}: use a number of frames a second above 0, at most {MAX_FPS}")
    return fps


def refuse_videos_among_photos(inputs) -> None:
    """A video among photos stops the command on one line (an animated GIF or WebP among photos dreams as a photo,
    its first frame)."""
    photo = next((name for name in inputs if not is_clip(name)), None)
    video = next((name for name in inputs if is_clip(name) and Path(name).suffix.lower() not in ANIMATION_SUFFIXES),
                 None)
    if photo and video:
        raise DreamerError(f"{video} is a clip and {photo} a photo: render clips and photos in separate commands")


def run(args, styles) -> int:
    """Dream every clip of `args.inputs` (all clips) in every style of `styles`, the clips of a style together; 0
    when all were written, a clip that cannot be read stops the command (InputError)."""
    from tqdm import tqdm

    from dreamer.dreaming.clips import render_clips
    from dreamer.options import RenderOptions

    for option, given in (("--zoom", args.zoom), ("--pingpong", args.pingpong), ("--video", args.video),
                          ("--class", args.target_class)):
        if given:
            raise DreamerError(f"{option} is for photos; a clip is dreamed frame by frame into the video -o names")
    many = len(args.inputs) * len(styles) > 1
    outputs = {(name, style.name): _output_path(args, Path(name), style.name, many)
               for name in args.inputs for style in styles}
    read = [*args.inputs, *(path for path in (args.guide, args.style_image) if path)]
    check_outputs([("the clip", path) for path in outputs.values()], Inputs(read), args.overwrite)
    options = RenderOptions(size=args.size, seed=args.seed, batch=args.batch)
    for style in styles:  # the clips of a style dream together (those of one frame size in one batch)
        outs = [outputs[(name, style.name)] for name in args.inputs]
        label = Path(args.inputs[0]).name if len(args.inputs) == 1 else f"{len(args.inputs)} clips"
        with tqdm(desc=f"{label} · {style.name}", unit="frame", leave=False, disable=None) as bar:
            def on_frame(done, total, bar=bar):
                bar.total = max(total or 0, done)
                bar.update(done - bar.n)

            def on_resume(k, kept, total):
                _say_resuming(args.inputs[k], kept, total)
            results = render_clips(args.inputs, style, outs, options, args.seconds, args.fps, on_frame,
                                   on_resume=on_resume)
        for result in results:
            sound = " + sound" if result.audio else ""
            print(f"{result.path}{sound}  {result.frames} frames {result.width}x{result.height}  "
                  f"{result.length:.2f}s long  {result.seconds:.1f}s")
    return 0


def _say_resuming(name: str, kept: int, total: int | None) -> None:
    """A render killed before goes on after the frames it kept (dreamer.dreaming.clip_checkpoints)."""
    from dreamer.dreaming.clips import resuming

    print(f"{name}: {resuming(kept, total)}", file=sys.stderr)


def _output_path(args, clip: Path, style_name: str, many: bool) -> Path:
    """Where a dreamed clip goes: -o itself for one clip and one style, else CLIP-STYLE.mp4 (.gif for an animated
    GIF or WebP) in the folder -o names (or here)."""
    suffix = ".gif" if clip.suffix.lower() in ANIMATION_SUFFIXES else ".mp4"
    name = f"{clip.stem}-{style_name}{suffix}"
    if args.output is None:
        return Path(name)
    output = Path(args.output)
    if many or output.is_dir() or args.output.endswith(("/", os.sep)):
        return output / name
    if output.suffix.lower() not in CLIP_FORMATS:
        raise DreamerError(f"-o {args.output}: a dreamed clip's name ends in {', '.join(CLIP_FORMATS)} (end the "
                           "path in / for a folder)")
    return output
