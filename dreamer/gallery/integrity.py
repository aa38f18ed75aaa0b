"""Is a file still the one Dreamer wrote? Records of size and sha256, checked cheaply through a stat cache.

The manifest records each file's size and sha256. Whether a file on disk still matches is decided by its
size, and by its sha256 whenever its size or mtime differs from the stat cache's (a local file beside the
lock, since mtimes change with every clone and do not belong in the committed manifest).
"""

import json
import os
from pathlib import Path

from dreamer.files.atomic import write_text
from dreamer.files.digest import file_sha256
from dreamer.media.gif import decode_gif


def record(path) -> dict:
    """The manifest's record of a file: {"bytes": size, "sha256": hex}."""
    return {"bytes": os.stat(path).st_size, "sha256": file_sha256(path)}


class StatCache:
    """{relative path: [size, mtime_ns, sha256]} of files seen intact, kept in `path` (JSON)."""

    def __init__(self, path: Path):
        self.path = Path(path)
        try:
            self._seen = {k: tuple(v) for k, v in json.loads(self.path.read_text(encoding="utf-8")).items()}
        except (OSError, ValueError, AttributeError, TypeError):
            self._seen = {}
        self._saved = dict(self._seen)

    def intact(self, root: Path, name: str, expected: dict) -> bool:
        """Whether root/name has the size and sha256 of `expected`; hashes only when its size or mtime
        is not the one last seen with that sha256."""
        try:
            st = os.stat(root / name)
        except OSError:
            return False
        if st.st_size != expected.get("bytes"):
            return False
        if self._seen.get(name) == (st.st_size, st.st_mtime_ns, expected.get("sha256")):
            return True
        digest = file_sha256(root / name)
        if digest == expected.get("sha256"):
            self.note(name, st, digest)
            return True
        return False

    def note(self, name: str, st: os.stat_result, sha256: str) -> None:
        """Remember that `name` with this stat has this sha256."""
        self._seen[name] = (st.st_size, st.st_mtime_ns, sha256)

    def save(self, keep) -> None:
        """Write the cache (for the names in `keep` only), if it changed."""
        self._seen = {k: v for k, v in self._seen.items() if k in keep}
        if self._seen != self._saved:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            write_text(self.path, json.dumps(self._seen, sort_keys=True))
            self._saved = dict(self._seen)


def check_gif(path, frames: int, width: int, height: int) -> str | None:
    """None if `path` decodes as a GIF of `frames` frames of width x height; else what is wrong."""
    try:
        found = decode_gif(path)
    except Exception as exc:  # Pillow raises many types on bad data
        return f"does not decode as a GIF ({type(exc).__name__}: {exc})"
    if found != (frames, width, height):
        return f"has {found[0]} frames of {found[1]}x{found[2]}; the manifest says {frames} of {width}x{height}"
    return None


def check_video(path) -> str | None:
    """None if `path` decodes to its end without an error (imageio-ffmpeg's ffmpeg); else what is wrong."""
    import subprocess

    import imageio_ffmpeg

    command = [imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-xerror", "-i", str(path), "-map", "0:v:0",
               "-f", "null", "-"]
    result = subprocess.run(command, capture_output=True, timeout=300)
    errors = result.stderr.decode("utf-8", "replace").strip()
    if result.returncode or errors:
        return f"does not decode as a video ({' '.join(errors.split())[:200] or f'ffmpeg exit {result.returncode}'})"
    return None
