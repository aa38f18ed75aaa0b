"""Image files in and out of numpy: robust loading, resizing, and value-range helpers."""

import io
import re
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from dreamer.errors import InputError

DEFAULT_MAX_PIXELS = 50_000_000
MAX_ASPECT_RATIO = 50
_FORMATS = "JPEG, PNG, GIF, WebP, TIFF, BMP"
_HIGH_BIT_MODES = {"I", "I;16", "I;16L", "I;16B", "I;16N", "F"}
_BAND_ROWS = 256  # rows of a high-bit image converted at a time


def load_image(path, max_pixels: int | None = DEFAULT_MAX_PIXELS, folder: str = "inputs/") -> np.ndarray:
    """Read an image file (or an image's bytes) as uint8 RGB (H x W x 3), or raise InputError naming the file and
    the fix.

    EXIF orientation is applied, alpha is flattened onto white, 16-bit and float data are
    scaled to 8 bits, and animations give their first frame. The size is checked from the
    header against `max_pixels` (None: only Pillow's decompression-bomb limit) before decoding. The fixes
    name `folder` as where the file can be removed from.
    """
    if isinstance(path, (bytes, bytearray, memoryview)):
        fp, path = io.BytesIO(path), Path("the photo's bytes")
    else:
        fp, path = None, Path(path)
    try:
        fp = fp or open(path, "rb")
    except FileNotFoundError:
        raise InputError(path, f"file not found; check the path or remove it from {folder}") from None
    except IsADirectoryError:
        raise InputError(path, "is a directory, not an image file; "
                               f"pass image files or remove it from {folder}") from None
    except OSError as exc:
        raise InputError(path, f"cannot be opened ({exc.strerror}); check its permissions") from None
    with fp, warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            with Image.open(fp) as image:
                _check_size(path, image.size, max_pixels, folder)
                image.load()  # full decode here, so truncation shows now
                ImageOps.exif_transpose(image, in_place=True)
                return _to_rgb(image)
        except InputError:
            raise
        except UnidentifiedImageError:
            problem = f"not an image Pillow can read ({_FORMATS}); convert it or remove it from {folder}"
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            problem = (f"too large: over Pillow's decompression-bomb limit of {Image.MAX_IMAGE_PIXELS:,} pixels; "
                       f"shrink it or remove it from {folder}")
        except Exception as exc:  # Pillow's decoders raise many types on bad data
            problem = f"truncated or damaged ({_describe(exc)}); re-export it or remove it from {folder}"
    raise InputError(path, problem)


def _describe(exc: Exception) -> str:
    """One line naming an exception's type and message."""
    return " ".join(f"{type(exc).__name__}: {exc}".split())


def _check_size(path: Path, size: tuple[int, int], max_pixels: int | None, folder: str) -> None:
    """Reject over-large, empty or absurdly thin images from their header size."""
    width, height = size
    if max_pixels is not None and width * height > max_pixels:
        raise InputError(path, f"too large: {width}x{height} is over the {max_pixels:,}-pixel limit; "
                               f"shrink it or remove it from {folder}")
    if min(width, height) < 1 or max(width, height) > MAX_ASPECT_RATIO * min(width, height):
        raise InputError(path, f"unusable size {width}x{height} (empty, or longer than {MAX_ASPECT_RATIO}:1); "
                               f"crop it or remove it from {folder}")


def _to_rgb(image: Image.Image) -> np.ndarray:
    """Convert a loaded Pillow image of any mode to a uint8 RGB array."""
    if image.mode in _HIGH_BIT_MODES:
        return _high_bit_to_rgb(image)
    if image.has_transparency_data:
        image = Image.alpha_composite(Image.new("RGBA", image.size, "white"), image.convert("RGBA"))
    return np.asarray(image.convert("RGB"))


def _high_bit_to_rgb(image: Image.Image) -> np.ndarray:
    """A 16-bit, 32-bit or float grey image as uint8 RGB: [0, full scale] (1 for float data, 65535 for the others)
    mapped linearly to 0..255, data outside that range stretched min-to-max. Converted a band of rows at a time,
    so a big image needs no full-size float copy."""
    low, high = 0.0, 1.0 if image.mode == "F" else 65535.0
    extremes = [(band.min(), band.max()) for _, band in _bands(image)]
    data_low, data_high = min(e[0] for e in extremes), max(e[1] for e in extremes)
    if data_low < low or data_high > high:
        low, high = float(data_low), float(data_high)
    rgb = np.empty((image.height, image.width, 3), np.uint8)
    for top, band in _bands(image):
        scaled = (band - low) * (255.0 / max(high - low, 1e-12))
        rgb[top:top + len(band)] = np.clip(np.rint(scaled), 0, 255).astype(np.uint8)[:, :, None]
    return rgb


def _bands(image: Image.Image):
    """(top row, float64 values with NaN as 0) for each band of _BAND_ROWS rows of a one-channel image."""
    for top in range(0, image.height, _BAND_ROWS):
        box = (0, top, image.width, min(top + _BAND_ROWS, image.height))
        yield top, np.nan_to_num(np.asarray(image.crop(box), dtype=np.float64))


def resize_to_long_side(image: np.ndarray, long_side: int) -> np.ndarray:
    """Resize a uint8 RGB array (up or down, Lanczos) so its longer side is `long_side`, keeping the aspect."""
    if long_side < 1:
        raise ValueError(f"long_side must be at least 1, got {long_side}")
    height, width = image.shape[:2]
    scale = long_side / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return np.asarray(Image.fromarray(image).resize(size, Image.Resampling.LANCZOS))


def to_unit_range(image: np.ndarray) -> np.ndarray:
    """Map uint8 0..255 to float32 -1..1."""
    return image.astype(np.float32) / np.float32(127.5) - np.float32(1.0)


def noise_image(height: int, width: int, seed: int = 0) -> np.ndarray:
    """Uniform pixel noise, uint8 (H, W, 3): the static that a dream from `noise` starts from."""
    return np.random.default_rng(seed).integers(0, 256, size=(height, width, 3), dtype=np.uint8)


def noise_shape(name, long_side: int) -> tuple[int, int] | None:
    """(height, width) of a `noise` input (a `long_side` square) or a `noise:WxH` one; None for a photo."""
    match = re.fullmatch(r"noise(?::(\d+)x(\d+))?", str(name))
    if match is None:
        if str(name).startswith("noise:") and not Path(name).exists():
            raise InputError(name, "write noise or noise:WxH, such as noise:640x480")
        return None
    width, height = (int(match[1]), int(match[2])) if match[1] else (long_side, long_side)
    if not 1 <= min(width, height) <= max(width, height) <= 8192:
        raise InputError(name, "a noise size must be between 1x1 and 8192x8192")
    return height, width


def input_image(name, long_side: int, seed: int = 0):
    """The uint8 image of an input: a photo resized to `long_side`, or seeded static for `noise[:WxH]`."""
    shape = noise_shape(name, long_side)
    if shape is not None:
        return noise_image(*shape, seed=seed)
    return resize_to_long_side(load_image(name), long_side)
