"""Where Dreamer keeps converted and fetched weights."""

import os
from pathlib import Path

import platformdirs


def cache_dir() -> Path:
    """The user's Dreamer cache folder ($DREAMER_CACHE overrides it), created if missing."""
    path = Path(os.environ.get("DREAMER_CACHE") or platformdirs.user_cache_dir("dreamer"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def data_dir() -> Path:
    """The user's Dreamer data folder ($DREAMER_DATA overrides it): what they made with Dreamer, such as the
    networks `dreamer train` fine-tuned. Not created here: reading it (every render key asks) writes nothing;
    the atomic writes that save into it make their folders."""
    return Path(os.environ.get("DREAMER_DATA") or platformdirs.user_data_dir("dreamer"))
