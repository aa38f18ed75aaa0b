"""Tests for dreamer.animate: GIF encoding and stills."""

import os
import stat

import numpy as np
import pytest
from PIL import Image
from skimage import data

from dreamer.animate import encode_gif, save_still


def make_frames(n=5, size=64):
    """`n` frames fading a small astronaut into a recoloured, rippled version of it."""
    a = np.asarray(Image.fromarray(data.astronaut()).resize((size, size)), dtype=np.float32)
    x = np.linspace(0, 20, size, dtype=np.float32)
    dream = np.clip(a[..., ::-1] + 90 * np.sin(x)[None, :, None], 0, 255)
    return [np.round((1 - t) * a + t * dream).astype(np.uint8) for t in np.linspace(0, 1, n)]


def read_gif(path):
    """The decoded RGB frames, their durations and the loop count of a GIF."""
    pixels, durations = [], []
    with Image.open(path) as gif:
        for i in range(gif.n_frames):
            gif.seek(i)
            pixels.append(np.asarray(gif.convert("RGB")))
            durations.append(gif.info["duration"])
        return pixels, durations, gif.info["loop"]


def test_frames_size_loop_and_holds(tmp_path):
    frames = make_frames(5, size=48)
    info = encode_gif(frames, tmp_path / "a.gif", frame_ms=100, hold_first_ms=1000, hold_last_ms=2500)
    pixels, durations, loop = read_gif(info.path)
    assert (info.frames, info.width, info.height) == (5, 48, 48)
    assert info.bytes == os.path.getsize(info.path)
    assert len(pixels) == 5 and all(p.shape == (48, 48, 3) for p in pixels)
    assert loop == 0
    assert durations == [1000, 100, 100, 100, 2500]


def test_identical_frames_are_merged(tmp_path):
    a, b, c = make_frames(3)
    info = encode_gif([a, b, b, c], tmp_path / "m.gif")
    _, durations, _ = read_gif(info.path)
    assert info.frames == 3
    assert durations == [1200, 240, 2000]


def test_pingpong_order_and_mirrored_durations(tmp_path):
    frames = make_frames(5)
    info = encode_gif(frames, tmp_path / "p.gif", pingpong=True)
    pixels, durations, _ = read_gif(info.path)
    assert info.frames == len(pixels) == 2 * 5 - 2
    nearest = [int(np.argmin([np.abs(p.astype(int) - f).mean() for f in frames])) for p in pixels]
    assert nearest == [0, 1, 2, 3, 4, 3, 2, 1]
    assert durations == [1200, 120, 120, 120, 2000, 120, 120, 120]


@pytest.mark.parametrize("palette", ["auto", "per-frame", "shared"])
@pytest.mark.parametrize("dither", [False, True])
def test_decoded_frames_close_to_input(tmp_path, palette, dither):
    frames = make_frames()
    info = encode_gif(frames, tmp_path / "c.gif", palette=palette, dither=dither)
    pixels, _, _ = read_gif(info.path)
    errors = [np.abs(p.astype(int) - f).mean() for p, f in zip(pixels, frames)]
    assert len(errors) == 5 and max(errors) < 6.0


@pytest.mark.parametrize("palette", ["per-frame", "shared"])
def test_dither_changes_bytes_and_output_is_deterministic(tmp_path, palette):
    frames = make_frames()
    plain = encode_gif(frames, tmp_path / "plain.gif", palette=palette).path.read_bytes()
    again = encode_gif(frames, tmp_path / "again.gif", palette=palette).path.read_bytes()
    dithered = encode_gif(frames, tmp_path / "dith.gif", palette=palette, dither=True).path.read_bytes()
    assert plain == again
    assert dithered != plain


def test_bad_frames_raise_one_line_and_leave_target(tmp_path):
    target = tmp_path / "keep.gif"
    encode_gif(make_frames(2), target)
    before = target.read_bytes()
    frames = make_frames(2) + [make_frames(1, size=32)[0]]
    with pytest.raises(ValueError, match="same size") as error:
        encode_gif(frames, target)
    assert "\n" not in str(error.value)
    with pytest.raises(ValueError):
        encode_gif([], target)
    with pytest.raises(ValueError):
        encode_gif([np.zeros((8, 8, 3), np.float32)], target)
    with pytest.raises(ValueError):
        encode_gif(make_frames(2), target, palette="global")
    assert target.read_bytes() == before
    assert os.listdir(tmp_path) == ["keep.gif"]


def fake_gifsicle(bin_dir, body):
    """Put a `gifsicle` shell script on PATH; it is called as: gifsicle -O3 IN -o OUT."""
    script = bin_dir / "gifsicle"
    script.write_text("#!/bin/sh\n" + body + "\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)


def test_gifsicle_used_when_present_and_failure_keeps_file(tmp_path, monkeypatch):
    frames = make_frames(3)
    out = tmp_path / "out"
    monkeypatch.setenv("PATH", str(tmp_path))  # only the fake: the scripts use shell builtins
    plain = encode_gif(frames, out / "plain.gif").path.read_bytes()

    fake_gifsicle(tmp_path, 'printf junk > "$4"; exit 1')
    assert encode_gif(frames, out / "failed.gif").path.read_bytes() == plain

    fake_gifsicle(tmp_path, f'printf GIF89a > "$4" && : > {tmp_path}/ran')
    info = encode_gif(frames, out / "opt.gif")
    assert (tmp_path / "ran").exists() and info.path.read_bytes() == b"GIF89a" and info.bytes == 6
    assert sorted(os.listdir(out)) == ["failed.gif", "opt.gif", "plain.gif"]


@pytest.mark.parametrize("suffix", [".jpg", ".png", ".webp"])
def test_still_round_trips(tmp_path, suffix):
    frame = make_frames(1, size=40)[0][:30]
    path = save_still(frame, tmp_path / f"still{suffix}")
    with Image.open(path) as im:
        assert im.size == (40, 30)
        decoded = np.asarray(im.convert("RGB"))
    assert np.abs(decoded.astype(int) - frame).mean() <= (0 if suffix == ".png" else 8)
    assert os.listdir(tmp_path) == [f"still{suffix}"]


def test_still_unknown_suffix(tmp_path):
    with pytest.raises(ValueError, match="format"):
        save_still(make_frames(1)[0], tmp_path / "still.bmp")
