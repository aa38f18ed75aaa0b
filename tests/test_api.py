"""Dreamer as a library (dreamer.api): dream() yields frames as the engine makes them, from a path, bytes, an
array or static; render() writes files that Pillow reads back; `import dreamer` loads nothing heavy."""

import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

import dreamer
from dreamer import DreamerError, Style, dream, render, styles

from conftest import REPO

PHOTO = REPO / "inputs" / "coffee.jpg"
QUICK = {"size": 48, "octaves": 2, "steps": 4, "every": 1}  # 9 frames: the photo, then one a step


def test_import_dreamer_loads_no_framework():
    code = ("import sys, dreamer; from dreamer import dream, render, styles, Style, DreamerError; "
            "print(sorted(m for m in ('keras', 'tensorflow', 'jax', 'torch') if m in sys.modules))")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout == "[]\n"


def test_dream_yields_its_first_frames_before_the_dream_ends():
    done = []
    frames = dream(PHOTO, "vgg16-textures", on_step=lambda step, total, score: done.append((step, total)), **QUICK)
    first = [next(frames) for _ in range(3)]
    frames.close()  # stop reading: the dream stops
    assert [f.step for f in first] == [0, 1, 2] and {f.total for f in first} == {8}
    assert first[0].image.dtype == np.uint8 and first[0].image.shape == (32, 48, 3)
    assert max(step for step, _ in done) < 8  # it stopped long before its 8 steps
    assert np.abs(first[2].image.astype(int) - first[0].image).mean() > 1  # and it was dreaming


def test_a_path_bytes_and_an_array_dream_alike_and_static_too():
    by_path = [f.image for f in dream(PHOTO, "vgg16-textures", **QUICK)]
    by_bytes = [f.image for f in dream(PHOTO.read_bytes(), "vgg16-textures", **QUICK)]
    with Image.open(PHOTO) as image:
        by_array = [f.image for f in dream(np.asarray(image.convert("RGB")), "vgg16-textures", **QUICK)]
    assert len(by_path) == 9 and all(np.array_equal(a, b) for a, b in zip(by_path, by_bytes))
    assert all(np.abs(a.astype(int) - b).mean() < 1 for a, b in zip(by_path, by_array))  # one resize, same dream
    static = [f.image for f in dream("noise:40x24", styles()["vgg16-textures"], **QUICK)]
    assert static[0].shape == (24, 40, 3) and static[0].std() > 30  # seeded static, then its dream


def test_render_writes_a_gif_and_a_still_that_pillow_reads(tmp_path):
    style = Style("mine", "vgg16", {"block3_conv1": 1.0}, octaves=1, steps=3, every=1)
    result = render(PHOTO.read_bytes(), style, tmp_path / "coffee.gif", still=tmp_path / "coffee.png", size=48)
    with Image.open(tmp_path / "coffee.gif") as gif:
        assert gif.n_frames == result.gif_frames == 4 and gif.size == (48, 32)
    with Image.open(tmp_path / "coffee.png") as still:
        assert still.size == (48, 32)


@pytest.mark.parametrize("photo, style, changes, message", [
    (b"not an image", "vgg16-eyes", {}, "the photo's bytes: not an image Pillow can read"),
    (np.zeros((4, 4), np.float32), "vgg16-eyes", {}, "the array: is float32 (4, 4); pass uint8 H x W x 3"),
    (PHOTO, "vgg16-eyez", {}, "unknown style 'vgg16-eyez'"),
    (PHOTO, "vgg16-eyes", {"stepz": 3}, "unknown key 'stepz'"),
    (PHOTO, "vgg16-eyes", {"steps": -1}, "style 'vgg16-eyes': steps"),
    (42, "vgg16-eyes", {}, "photo must be a path, bytes, an array or noise:WxH, not int"),
])
def test_bad_input_raises_one_line(photo, style, changes, message):
    with pytest.raises(DreamerError) as error:
        next(dream(photo, style, size=48, **changes))
    assert message in str(error.value) and "\n" not in str(error.value)


def test_the_api_is_what_import_dreamer_offers():
    assert sorted(dreamer.__all__) == ["DreamerError", "Frame", "Style", "dream", "dream_clip", "render", "render_clip",
                                      "styles"]
    with pytest.raises(AttributeError):
        dreamer.no_such_thing  # noqa: B018
