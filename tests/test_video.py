"""Videos from a dream's frames, read back by PyAV (libav's decoders) and Pillow (the GIF's timings)."""

import io
import json

import av
import numpy as np
import pytest
from PIL import Image, ImageSequence

from dreamer.media.gif import gif_bytes, timeline
from dreamer.media.marks import read_mark
from dreamer.media.video import MIN_TICK_MS, VideoOptions, frame_times, tick_ms, video_bytes
from dreamer.options import GifOptions

from conftest import REPO

COLOURS = [(230, 20, 20), (20, 200, 40), (30, 40, 220), (240, 220, 30), (200, 30, 200)]


def flat_frames(width=65, height=47):
    """Five frames of one colour each (odd sides, to be cropped to even)."""
    return [np.full((height, width, 3), colour, np.uint8) for colour in COLOURS]


def decoded(video):
    """[(start seconds, mean RGB)] of every decoded frame, and the stream, of a video (its bytes or its path)."""
    with av.open(io.BytesIO(video) if isinstance(video, bytes) else str(video)) as container:
        stream = container.streams.video[0]
        frames = [(float(f.time), f.to_ndarray(format="rgb24").reshape(-1, 3).mean(0)) for f in container.decode(stream)]
        return frames, stream.codec_context.name, stream.codec_context.pix_fmt, stream.codec_context.width, \
            stream.codec_context.height, dict(container.metadata)


def nearest(rgb) -> int:
    return int(np.argmin([np.abs(np.subtract(rgb, c)).sum() for c in COLOURS]))


def top_level_boxes(data: bytes) -> list[str]:
    """The MP4's top-level box types, in file order."""
    boxes, at = [], 0
    while at + 8 <= len(data):
        size, kind = int.from_bytes(data[at:at + 4], "big"), data[at + 4:at + 8].decode("latin-1")
        size = int.from_bytes(data[at + 8:at + 16], "big") if size == 1 else size or len(data) - at
        boxes.append(kind)
        at += size
    return boxes


@pytest.mark.parametrize("fmt, codec", [("mp4", "h264"), ("webm", "vp9")])
@pytest.mark.parametrize("pingpong", [False, True])
def test_video_shows_each_frame_for_the_gifs_durations(tmp_path, fmt, codec, pingpong):
    frames = flat_frames()
    shown = timeline(len(frames), GifOptions(pingpong=pingpong))
    info = video_bytes(frames, shown, fmt, meta={"frames": 5})
    got, name, pix_fmt, width, height, metadata = decoded(info.data)
    assert (name, pix_fmt, width, height) == (codec, "yuv420p", 64, 46)  # odd sides cropped to even
    assert tick_ms([ms for _, ms in shown]) == 40 and info.fps == 25
    # every 40 ms the colour of the frame the GIF shows then
    expected = [i for i, ms in shown for _ in range(ms // 40)]
    assert len(got) == len(expected)
    assert [nearest(rgb) for _, rgb in got] == expected
    assert got[-1][0] == pytest.approx(0.04 * (len(expected) - 1), abs=1e-3)
    # the GIF made from the same frames shows the same durations (Pillow reads them back)
    gif = gif_bytes(frames, GifOptions(pingpong=pingpong))
    with Image.open(io.BytesIO(gif.data)) as image:
        gif_ms = [f.info["duration"] for f in ImageSequence.Iterator(image)]
    assert gif_ms == [ms for _, ms in shown]
    assert sum(gif_ms) / 1000 == pytest.approx(info.seconds)
    comment = metadata.get("comment") or metadata.get("COMMENT")
    path = tmp_path / f"d.{fmt}"
    path.write_bytes(info.data)
    assert json.loads(comment) == {"made_by": "Dreamer", "frames": 5} == read_mark(path)


def test_mp4_starts_with_its_index():
    """+faststart: the moov box (the index) before the media data, so playback starts before the download ends."""
    info = video_bytes(flat_frames(), timeline(5), "mp4")
    boxes = top_level_boxes(info.data)
    assert "moov" in boxes and "mdat" in boxes and boxes.index("moov") < boxes.index("mdat")


def test_small_rendition_is_smaller():
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (213, 320, 3), dtype=np.uint8) for _ in range(4)]
    full = video_bytes(frames, timeline(4), "webm")
    small = video_bytes(frames, timeline(4), "webm", long_side=160)
    assert (full.width, full.height) == (320, 212) and (small.width, small.height) == (160, 106)
    assert len(small.data) < len(full.data) / 2
    assert decoded(small.data)[3:5] == (160, 106)


def test_uneven_durations_round_to_a_tick():
    assert tick_ms([135, 1000, 2000]) == MIN_TICK_MS  # gcd 5 ms: 20 ms ticks, at most 50 fps
    assert frame_times([135, 1000, 2000]) == [0, pytest.approx(0.14), pytest.approx(1.14)]
    assert tick_ms([100, 1000]) == 100 and frame_times([100, 1000, 100]) == [0, 0.1, 1.1]


