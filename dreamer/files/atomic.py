"""Atomic, durable file writes: a temp file beside the target, flushed to disk, then a rename.

The temp file is `.<target name>.<8 random characters>.tmp<target's suffixes>`; `temp_target` reads
that name back, so a build can recognise (and remove) what an interrupted write of its own left.
"""

import contextlib
import os
import re
import tempfile
from pathlib import Path

_TEMP = re.compile(r"^\.(?P<target>.+)\.[a-z0-9_]{8}\.tmp(\.[^.]+)*$")


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path beside `path`; if the block succeeds, flush it to disk, rename it onto
    `path` and flush the folder, so that a power cut leaves the old file or the new one, never a torn one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp" + "".join(path.suffixes), dir=path.parent)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600 files; the site must be readable by a web server
    try:
        yield Path(tmp)
        _fsync(tmp, os.O_RDONLY)
        os.replace(tmp, path)
        _fsync(path.parent, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def _fsync(path, flags) -> None:
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def temp_target(name: str) -> str | None:
    """The name of the file that an atomic write's temp file `name` was for (the innermost target for a
    temp file of a temp file), or None if `name` is not such a temp file."""
    target = None
    while (match := _TEMP.match(name)) is not None:
        name = target = match["target"]
    return target


def write_bytes(path, data: bytes) -> None:
    """Write `data` to `path` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text(path, text: str) -> None:
    """Write `text` (UTF-8) to `path` atomically."""
    write_bytes(path, text.encode("utf-8"))
