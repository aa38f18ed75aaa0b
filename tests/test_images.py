"""Tests for dreamer.media.images: real files written with Pillow, loaded back through load_image."""

import struct
import zlib

import numpy as np
import pytest
from PIL import Image, ImageFile, features

from dreamer.errors import InputError
from dreamer.media.images import load_image, resize_to_long_side, to_unit_range


def _blank_png(path, width, height):
    """Write a valid all-black 1-bit PNG of any size; zlib keeps huge ones tiny and cheap."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    row = bytes(1 + (width + 7) // 8)
    compressor = zlib.compressobj(9)
    idat = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b""))
    return path


def _input_error(path, **kwargs):
    """Load `path` expecting an InputError; check it names the file on one line and return the message."""
    with pytest.raises(InputError) as info:
        load_image(path, **kwargs)
    message = str(info.value)
    assert path.name in message and "\n" not in message
    return message


def test_exif_orientation_is_applied(tmp_path):
    image = Image.new("RGB", (40, 20), "blue")
    image.paste((255, 0, 0), (0, 0, 8, 8))  # top-left corner, big enough to survive JPEG
    exif = Image.Exif()
    exif[0x0112] = 6  # display rotated 90 degrees clockwise
    path = tmp_path / "rotated.jpg"
    image.save(path, exif=exif, quality=95)
    loaded = load_image(path)
    assert loaded.shape == (40, 20, 3) and loaded.dtype == np.uint8
    assert loaded[2, 17, 0] > 200 and loaded[2, 17, 2] < 60  # top-left went to top-right
    assert loaded[2, 2, 0] < 60 and loaded[2, 2, 2] > 200


@pytest.mark.parametrize("mode, value, expected", [("L", 100, 100), ("1", 1, 255), ("1", 0, 0)])
def test_grayscale(tmp_path, mode, value, expected):
    path = tmp_path / f"gray{mode}.png"
    Image.new(mode, (5, 4), value).save(path)
    loaded = load_image(path)
    assert loaded.shape == (4, 5, 3)
    assert (loaded == expected).all()


@pytest.mark.parametrize("suffix, tolerance", [(".tif", 0), (".jpg", 6)])
def test_cmyk(tmp_path, suffix, tolerance):
    path = tmp_path / f"cmyk{suffix}"
    Image.new("CMYK", (16, 16), (0, 255, 255, 0)).save(path)
    loaded = load_image(path).astype(int)
    assert np.abs(loaded - [255, 0, 0]).max() <= tolerance


@pytest.mark.parametrize("suffix, dtype", [(".png", np.uint16), (".tif", np.uint16), (".tif", np.int32)])
def test_16_bit_scales_to_8_bit(tmp_path, suffix, dtype):
    values = np.linspace(0, 65535, 300).round().astype(dtype).reshape(15, 20)
    path = tmp_path / f"deep{suffix}"
    Image.fromarray(values).save(path)
    loaded = load_image(path)
    gray = loaded[:, :, 0].ravel()
    assert gray[0] == 0 and gray[-1] == 255
    assert (np.diff(gray.astype(int)) >= 0).all()
    assert len(np.unique(gray)) > 200  # scaled, not clipped to a few values
    assert (loaded == loaded[:, :, :1]).all()


def test_float_tiff(tmp_path):
    path = tmp_path / "float.tif"
    Image.fromarray(np.array([[0.0, 0.5, 1.0]], np.float32)).save(path)
    assert load_image(path)[0, :, 0].tolist() == [0, 128, 255]


@pytest.mark.parametrize("mode, pixels", [
    ("RGBA", [(255, 0, 0, 0), (0, 0, 255, 255), (0, 0, 0, 128)]),
    ("LA", [(0, 0), (0, 255), (0, 128)]),
])
def test_alpha_is_flattened_onto_white(tmp_path, mode, pixels):
    image = Image.new(mode, (3, 1))
    image.putdata(pixels)
    path = tmp_path / f"alpha{mode}.png"
    image.save(path)
    loaded = load_image(path).astype(int)
    assert loaded[0, 0].tolist() == [255, 255, 255]
    assert loaded[0, 1].tolist() == ([0, 0, 255] if mode == "RGBA" else [0, 0, 0])
    assert np.abs(loaded[0, 2] - 127).max() <= 1


@pytest.mark.parametrize("suffix", [".png", ".gif"])
def test_palette_with_transparency(tmp_path, suffix):
    image = Image.new("P", (2, 1))
    image.putpalette([0, 255, 0, 10, 20, 30])
    image.putdata([0, 1])
    path = tmp_path / f"palette{suffix}"
    image.save(path, transparency=0)
    assert load_image(path)[0].tolist() == [[255, 255, 255], [10, 20, 30]]


@pytest.mark.parametrize("suffix", [".gif", ".webp"])
def test_animation_gives_first_frame(tmp_path, suffix):
    if suffix == ".webp" and not features.check("webp"):
        pytest.skip("Pillow built without WebP")
    frames = [Image.new("RGB", (8, 8), colour) for colour in ("red", "lime", "blue")]
    path = tmp_path / f"anim{suffix}"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100, loop=0, lossless=True)
    assert (load_image(path) == [255, 0, 0]).all()


def test_resize_to_long_side_keeps_aspect_and_scales_both_ways():
    image = np.random.default_rng(0).integers(0, 256, (30, 60, 3), dtype=np.uint8)
    assert resize_to_long_side(image, 20).shape == (10, 20, 3)
    assert resize_to_long_side(image, 512).shape == (256, 512, 3)
    assert resize_to_long_side(image, 1).shape == (1, 1, 3)
    assert resize_to_long_side(image, 60).dtype == np.uint8
    with pytest.raises(ValueError):
        resize_to_long_side(image, 0)


def test_unit_range_round_trip():
    from dreamer.engine.loop import to_uint8  # the way back, on the device that holds the image

    image = np.arange(256, dtype=np.uint8).reshape(16, 16, 1).repeat(3, axis=2)
    unit = to_unit_range(image)
    assert unit.dtype == np.float32 and unit.min() == -1.0 and unit.max() == 1.0
    np.testing.assert_array_equal(to_uint8(unit), image)
    assert to_uint8(np.array([-3.0, 0.0, 3.0], np.float32)).tolist() == [0, 128, 255]


def test_load_truncated_images_is_not_enabled():
    assert not ImageFile.LOAD_TRUNCATED_IMAGES


@pytest.mark.parametrize("suffix", [".jpg", ".png"])
def test_truncated_image(tmp_path, suffix):
    path = tmp_path / f"cut{suffix}"
    noise = np.random.default_rng(1).integers(0, 256, (128, 128, 3), dtype=np.uint8)
    Image.fromarray(noise).save(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    assert "truncated" in _input_error(path)


@pytest.mark.parametrize("content", [b"hello, I am text\n", b""])
def test_not_an_image(tmp_path, content):
    path = tmp_path / "notes.jpg"
    path.write_bytes(content)
    assert "convert it or remove it from inputs/" in _input_error(path)


def test_missing_file(tmp_path):
    assert "not found" in _input_error(tmp_path / "nowhere.png")


def test_directory(tmp_path):
    path = tmp_path / "folder.png"
    path.mkdir()
    assert "directory" in _input_error(path)


def test_own_pixel_limit_is_checked_from_header(tmp_path):
    path = _blank_png(tmp_path / "big.png", 200, 100)
    assert "over the 5,000-pixel limit" in _input_error(path, max_pixels=5000)
    assert load_image(path, max_pixels=20_000).shape == (100, 200, 3)


def test_decompression_bomb_error(tmp_path):
    side = int((2 * Image.MAX_IMAGE_PIXELS) ** 0.5) + 100
    path = _blank_png(tmp_path / "bomb.png", side, side)
    assert path.stat().st_size < 200_000
    assert "decompression-bomb" in _input_error(path, max_pixels=None)


def test_decompression_bomb_warning_is_an_error(tmp_path):
    side = int(Image.MAX_IMAGE_PIXELS**0.5) + 100  # between the warning and the error limits
    path = _blank_png(tmp_path / "almost.png", side, side)
    assert "decompression-bomb" in _input_error(path, max_pixels=None)


def test_zero_size_is_rejected_by_pillow(tmp_path):
    assert "not an image Pillow can read" in _input_error(_blank_png(tmp_path / "empty.png", 0, 10))


def test_absurd_shape(tmp_path):
    assert "unusable size 1000x2" in _input_error(_blank_png(tmp_path / "thin.png", 1000, 2))
