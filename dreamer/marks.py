"""Dreamer's mark in the files it writes, so that it can tell its own files from a user's.

A GIF carries a comment, `{"made_by": "Dreamer", ...}` with what the render was (engine, frames,
seconds, backend, precision); a still or photo the EXIF Software tag `Dreamer`; a page the
`<meta name="generator" content="Dreamer">` of templates/base.html. `read_mark` reads any of them back.
"""

import json
from pathlib import Path

MADE_BY = "Dreamer"
EXIF_SOFTWARE = 0x0131
HTML_MARK = b'<meta name="generator" content="Dreamer">'
_STILLS = {".jpg", ".jpeg", ".png", ".webp"}


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
        if suffix not in _STILLS | {".gif"}:
            return None
        from PIL import Image

        with Image.open(path) as image:
            if suffix == ".gif":
                meta = json.loads(image.info.get("comment", b"").decode("utf-8") or "null")
                return meta if isinstance(meta, dict) and meta.get("made_by") == MADE_BY else None
            return {} if image.getexif().get(EXIF_SOFTWARE) == MADE_BY else None
    except Exception:  # unreadable, not an image, a comment that is not JSON: Pillow raises many types
        return None