def test_video_paths_beside_the_gif(tmp_path):
    paths = VideoOptions(("webm", "mp4"), 240).paths(tmp_path / "a.gif")
    assert {name: (p.name, side) for name, (p, side) in paths.items()} == {
        "webm": ("a.webm", None), "mp4": ("a.mp4", None),
        "webm-small": ("a-small.webm", 240), "mp4-small": ("a-small.mp4", 240)}
    assert VideoOptions().paths(tmp_path / "a.gif") == {}


def test_not_a_video_format():
    with pytest.raises(ValueError, match="mp4 or webm"):
        video_bytes(flat_frames(), timeline(5), "avi")


# --- the videos of a gallery build and of `dreamer render --video`

GALLERY = """\
size = 96
styles = ["vgg16-eyes"]
[style.vgg16-eyes]
octaves = 2
steps = 2
every = 1
step_size = 0.1  # frames far apart, to tell them apart through the codecs
[gif]
pingpong = true
[video]
small = 48
"""


def gif_frames(path) -> list[np.ndarray]:
    with Image.open(path) as image:
        return [np.asarray(f.convert("RGB"), dtype=float) for f in ImageSequence.Iterator(image)]


def test_gallery_videos_show_the_engines_frames_at_the_manifests_times(tmp_path):
    from dreamer.gallery import build
    from dreamer.gallery.settings import load
    from dreamer.gallery.verify import verify

    from conftest import make_tiny

    folder = make_tiny(tmp_path, GALLERY, photos=("coffee.jpg",))
    assert build(load(folder / "gallery.toml"), out=io.StringIO()).ok
    site = folder / "site"
    (entry,) = json.loads((site / "manifest.json").read_text())["renders"].values()
    assert set(entry["videos"]) == {"webm", "mp4", "webm-small", "mp4-small"}
    assert entry["steps"] == [0, 1, 2, 3, 4] and len(entry["times"]) == entry["frames"] == 5
    frames = gif_frames(site / entry["gif"])  # ping-pong: 5 forward, 3 back
    assert len(frames) == 8
    for name, path in entry["videos"].items():
        decoded_frames = []
        with av.open(str(site / path)) as container:
            for frame in container.decode(video=0):
                decoded_frames.append((float(frame.time), frame.to_ndarray(format="rgb24").astype(float)))
        height, width = decoded_frames[0][1].shape[:2]
        assert (width, height) == ((48, 32) if name.endswith("small") else (96, 64)), name
        loop = sum(ms for _, ms in timeline(5, GifOptions(pingpong=True))) / 1000
        assert decoded_frames[-1][0] + 0.04 == pytest.approx(loop)
        assert read_mark(site / path)["frames"] == 5
        if name.endswith("small"):  # 48 px at a coarse crf: too few pixels to tell neighbouring frames apart
            continue
        for i, (start, end) in enumerate(entry["times"]):  # during its time, each frame is the GIF's frame i
            shown = [pixels for t, pixels in decoded_frames if start <= t < end]
            reference = [np.asarray(Image.fromarray(f.astype(np.uint8)).resize((width, height), Image.LANCZOS),
                                    dtype=float)[:height, :width] for f in frames[:5]]
            errors = [np.abs(shown[len(shown) // 2] - r).mean() for r in reference]
            assert int(np.argmin(errors)) == i and errors[i] < 12, (name, i, errors)
    # a torn video is found by --verify, and rendered again by the next build
    webm = site / entry["videos"]["webm"]
    webm.write_bytes(webm.read_bytes()[: webm.stat().st_size // 2])
    out = io.StringIO()
    assert verify(site, out) >= 1 and f"{webm}: " in out.getvalue()
    summary = build(load(folder / "gallery.toml"), out=io.StringIO())
    assert (summary.rendered, summary.reused) == (1, 0)
    assert verify(site, io.StringIO()) == 0


def test_render_video_from_the_cli(tmp_path, capsys):
    from dreamer.cli import main

    photo = tmp_path / "cat.jpg"
    Image.open(REPO / "inputs" / "chelsea.jpg").save(photo)
    args = ["render", str(photo), "--size", "64", "--octaves", "1", "--steps", "2", "--every", "1", "--video"]
    (tmp_path / "cat-vgg16-eyes.mp4").write_bytes(b"the user's own video")
    assert main([*args, "-o", str(tmp_path / "cat-vgg16-eyes.gif")]) == 2  # not Dreamer's: refused, untouched
    assert (tmp_path / "cat-vgg16-eyes.mp4").read_bytes() == b"the user's own video"
    assert "cat-vgg16-eyes.mp4" in capsys.readouterr().err
    assert main([*args, "-o", str(tmp_path / "out.gif")]) == 0
    assert "out.gif + webm + mp4  3 frames" in capsys.readouterr().out
    for fmt, codec in (("webm", "vp9"), ("mp4", "h264")):
        got, name, *_ = decoded(tmp_path / f"out.{fmt}")
        assert name == codec and len(got) == (1200 + 120 + 2000) // 40
    assert main([*args, "-o", str(tmp_path / "out.gif")]) == 0  # its own files: replaced without --overwrite
