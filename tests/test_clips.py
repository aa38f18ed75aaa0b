"""Dreaming clips: coherence measured on a camera moving over a real photo (art/camera.py: the motion is known),
clips dreamed together as each alone, and `dreamer render CLIP` through its real entry point on clips written by
PyAV, read back by PyAV and Pillow: frames, times, sound, rotation, GIFs, and bad clips refused on one line with
nothing written."""

import runpy
import subprocess

import av
import imageio_ffmpeg
import numpy as np
import pytest
from conftest import REPO
from PIL import Image

from dreamer.cli import main

CAMERA = runpy.run_path(str(REPO / "art" / "camera.py"))
TINY = ["--style", "vgg16-textures", "--size", "64", "--octaves", "1", "--steps", "2"]
FPS = 12
FRAME = 1 / FPS  # "within a frame"


def filmed(count=8, size=(96, 60), photo="coffee.jpg"):
    with Image.open(REPO / "inputs" / photo) as image:
        return CAMERA["film"](image.convert("RGB"), size, count)


def write_source(path, times=None, tone_at=None, count=8, end=None, size=(96, 60)):
    """A clip of the camera over coffee.jpg at `times` (default: `count` frames at FPS), with a tone from
    `tone_at`."""
    times = times or [i / FPS for i in range(count)]
    CAMERA["write"](path, filmed(len(times), size), times, tone_at, end)
    return path


def frame_times(path) -> list[float]:
    with av.open(str(path)) as container:
        return sorted(round(frame.time, 3) for frame in container.decode(video=0))


