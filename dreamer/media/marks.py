"""Dreamer's mark in the files it writes, so that it can tell its own files from a user's.

A GIF carries a comment, `{"made_by": "Dreamer", ...}` with what the render was (engine, frames,
backend, precision), and a video the same in its comment tag; a still or photo the EXIF Software tag
`Dreamer`; a page the `<meta name="generator" content="Dreamer">` of dreamer/templates/base.html. `read_mark` reads
any of them back.
"""

import json
import re
from pathlib import Path

MADE_BY = "Dreamer"
EXIF_SOFTWARE = 0x0131
HTML_MARK = b'<meta name="generator" content="Dreamer">'
_STILLS = {".jpg", ".jpeg", ".png", ".webp"}
_VIDEOS = {".mp4", ".webm"}


def gif_comment(**meta) -> str:
    """The comment of a GIF Dreamer writes: JSON naming Dreamer, with `meta`."""
    return json.dumps({"made_by": MADE_BY, **meta}, sort_keys=True)


def still_exif() -> bytes:
    """EXIF for a still or photo Dreamer writes: Software = Dreamer."""
    from PIL import Image

    exif = Image.Exif()
    exif[EXIF_SOFTWARE] = MADE_BY
    return exif.tobytes()


def read_mark(path) -> dict | None:
    """What Dreamer recorded in a file it wrote (a GIF's comment as a dict; {} for a marked still or page),
    or None when the file carries no mark of Dreamer's (a user's file, unreadable, or another type)."""
    path = Path(path)
    suffix = path.suffix.lower()
    try:
        if suffix == ".html":
            with open(path, "rb") as f:
                return {} if HTML_MARK in f.read(2048) else None
        if suffix in _VIDEOS:
            return _marked(json.loads(_video_comment(path) or "null"))
        if suffix not in _STILLS | {".gif"}:
            return None
        from PIL import Image

        with Image.open(path) as image:
            if suffix == ".gif":
                return _marked(json.loads(image.info.get("comment", b"").decode("utf-8") or "null"))
            return {} if image.getexif().get(EXIF_SOFTWARE) == MADE_BY else None
    except Exception:  # unreadable, not an image, a comment that is not JSON: Pillow raises many types
        return None


def _marked(meta) -> dict | None:
    return meta if isinstance(meta, dict) and meta.get("made_by") == MADE_BY else None


def _video_comment(path: Path) -> str | None:
    """A video's comment tag, read by imageio-ffmpeg's ffmpeg (ffmetadata escapes = ; # \\ and newlines)."""
    import subprocess

    import imageio_ffmpeg

    command = [imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-i", str(path), "-f", "ffmetadata", "-"]
    result = subprocess.run(command, capture_output=True, timeout=60, check=True)
    for line in result.stdout.decode("utf-8", "replace").splitlines():
        if line.lower().startswith("comment="):
            return re.sub(r"\\(.)", r"\1", line.split("=", 1)[1])
    return None
