"""The server's bounds, and uploaded photos checked against them: the type from the content, the pixels from
the header before anything is decoded, then the decode itself. Every refusal is a Refused: a status and one line."""

import io
import math
import re
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image

from dreamer.errors import InputError, one_line
from dreamer.options import MIN_SIZE
from dreamer.media.images import DEFAULT_MAX_PIXELS, MAX_ASPECT_RATIO, load_image

FORMATS = {"JPEG", "MPO", "PNG", "GIF", "WEBP", "TIFF", "BMP"}  # what Pillow names the types we take


class Refused(Exception):
    """A request the server refuses: an HTTP status and one line saying why."""

    def __init__(self, status: int, line: str, retry_after: int | None = None):
        super().__init__(line)
        self.status, self.line, self.retry_after = status, line, retry_after


@dataclass(frozen=True)
class Limits:
    """What one request and the whole server may ask for."""

    max_upload: int = 20 * 2**20  # bytes of a request's body, counted as they arrive
    max_pixels: int = DEFAULT_MAX_PIXELS  # the engine's own limit, checked from the header
    max_size: int = 512  # long side of a dream in pixels
    max_steps: int = 250  # steps per octave (effnet-lite0-class's own 250 fits)
    max_queue: int = 32  # dreams queued or running, everyone's
    max_per_client: int = 8  # dreams queued or running, one client's
    max_batch: int | str = "auto"  # dreams of one style and canvas dreamed as one batch ('auto': as a build does)
    max_wait_ms: int = 20  # how long a batch that is not full waits for more, from its first dream's arrival
    min_size: int = MIN_SIZE


def read_photo(data: bytes, limits: Limits) -> np.ndarray:
    """An upload's pixels (uint8 H x W x 3); Refused (413 or 422, one line) unless it is an image of a type we
    take, within the pixel and aspect limits, that decodes whole."""
    if not data:
        raise Refused(422, "photo: the file is empty")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:  # reads the header only
                kind, (width, height) = image.format, image.size
    except Exception:  # Pillow raises many types on what is not an image
        kind, width, height = None, 0, 0
    if kind not in FORMATS:
        raise Refused(422, "photo: not an image of a type the server takes (JPEG, PNG, GIF, WebP, TIFF, BMP)")
    if width * height > limits.max_pixels:
        raise Refused(413, f"photo: {width}x{height} is over the {limits.max_pixels:,}-pixel limit; shrink it")
    if min(width, height) < 1 or max(width, height) > MAX_ASPECT_RATIO * min(width, height):
        raise Refused(422, f"photo: {width}x{height} is empty or longer than {MAX_ASPECT_RATIO}:1; crop it")
    try:
        return load_image(data, limits.max_pixels)
    except InputError as exc:  # "the photo's bytes: PROBLEM; FIX": the problem is what the client needs
        raise Refused(422, f"photo: {one_line(exc).split(': ', 1)[-1].split('; ')[0]}") from None


def noise_size(text: str, limits: Limits) -> tuple[int, int]:
    """(width, height) of a `noise` field such as 320x240; Refused (422) unless both sides are within limits."""
    match = re.fullmatch(r"(\d{1,5})x(\d{1,5})", text.strip())
    if match is None:
        raise Refused(422, f"noise: {text[:40]!r} is not WxH, such as 320x240")
    width, height = int(match[1]), int(match[2])
    if not limits.min_size <= min(width, height) <= max(width, height) <= limits.max_size:
        raise Refused(422, f"noise: each side from {limits.min_size} to {limits.max_size} pixels, not {width}x{height}")
    return width, height


def retry_after(seconds: float) -> int:
    """Whole seconds for a Retry-After header: at least 1."""
    return max(1, math.ceil(seconds))
