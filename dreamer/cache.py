"""Content-addressed renders: keys from what makes a picture, and the manifest of what was made.

A render's key hashes the input's bytes, the style's definition (precision resolved), the engine
version, the Keras backend and the render options; a photo's key hashes its bytes and the size.
Outputs are named by key, so a changed photo or style gets a new key and an old file is simply
no longer referenced. Nothing here imports Keras or TensorFlow.
"""

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from dreamer import ENGINE_VERSION
from dreamer.atomic import write_text
from dreamer.backends import chosen_backend
from dreamer.precision import resolve

KEY_CHARS = 16  # 64 bits of sha256: plenty for a gallery, short in file names
MANIFEST_VERSION = 1
# Style fields that name or describe a style without changing its pictures.
_COSMETIC = ("name", "description")


def file_digest(path) -> str:
    """sha256 of a file's bytes, hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def style_definition(style) -> dict:
    """The style as plain data with its precision resolved for this machine."""
    data = style.to_dict()
    data["precision"] = resolve(style.precision)
    return data


def _hash(data) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:KEY_CHARS]


def _neutral(value) -> bool:
    """An option that is off: None, False or empty. Adding a new option that is off by default to
    Style must not change the key of every existing render."""
    return value is None or value is False or (isinstance(value, (str, dict, list, tuple)) and not value)


def render_key(input_sha256: str, style, options: dict) -> str:
    """The key of dreaming these bytes with this style and these render options.

    The style's name and description are left out: renaming a style or rewording it reuses its renders.
    So are options that are off, so that a new option, off by default, keeps the old keys."""
    definition = {k: v for k, v in style_definition(style).items() if k not in _COSMETIC and not _neutral(v)}
    return _hash({"input": input_sha256, "style": definition, "options": options,
                  "engine": ENGINE_VERSION, "backend": chosen_backend()})


def photo_key(input_sha256: str, size: int) -> str:
    """The key of the original photo resized for the gallery."""
    return _hash({"input": input_sha256, "photo": size})


@dataclass
class Manifest:
    """site/manifest.json: what every render and photo in the site was made from.

    renders: key -> {input, style, definition, options, precision, backend, engine, frames, seconds,
    width, height, bytes, gif, still}; photos: key -> {input, sha256, width, height, bytes, file}."""

    renders: dict = field(default_factory=dict)
    photos: dict = field(default_factory=dict)

    @classmethod
    def load(cls, path) -> "Manifest":
        """The manifest at `path`; an empty one if it is missing or unreadable (its renders are redone)."""
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
            if data.get("version") != MANIFEST_VERSION:
                return cls()
            return cls(dict(data["renders"]), dict(data["photos"]))
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return cls()

    def save(self, path) -> None:
        """Write it atomically (unless unchanged), keys sorted so that commits show small diffs."""
        data = {"version": MANIFEST_VERSION, "engine": ENGINE_VERSION, "renders": self.renders,
                "photos": self.photos}
        text = json.dumps(data, indent=1, sort_keys=True, ensure_ascii=False) + "\n"
        try:
            if Path(path).read_text(encoding="utf-8") == text:
                return
        except (OSError, ValueError):
            pass
        write_text(path, text)
