"""A served dream's photo added to the gallery's inputs/: its bytes as sent, under a new name, never over a file.
The next build keys it as the server did, and reuses the dream's files from the store (dreamer.gallery.execute)."""

import contextlib
import hashlib
import io
import os
import tempfile
from pathlib import Path

from PIL import Image

SUFFIXES = {"JPEG": "jpg", "MPO": "jpg", "PNG": "png", "GIF": "gif", "WEBP": "webp", "TIFF": "tif", "BMP": "bmp"}


def suffix_of(data: bytes) -> str:
    """The file suffix of a photo's type, from its header (a photo limits.read_photo took)."""
    with Image.open(io.BytesIO(data)) as image:
        return SUFFIXES[image.format]


def add_photo(folder: Path, data: bytes, suffix: str) -> tuple[str, bool]:
    """(the name, whether it is new) of the photo `data` in `folder`: `served-<first 10 of its sha256>.<suffix>`,
    or that name with -2, -3, ... where another file holds the name. Written whole (flushed, then linked in under
    its name: never over a file); a file there with these bytes already is the answer."""
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"served-{hashlib.sha256(data).hexdigest()[:10]}"
    fd, temp = tempfile.mkstemp(prefix=f".{stem}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(temp, 0o644)
        for n in range(1, 1000):
            name = f"{stem}.{suffix}" if n == 1 else f"{stem}-{n}.{suffix}"
            try:
                os.link(temp, folder / name)
                return name, True
            except FileExistsError:
                with contextlib.suppress(OSError):
                    if (folder / name).read_bytes() == data:
                        return name, False
        raise FileExistsError(f"{folder / stem}: a thousand files of that name")
    finally:
        os.unlink(temp)
