"""Bounded inputs: wide images load in the memory of 8-bit ones, `dreamer train` keeps the engine's pixel limit,
and an objective too long or too deep fails on one line when gallery.toml loads (before TensorFlow does).

Real files and real processes: peak memory is each loading process's own maximum resident size (Linux's VmHWM,
which, unlike ru_maxrss, does not start from the size of the process that started it)."""

import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dreamer.engine import objectives
from dreamer.media.images import _BAND_ROWS, DEFAULT_MAX_PIXELS, load_image
from dreamer.training.data import read

BUILD = Path(__file__).resolve().parent.parent / "build.py"


def old_conversion(values: np.ndarray, full_scale: float) -> np.ndarray:
    """The conversion of wide grey images before bands: whole-image float64, stretched when out of range."""
    values = np.nan_to_num(values.astype(np.float64))
    low, high = 0.0, full_scale
    if values.min() < low or values.max() > high:
        low, high = float(values.min()), float(values.max())
    return np.clip(np.rint((values - low) * (255.0 / max(high - low, 1e-12))), 0, 255).astype(np.uint8)


def png48(path, rgb: np.ndarray) -> None:
    """Write a 48-bit RGB PNG (Pillow cannot)."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    height, width, _ = rgb.shape
    rows = b"".join(b"\0" + row.astype(">u2").tobytes() for row in rgb)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(rows, 1)) + chunk(b"IEND", b""))


def wide_grey(dtype, low, high, height=_BAND_ROWS + 44, width=40):
    """Seeded grey data over more than one band of rows, its extremes in the last band (and a NaN if float)."""
    values = np.random.default_rng(0).uniform(0.25, 0.75, (height, width)) * (high - low) + low
    values[-3, 5], values[-2, 7] = low, high
    if np.issubdtype(dtype, np.floating):
        values[0, 0] = np.nan  # counted as 0, as before
    return values.astype(dtype)


@pytest.mark.parametrize("name, values, full_scale", [
    ("i16.png", wide_grey(np.uint16, 0, 65535), 65535.0),
    ("i16b.tif", wide_grey(">u2", 0, 65535), 65535.0),
    ("i32-in-range.tif", wide_grey(np.int32, 0, 65535), 65535.0),
    ("i32-stretched.tif", wide_grey(np.int32, -70_000, 200_000), 65535.0),
    ("float-in-range.tif", wide_grey(np.float32, 0, 1), 1.0),
    ("float-stretched.tif", wide_grey(np.float32, -2.5, 7.0), 1.0),
])
def test_wide_grey_images_give_the_same_pixels_as_before(tmp_path, name, values, full_scale):
    Image.fromarray(values).save(tmp_path / name)
    loaded = load_image(tmp_path / name)
    expected = old_conversion(values, full_scale)
    assert loaded.shape == (*values.shape, 3) and loaded.dtype == np.uint8
    assert (loaded == loaded[:, :, :1]).all()  # grey
    assert np.abs(loaded[:, :, 0].astype(int) - expected).max() <= 1
    assert np.ptp(expected) >= 250  # the test data spans the range


def test_48_bit_rgb_is_read_to_8_bits(tmp_path):
    rgb = np.random.default_rng(1).integers(0, 65536, (300, 40, 3)).astype(np.uint16)
    png48(tmp_path / "rgb48.png", rgb)
    loaded = load_image(tmp_path / "rgb48.png")
    assert np.abs(loaded.astype(int) - np.rint(rgb / 257.0)).max() <= 1


PEAK = """
import re, sys
from dreamer.media.images import load_image
if len(sys.argv) > 1:
    assert load_image(sys.argv[1]).shape == (3000, 3000, 3)
print(re.search(r"VmHWM:\\s*(\\d+) kB", open("/proc/self/status").read())[1])
"""


def peak_kib(*args) -> int:
    """The peak resident memory (KiB) of a process that imports dreamer.media.images and loads `args`' image."""
    return int(subprocess.run([sys.executable, "-c", PEAK, *map(str, args)], check=True, capture_output=True,
                              text=True).stdout)


@pytest.fixture(scope="module")
def eight_bit_load(tmp_path_factory):
    """A 3000x3000 16-bit grey gradient, the imports' peak and what loading the gradient as an 8-bit grey PNG
    adds to it (KiB)."""
    gradient = np.fromfunction(lambda y, x: (x * 7 + y * 13) % 65536, (3000, 3000)).astype(np.uint16)
    path = tmp_path_factory.mktemp("peak") / "grey8.png"
    Image.fromarray((gradient >> 8).astype(np.uint8)).save(path, compress_level=1)
    imports = peak_kib()
    return gradient, imports, peak_kib(path) - imports


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="peak memory is read from Linux's /proc")
@pytest.mark.parametrize("name", ["grey16.png", "float.tif"])
def test_a_wide_image_loads_in_the_memory_of_an_8_bit_one(eight_bit_load, tmp_path, name):
    """A 3000x3000 image: the memory a load adds to the imports is at most 1.2 times the 8-bit grey PNG's (the
    whole-image float64 conversion took 2.8 times as much for 16 bits, 2.5 for float)."""
    gradient, imports, eight = eight_bit_load
    wide = gradient if name.endswith(".png") else (gradient / np.float32(65535)).astype(np.float32)
    Image.fromarray(wide).save(tmp_path / name, compress_level=1)
    wide_load = peak_kib(tmp_path / name) - imports
    assert eight > 20_000  # the 8-bit load itself is measured (9 MB of pixels, 27 MB of RGB)
    assert wide_load <= 1.2 * eight, (name, wide_load, eight)


