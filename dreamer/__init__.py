"""Dreamer: DeepDream GIF galleries. As a library: `from dreamer import dream, render, styles, Style, DreamerError`
(and `dream_clip`, `render_clip` for clips; dreamer.api; nothing heavy loads until a dream is asked for)."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # keep TensorFlow's start-up chatter out of the CLI

__version__ = "0.1.0"

_API = ("DreamerError", "Frame", "Style", "dream", "dream_clip", "render", "render_clip", "styles")
__all__ = list(_API)


def __getattr__(name: str):
    """The public API (dreamer.api), imported when first asked for: `import dreamer` stays light."""
    if name in _API:
        from dreamer import api

        return getattr(api, name)
    raise AttributeError(f"module 'dreamer' has no attribute {name!r}")