def length(path) -> float:
    """Where the video stream ends: the largest packet pts + duration, in seconds."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return max(float((p.pts + p.duration) * p.time_base) for p in container.demux(stream) if p.pts is not None)


def onset(path) -> float:
    """When the sound first gets loud, in seconds."""
    with av.open(str(path)) as container:
        for frame in container.decode(audio=0):
            loud = np.flatnonzero(np.abs(frame.to_ndarray()[0]) > 0.1)
            if len(loud):
                return frame.time + loud[0] / frame.sample_rate
    raise AssertionError(f"{path} has no loud sound")


def codecs(path) -> list[str]:
    with av.open(str(path)) as container:
        return [stream.codec_context.name for stream in container.streams]


def test_a_coherent_dream_flickers_far_less_than_frames_dreamed_alone_and_is_as_strong():
    from dreamer.engine.backends import activate

    activate()
    from dreamer.dreaming import RenderOptions
    from dreamer.dreaming.clips import dream_clip
    from dreamer.engine.coherence import warping_error
    from dreamer.networks import get_style

    sources = filmed(10, (96, 60), "chelsea.jpg")  # the camera pans right and zooms in
    timed = [(i / FPS, frame) for i, frame in enumerate(sources)]
    style = get_style("vgg16-textures").replace(octaves=2, steps=6, every=6)  # 2 steps a frame after the first
    runs = {alone: [frame for _, frame in dream_clip(timed, style, RenderOptions(size=96), alone)]
            for alone in (False, True)}
    coherent, independent = (warping_error(runs[alone], sources) for alone in (False, True))
    strength = [np.mean([np.abs(d.astype(float) - s) for d, s in zip(runs[alone], sources)]) for alone in (False, True)]
    assert warping_error(sources, sources) < coherent < 0.4 * independent  # measured 0.23x at this scale
    assert strength[0] >= 0.8 * strength[1]
    assert np.array_equal(runs[False][0], runs[True][0])  # the first frame dreams as a photo does


def test_clips_dreamed_together_are_each_the_clip_dreamed_alone(batched):
    """Frame i of each clip dreams in one batch (the first frames as photos, the next ones from their own carried
    starts); the shorter clip leaves the batch when it ends; every frame is the one dream_clip makes of its clip
    alone, pixel for pixel."""
    from dreamer.engine.backends import activate

    activate()
    from dreamer import dreaming
    from dreamer.dreaming.clips import dream_clip, dream_clips
    from dreamer.networks import get_style

    clips = [[(i / FPS, frame) for i, frame in enumerate(filmed(count, (64, 40), photo))]
             for count, photo in ((6, "chelsea.jpg"), (4, "coffee.jpg"))]
    style, options = get_style("vgg16-textures").replace(octaves=1, steps=2, every=2), dreaming.RenderOptions(size=64)
    together = list(dream_clips([(frames, ()) for frames in clips], style, options))
    assert [len(call) for call in batched] == [2] * 4  # frames 4 and 5 of the longer clip dream alone
    assert [(k, t) for k, t, _ in together] == [(k, i / FPS) for i in range(6) for k in (0, 1) if i < len(clips[k])]
    for k, frames in enumerate(clips):
        alone = list(dream_clip(frames, style, options))
        ours = [frame for j, _, frame in together if j == k]
        assert len(ours) == len(alone) == len(frames)
        assert all(np.array_equal(a, b) for (_, a), b in zip(alone, ours)), k


def test_a_clip_dreams_into_an_mp4_with_its_frames_its_length_and_its_sound_in_sync(tmp_path, capsys):
    source = write_source(tmp_path / "pan.mp4", tone_at=0.5, count=12)
    out = tmp_path / "dream.mp4"
    assert main(["render", str(source), *TINY, "-o", str(out)]) == 0
    assert codecs(out) == ["h264", "aac"]
    assert frame_times(out) == frame_times(source)
    assert abs(length(out) - length(source)) < FRAME
    assert abs(onset(out) - onset(source)) < FRAME
    with av.open(str(out)) as container:
        frame = next(container.decode(video=0))
        assert (frame.width, frame.height) == (64, 40)  # the long side --size, even sides
        assert '"made_by": "Dreamer"' in container.metadata["comment"]
    assert f"{out} + sound  12 frames 64x40" in capsys.readouterr().out
    assert main(["render", str(source), *TINY, "-o", str(out)]) == 0  # its own file: replaced without --overwrite


def test_clips_rendered_in_one_command_dream_together_into_the_bytes_each_makes_alone(tmp_path, capsys, batched):
    first = write_source(tmp_path / "pan.mp4", tone_at=0.25, count=6)
    second = write_source(tmp_path / "short.mp4", count=4)
    assert main(["render", str(first), str(second), *TINY, "-o", str(tmp_path / "together") + "/"]) == 0
    assert [len(call) for call in batched] == [2] * 4  # together while both go on (frames 4 and 5 of the longer clip dream alone)
    out = capsys.readouterr().out
    for source in (first, second):
        alone = tmp_path / f"{source.stem}-alone.mp4"
        assert main(["render", str(source), *TINY, "-o", str(alone)]) == 0
        together = tmp_path / "together" / f"{source.stem}-vgg16-textures.mp4"
        assert f"{together}" in out
        assert together.read_bytes() == alone.read_bytes()
    assert codecs(tmp_path / "together" / "pan-vgg16-textures.mp4") == ["h264", "aac"]


def test_a_part_resampled_into_a_webm_keeps_its_sound_from_the_part(tmp_path):
    source = write_source(tmp_path / "pan.mp4", tone_at=0.5, count=12)
    out = tmp_path / "part.webm"
    assert main(["render", str(source), *TINY, "--seconds", "0.25-0.75", "--fps", "10", "-o", str(out)]) == 0
    assert codecs(out) == ["vp9", "opus"]
    assert frame_times(out) == [0.0, 0.1, 0.2, 0.3, 0.4]
    assert abs(length(out) - 0.5) < FRAME
    assert abs(onset(out) - 0.25) < FRAME  # the tone starts at 0.5 s of the source


def test_a_variable_frame_rate_keeps_its_times(tmp_path):
    times = [0.0, 0.1, 0.15, 0.5, 0.52, 0.9, 1.4]
    source = write_source(tmp_path / "vfr.mp4", times=times, end=1.6)
    out = tmp_path / "dream.mp4"
    assert main(["render", str(source), *TINY, "-o", str(out)]) == 0
    assert frame_times(out) == times
    assert abs(length(out) - 1.6) < 0.002


def test_a_rotated_phone_clip_comes_out_upright(tmp_path):
    plain = write_source(tmp_path / "plain.mp4", count=3)
    rotated = tmp_path / "phone.mp4"  # the same pictures, marked to be shown turned a quarter counterclockwise
    ffmpeg = imageio_ffmpeg.get_ffmpeg_exe()
    subprocess.run([ffmpeg, "-v", "error", "-display_rotation", "90", "-i", str(plain), "-c", "copy", str(rotated)],
                   check=True)
    shown = tmp_path / "shown.png"  # how ffmpeg shows its first frame
    subprocess.run([ffmpeg, "-v", "error", "-i", str(rotated), "-frames:v", "1", str(shown)], check=True)
    from dreamer.media.clips import open_clip

    clip = open_clip(rotated, 96)
    _, first = next(iter(clip.frames()))
    assert first.shape == (96, 60, 3)
    expected = np.asarray(Image.open(shown).convert("RGB"))
    assert np.abs(first.astype(int) - expected).mean() < 4  # not turned the other way (measured 2.4 against 70)
    out = tmp_path / "dream.mp4"
    assert main(["render", str(rotated), *TINY, "-o", str(out)]) == 0
    with av.open(str(out)) as container:
        frame = next(container.decode(video=0))
        assert (frame.width, frame.height, frame.rotation) == (40, 64, 0)


def test_an_animated_gif_dreams_into_a_gif_with_its_frame_durations(tmp_path):
    durations = [100, 250, 50, 400, 120]
    frames = [Image.fromarray(frame) for frame in filmed(len(durations))]
    source = tmp_path / "pan.gif"
    frames[0].save(source, save_all=True, append_images=frames[1:], duration=durations, loop=0)
    assert main(["render", str(source), *TINY, "-o", f"{tmp_path}/out/"]) == 0  # named after the input
    with Image.open(tmp_path / "out" / "pan-vgg16-textures.gif") as gif:
        found = []
        for index in range(gif.n_frames):
            gif.seek(index)
            found.append(gif.info["duration"])
        assert gif.size == (64, 40)
    assert found == durations


def write_empty(path):
    path.write_bytes(b"")
    return path


def write_sound_only(path):
    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=48000)
        stream.layout = "mono"
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 4800), np.float32), format="fltp", layout="mono")
        frame.sample_rate, frame.pts = 48000, 0
        container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


def write_truncated(path):
    whole = write_source(path.with_name("whole.mp4"))
    path.write_bytes(whole.read_bytes()[:len(whole.read_bytes()) // 2])
    whole.unlink()
    return path


def write_still(path):
    Image.fromarray(filmed(1)[0]).save(path, "JPEG")
    return path


def write_long(path):
    return write_source(path, times=[0.0, 301.0], end=302.0, size=(32, 20))


@pytest.mark.parametrize("make, problem", [
    (write_empty, "is empty (0 bytes)"),
    (write_truncated, "not a video PyAV can read"),
    (write_sound_only, "has only sound; pass a video with pictures"),
    (write_still, "is a still image (jpeg), not a video; give it its image suffix"),
    (write_long, "302 s is over the 300-s limit of a clip; dream a part with --seconds A-B"),
])
def test_a_bad_clip_fails_on_one_line_and_writes_nothing(tmp_path, capsys, make, problem):
    clip = make(tmp_path / "clip.mp4")
    before = sorted(tmp_path.iterdir())
    assert main(["render", str(clip), *TINY, "-o", str(tmp_path / "dream.mp4")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {clip}: ") and problem in err and err.count("\n") == 1, err
    assert sorted(tmp_path.iterdir()) == before


def test_a_part_after_the_end_fails_on_one_line(tmp_path, capsys):
    source = write_source(tmp_path / "pan.mp4")
    assert main(["render", str(source), *TINY, "--seconds", "5-6", "-o", str(tmp_path / "dream.mp4")]) == 2
    assert capsys.readouterr().err == f"error: {source}: lasts 0.67 s: --seconds 5- starts after its end\n"
    assert not (tmp_path / "dream.mp4").exists()
