"""Tests for dreamer.media.gif: GIF encoding and stills."""

import io
import os
import shutil
import subprocess

import numpy as np
import pytest
from PIL import Image
from skimage import data

from dreamer.media import gif as animate
from dreamer.media.gif import gif_bytes, still_bytes
from dreamer.media.marks import read_mark
from dreamer.options import GifOptions


def make_frames(n=5, size=64):
    """`n` frames fading a small astronaut into a recoloured, rippled version of it."""
    a = np.asarray(Image.fromarray(data.astronaut()).resize((size, size)), dtype=np.float32)
    x = np.linspace(0, 20, size, dtype=np.float32)
    dream = np.clip(a[..., ::-1] + 90 * np.sin(x)[None, :, None], 0, 255)
    return [np.round((1 - t) * a + t * dream).astype(np.uint8) for t in np.linspace(0, 1, n)]


def read_gif(gif):
    """The decoded RGB frames, their durations and the loop count of a GIF (its bytes or its path)."""
    pixels, durations = [], []
    with Image.open(io.BytesIO(gif) if isinstance(gif, bytes) else gif) as gif:
        for i in range(gif.n_frames):
            gif.seek(i)
            pixels.append(np.asarray(gif.convert("RGB")))
            durations.append(gif.info["duration"])
        return pixels, durations, gif.info["loop"]


