"""Content-addressed renders: keys from what makes a picture (the manifest of what was made: dreamer.gallery.manifest).

A render's key hashes the input's bytes, the style's definition (precision resolved), the engine
version, the Keras backend and the render options; a photo's key hashes its bytes and the size.
Outputs are named by key, so a changed photo or style gets a new key and an old file is simply
no longer referenced. Nothing here imports Keras or TensorFlow.
"""

import hashlib
import json

from dreamer.engine import ENGINE_VERSION
from dreamer.engine.backends import chosen_backend
from dreamer.engine.precision import resolve
from dreamer.files.digest import file_sha256
from dreamer.networks.trained import weights_digest

KEY_CHARS = 16  # 64 bits of sha256: plenty for a gallery, short in file names
# Style fields that name or describe a style without changing its pictures.
_COSMETIC = ("name", "description")


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
        return file_sha256(path)
    except OSError:
        return None


def photo_key(input_sha256: str, size: int, clip: dict | None = None) -> str:
    """The key of the original photo resized for the gallery (of a clip: its part and frame rate `clip` too)."""
    return _hash({"input": input_sha256, "photo": size, **({"clip": clip} if clip is not None else {})})
