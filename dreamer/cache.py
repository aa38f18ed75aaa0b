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
from dreamer.networks.trained import weights_digest
from dreamer.precision import resolve

KEY_CHARS = 16  # 64 bits of sha256: plenty for a gallery, short in file names
MANIFEST_VERSION = 2  # 2 records every file of the site (1: renders and photos only)
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
    So are options that are off, so that a new option, off by default, keeps the old keys. A style image counts
    by its bytes."""
    definition = {k: v for k, v in style_definition(style).items() if k not in _COSMETIC and not _neutral(v)}
    if style.style_image:  # the painting's bytes, not its path: a new painting renders again, a moved one not
        definition["style_image"] = _painting_digest(style.style_image)
    else:
        definition.pop("style_weight", None)  # the weight of a term that is not there
    trained_weights = weights_digest(style.network)
    if trained_weights:  # a network of the user's: retrained, it renders again
        definition["network_weights"] = trained_weights
    return _hash({"input": input_sha256, "style": definition, "options": options,
                  "engine": ENGINE_VERSION, "backend": chosen_backend()})


def _painting_digest(path) -> str | None:
    """sha256 of a style image, or None if it cannot be read (its render then fails, naming the file)."""
    try:
        return file_digest(path)
    except OSError:
        return None


def photo_key(input_sha256: str, size: int) -> str:
    """The key of the original photo resized for the gallery."""
    return _hash({"input": input_sha256, "photo": size})


@dataclass
class Manifest:
    """site/manifest.json: what every render and photo in the site was made from, and every file that is
    Dreamer's in the site.

    renders: key -> {input, input_sha256, style, definition, options, precision, backend, engine, frames,
    gif_frames, seconds, width, height, bytes, still_bytes, gif, still}; photos: key -> {input, sha256, width,
    height, bytes, file}; files: path relative to the site -> {bytes, sha256} for every file a build wrote
    (renders, photos, pages, static files, .nojekyll): the only files a build may replace or delete.
    `found` says what load found: "ok", "missing", "corrupt" (not a Dreamer manifest), or "legacy" (version 1,
    which recorded no files)."""

    renders: dict = field(default_factory=dict)
    photos: dict = field(default_factory=dict)
    files: dict = field(default_factory=dict)
    found: str = "ok"

    @classmethod
    def load(cls, path) -> "Manifest":
        """The manifest at `path`; an empty one, saying why in `found`, if it is missing or unreadable."""
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            return cls(found="missing")
        except (OSError, ValueError):
            return cls(found="corrupt")
        try:
            version = data.get("version")
            renders, photos = dict(data["renders"]), dict(data["photos"])
            if version == 1:
                return cls(renders, photos, found="legacy")
            if version == MANIFEST_VERSION:
                return cls(renders, photos, dict(data["files"]))
        except (KeyError, TypeError, ValueError, AttributeError):
            pass
        return cls(found="corrupt")

    def save(self, path) -> None:
        """Write it atomically (unless unchanged), keys sorted so that commits show small diffs."""
        data = {"version": MANIFEST_VERSION, "engine": ENGINE_VERSION, "renders": self.renders,
                "photos": self.photos, "files": self.files}
        text = json.dumps(data, indent=1, sort_keys=True, ensure_ascii=False) + "\n"
        try:
            if Path(path).read_text(encoding="utf-8") == text:
                return
        except (OSError, ValueError):
            pass
        write_text(path, text)