def test_training_skips_an_image_over_the_pixel_limit_on_one_line(tmp_path):
    (tmp_path / "art").mkdir()
    (tmp_path / "photos").mkdir()
    for folder, colour in (("art", "red"), ("photos", "blue")):
        for i in range(2):
            Image.new("RGB", (64, 48), colour).save(tmp_path / folder / f"{i}.png")
    huge = tmp_path / "art" / "huge.png"
    Image.new("L", (DEFAULT_MAX_PIXELS // 5000 + 1, 5000)).save(huge, compress_level=1)  # under Pillow's own limit
    classes = {"art": (tmp_path / "art", sorted((tmp_path / "art").iterdir())),
               "photo": (tmp_path / "photos", sorted((tmp_path / "photos").iterdir()))}
    lines = []
    images = read(classes, 32, warn=lines.append)
    assert len(lines) == 1 and "\n" not in lines[0]
    assert str(huge) in lines[0] and f"over the {DEFAULT_MAX_PIXELS:,}-pixel limit" in lines[0]
    assert images.pixels.shape == (4, 32, 32, 3) and list(images.labels) == [0, 0, 1, 1]


HOSTILE_OBJECTIVES = {
    "minus": "-" * 100_000 + "layer('block3_conv1')",
    "paren": "(" * 5000 + "layer('block3_conv1')" + ")" * 5000,
    "megabyte": "layer('block3_conv1') + " * 45_000 + "layer('block3_conv1')",
    "deep": "-" * (objectives.MAX_LENGTH - 30) + "layer('block3_conv1')",
}


def hostile_config(folder, objective):
    config = folder / "gallery.toml"
    config.write_text(f'styles = ["dreamy"]\n[style.dreamy]\nnetwork = "vgg16"\nobjective = "{objective}"\n')
    return config


@pytest.mark.parametrize("kind", HOSTILE_OBJECTIVES)
def test_a_hostile_objective_fails_the_build_on_one_line(tmp_path, kind):
    config = hostile_config(tmp_path, HOSTILE_OBJECTIVES[kind])
    done = subprocess.run([sys.executable, str(BUILD), "--config", str(config), "--dry-run"], capture_output=True,
                          text=True)
    limit = (f"nests deeper than the limit of {objectives.MAX_DEPTH} levels" if kind == "deep" else
             f"characters long, over the limit of {objectives.MAX_LENGTH:,}")
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.startswith(f"error: {config}: style.dreamy: objective ") and limit in done.stderr
    assert done.stderr.count("\n") == 1 and len(done.stderr) < 200


def test_objectives_are_checked_before_tensorflow_loads(tmp_path):
    script = ("import sys\nfrom dreamer.gallery.settings import ConfigError, load\n"
              "try:\n    load(sys.argv[1])\nexcept ConfigError as exc:\n    print(exc)\n"
              "print(sorted({'keras', 'tensorflow', 'jax'} & set(sys.modules)))")
    done = subprocess.run([sys.executable, "-c", script, str(hostile_config(tmp_path, HOSTILE_OBJECTIVES["deep"]))],
                          check=True, capture_output=True, text=True)
    assert done.stdout.splitlines()[1:] == ["[]"] and f"limit of {objectives.MAX_DEPTH} levels" in done.stdout


@pytest.mark.parametrize("text, terms", [
    (" + ".join(["layer('a')"] * (objectives.MAX_DEPTH - 3)), objectives.MAX_DEPTH - 3),
    (" - ".join(["layer('a')"] * (objectives.MAX_DEPTH - 3)), 2 - (objectives.MAX_DEPTH - 3)),
    ("-" * (objectives.MAX_DEPTH - 4) + "layer('a')", 1),
])
def test_objectives_at_the_depth_limit_evaluate(text, terms):
    """The deepest expressions allowed parse and evaluate without running out of stack: a mean of ones per term."""
    assert objectives._depth(objectives.check(text)) == objectives.MAX_DEPTH
    objective = objectives.parse(text)
    images = np.zeros((2, 4, 4, 3), np.float32)
    scores = objectives.evaluate(objective, lambda _: {"a": np.ones((2, 3, 3, 5), np.float32)}, images)
    np.testing.assert_allclose(np.asarray(scores), [terms, terms])
