"""A clip render's finished frames, kept in the cache so that a killed render resumes where it stopped.

A folder per render, named by the key of what makes its frames (the clip's bytes, the style, the size, seed, part
and fps: dreamer.gallery.keys.render_key), holds each dreamed frame as a PNG (lossless: a resumed render ends with
the same bytes), named by its index and the sha256 of its bytes, written atomically. Only the frames from the first
on whose bytes match their names are trusted (the rest are deleted); the render resumes after them. The folder goes once the clip is
written. $DREAMER_CLIP_FRAMES names another place for the folders (the tests' own).
"""

import hashlib
import io
import math
import os
import re
import shutil
from pathlib import Path

import numpy as np

from dreamer.files.atomic import write_bytes
from dreamer.files.paths import cache_dir
from dreamer.files.digest import file_sha256
from dreamer.gallery.keys import render_key

ENV = "DREAMER_CLIP_FRAMES"
_FRAME = re.compile(r"^(?P<index>\d{6,})\.(?P<sha256>[0-9a-f]{64})\.png$")


def frames_root() -> Path:
    """Where clip renders keep their frames: $DREAMER_CLIP_FRAMES, else the cache's clip-frames folder."""
    return Path(os.environ.get(ENV) or cache_dir() / "clip-frames")


class Checkpoint:
    """The frames of one clip render kept so far: `count` trusted ones, `frames()` to read them back in order,
    `save(index, frame)` for the next, `remove()` once the clip is written."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.files = _trusted(folder)
        self.count = len(self.files)
        for path in set(folder.iterdir()) - set(self.files) if folder.is_dir() else ():
            path.unlink()  # a frame not trusted, or the temp file of a write that was killed

    @classmethod
    def of(cls, clip, style, size: int, seed: int, seconds, fps, independent: bool, steps: int, carry: float):
        """The checkpoint of dreaming the clip file `clip` so (`steps` and `carry`: a frame's after the first)."""
        part = None if seconds is None else [seconds[0], None if math.isinf(seconds[1]) else seconds[1]]
        options = {"clip": {"size": size, "seed": seed, "seconds": part, "fps": fps, "independent": independent,
                            "clip_steps": steps, "clip_carry": carry}}
        return cls(frames_root() / render_key(file_sha256(clip), style, options))

    def frames(self):
        """The trusted frames, uint8 H x W x 3, read one at a time."""
        from PIL import Image

        for path in self.files:
            with Image.open(path) as image:
                yield np.asarray(image.convert("RGB"))

    def save(self, index: int, frame: np.ndarray) -> None:
        """Keep dreamed frame `index` (written after those before it)."""
        from PIL import Image

        buffer = io.BytesIO()
        Image.fromarray(frame).save(buffer, "PNG", compress_level=1)
        data = buffer.getvalue()
        write_bytes(self.folder / f"{index:06d}.{hashlib.sha256(data).hexdigest()}.png", data)

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


def _trusted(folder: Path) -> list[Path]:
    """The frame files of `folder` from index 0 on, up to the first one missing or whose bytes do not match its
    name."""
    found = {}
    if folder.is_dir():
        for path in folder.iterdir():
            match = _FRAME.match(path.name)
            if match:
                found[int(match["index"])] = (path, match["sha256"])
    trusted = []
    while len(trusted) in found:
        path, sha256 = found[len(trusted)]
        if file_sha256(path) != sha256:
            break
        trusted.append(path)
    return trusted