def saved(gif, path):
    """A GIF's bytes written at `path`, as a render's writer writes them."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gif.data)
    return path


def test_frames_size_loop_and_holds():
    frames = make_frames(5, size=48)
    info = gif_bytes(frames, GifOptions(frame_ms=100, hold_first_ms=1000, hold_last_ms=2500))
    pixels, durations, loop = read_gif(info.data)
    assert (info.frames, info.width, info.height) == (5, 48, 48)
    assert len(pixels) == 5 and all(p.shape == (48, 48, 3) for p in pixels)
    assert loop == 0
    assert durations == [1000, 100, 100, 100, 2500]


def test_identical_frames_are_merged():
    a, b, c = make_frames(3)
    info = gif_bytes([a, b, b, c])
    _, durations, _ = read_gif(info.data)
    assert info.frames == 3
    assert durations == [1200, 240, 2000]


def test_pingpong_order_and_mirrored_durations():
    frames = make_frames(5)
    info = gif_bytes(frames, GifOptions(pingpong=True))
    pixels, durations, _ = read_gif(info.data)
    assert info.frames == len(pixels) == 2 * 5 - 2
    nearest = [int(np.argmin([np.abs(p.astype(int) - f).mean() for f in frames])) for p in pixels]
    assert nearest == [0, 1, 2, 3, 4, 3, 2, 1]
    assert durations == [1200, 120, 120, 120, 2000, 120, 120, 120]


@pytest.mark.parametrize("palette", ["auto", "per-frame", "shared"])
@pytest.mark.parametrize("dither", [False, True])
def test_decoded_frames_close_to_input(palette, dither):
    frames = make_frames()
    info = gif_bytes(frames, GifOptions(palette=palette, dither=dither))
    pixels, _, _ = read_gif(info.data)
    errors = [np.abs(p.astype(int) - f).mean() for p, f in zip(pixels, frames)]
    assert len(errors) == 5 and max(errors) < 6.0


@pytest.mark.parametrize("palette", ["per-frame", "shared"])
def test_dither_changes_bytes_and_output_is_deterministic(palette):
    frames = make_frames()
    plain = gif_bytes(frames, GifOptions(palette=palette)).data
    again = gif_bytes(frames, GifOptions(palette=palette)).data
    dithered = gif_bytes(frames, GifOptions(palette=palette, dither=True)).data
    assert plain == again
    assert dithered != plain


def test_bad_frames_raise_one_line():
    frames = make_frames(2) + [make_frames(1, size=32)[0]]
    with pytest.raises(ValueError, match="same size") as error:
        gif_bytes(frames)
    assert "\n" not in str(error.value)
    with pytest.raises(ValueError):
        gif_bytes([])
    with pytest.raises(ValueError):
        gif_bytes([np.zeros((8, 8, 3), np.float32)])
    with pytest.raises(ValueError):
        gif_bytes(make_frames(2), GifOptions(palette="global"))


GIFSICLE = shutil.which("gifsicle")


def need_gifsicle() -> None:
    """Skip the test without gifsicle on PATH; fail it in CI, whose .ci/run installs it."""
    if GIFSICLE is None:
        message = "gifsicle is not installed: apt-get install gifsicle"
        pytest.fail(message) if os.environ.get("CI") else pytest.skip(message)


def without_gifsicle(monkeypatch, tmp_path):
    """PATH without gifsicle: gif_bytes gives the GIF as Pillow makes it."""
    empty = tmp_path / "no-gifsicle"
    empty.mkdir(exist_ok=True)
    monkeypatch.setenv("PATH", str(empty))


def gifsicle_images(path) -> int:
    """The frame count gifsicle --info reports (its first line: `* NAME N images`)."""
    first = subprocess.run([GIFSICLE, "--info", str(path)], capture_output=True, text=True, check=True).stdout
    words = first.splitlines()[0].split()
    assert words[-1] in ("image", "images"), first
    return int(words[-2])


def mean_error(path, frames) -> float:
    pixels, _, _ = read_gif(path)
    assert len(pixels) == len(frames)
    return max(np.abs(p.astype(int) - f).mean() for p, f in zip(pixels, frames))


def test_real_gifsicle_lossy_is_smaller_and_keeps_frames_timings_and_mark(tmp_path, monkeypatch, capsys):
    need_gifsicle()
    frames = make_frames(6, size=128)
    meta = {"frames": 6, "engine": "test"}
    lossy = gif_bytes(frames, GifOptions(lossy=40), meta=meta)  # gallery.toml's gif.lossy
    lossless = gif_bytes(frames, meta=meta)
    without_gifsicle(monkeypatch, tmp_path)
    plain = gif_bytes(frames, meta=meta)
    assert capsys.readouterr().err == ""  # gifsicle succeeded: no warning
    # gifsicle ran (-O3 alone saves a few %: 67.6 kB of 71.7 kB) and --lossy=40 saves more (53.4 kB)
    sizes = len(lossy.data), len(lossless.data), len(plain.data)
    assert sizes[0] < 0.9 * sizes[1] and sizes[1] < sizes[2], sizes
    for info, name in ((lossy, "lossy.gif"), (lossless, "lossless.gif")):
        path = saved(info, tmp_path / name)
        assert gifsicle_images(path) == info.frames == 6
        pixels, durations, loop = read_gif(info.data)
        assert len(pixels) == 6 and durations == [1200, 120, 120, 120, 120, 2000] and loop == 0
        assert read_mark(path) == {"made_by": "Dreamer", **meta}
    assert all(np.array_equal(a, b) for a, b in zip(read_gif(lossless.data)[0], read_gif(plain.data)[0]))  # -O3
    assert mean_error(plain.data, frames) < 6.0
    assert mean_error(plain.data, frames) < mean_error(lossy.data, frames) < 8.0  # lossy: close, not equal


@pytest.mark.parametrize("options, why", [
    (("-O3", "--no-such-option"), "exit 1 (gifsicle: unrecognized option"),  # as an old gifsicle meets --lossy
    (("-O3", "--no-comments", "#0-"), "its result lost the GIF's comment (Dreamer's mark)"),
    (("-O3", "--delete", "#1"), "its result has 4 frames of 64x64, not 5 of 64x64"),
])
def test_a_failed_or_wrong_gifsicle_keeps_the_unoptimised_gif_with_one_warning(tmp_path, monkeypatch, capsys,
                                                                                options, why):
    """The real gifsicle, asked to do what an optimisation must not (fail on an option, drop the mark, drop a
    frame): the GIF stays as Pillow made it, byte for byte, and one warning line says why."""
    need_gifsicle()
    frames, meta = make_frames(5), {"frames": 5}
    monkeypatch.setattr(animate, "GIFSICLE_OPTIONS", options)
    info = gif_bytes(frames, GifOptions(lossy=40), meta=meta)
    err = capsys.readouterr().err
    assert err.startswith(f"warning: gifsicle {' '.join(options)} --lossy=40 failed: {why}"), err
    assert err.endswith("; kept the GIF unoptimised\n") and err.count("\n") == 1
    without_gifsicle(monkeypatch, tmp_path)
    plain = gif_bytes(frames, meta=meta)
    assert info.data == plain.data
    target = saved(info, tmp_path / "dream.gif")
    assert read_mark(target) == {"made_by": "Dreamer", "frames": 5} and gifsicle_images(target) == 5
    assert mean_error(info.data, frames) < 6.0


def test_without_gifsicle_the_gif_is_pillows_own(tmp_path, monkeypatch, capsys):
    without_gifsicle(monkeypatch, tmp_path)
    frames = make_frames(4)
    info = gif_bytes(frames, GifOptions(lossy=40), meta={"frames": 4})
    assert capsys.readouterr().err == ""
    pixels, durations, _ = read_gif(info.data)
    assert len(pixels) == info.frames == 4 and durations == [1200, 120, 120, 2000]
    path = saved(info, tmp_path / "a.gif")
    assert read_mark(path) == {"made_by": "Dreamer", "frames": 4} and mean_error(info.data, frames) < 6.0


@pytest.mark.parametrize("suffix", [".jpg", ".png", ".webp"])
def test_still_round_trips(suffix):
    frame = make_frames(1, size=40)[0][:30]
    with Image.open(io.BytesIO(still_bytes(frame, suffix))) as im:
        assert im.size == (40, 30)
        decoded = np.asarray(im.convert("RGB"))
    assert np.abs(decoded.astype(int) - frame).mean() <= (0 if suffix == ".png" else 8)


def test_still_unknown_suffix():
    with pytest.raises(ValueError, match="format"):
        still_bytes(make_frames(1)[0], ".bmp")
