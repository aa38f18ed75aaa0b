"""Which Keras backend renders: $KERAS_BACKEND or keras.json when set, else JAX on an NVIDIA GPU with a CUDA
build of JAX installed, else TensorFlow. Decided without importing Keras, before it is first imported."""

import functools
import importlib.util
import json
import os
import shutil
import sys
from pathlib import Path

from dreamer.errors import DreamerError

BACKENDS = ("tensorflow", "jax")
INSTALL = {"jax": "pip install -e '.[jax]' (on an NVIDIA GPU, a CUDA build too: pip install -U \"jax[cuda12]\")",
           "tensorflow": "pip install -e . (Dreamer's own dependencies include TensorFlow)"}
_JAX_CUDA_PLUGINS = ("jax_cuda13_plugin", "jax_cuda12_plugin")


def _configured() -> str | None:
    """The backend $KERAS_BACKEND or ~/.keras/keras.json names, if any."""
    if os.environ.get("KERAS_BACKEND"):
        return os.environ["KERAS_BACKEND"]
    home = Path(os.environ.get("KERAS_HOME") or Path.home() / ".keras")
    try:
        return json.loads((home / "keras.json").read_text()).get("backend") or None
    except (OSError, ValueError, AttributeError):
        return None


@functools.lru_cache(maxsize=1)
def jax_gpu_available() -> bool:
    """True when an NVIDIA driver (nvidia-smi) and a CUDA plugin of JAX are both installed."""
    return shutil.which("nvidia-smi") is not None and any(
        importlib.util.find_spec(name) is not None for name in _JAX_CUDA_PLUGINS)


def chosen_backend() -> str:
    """The backend Keras will use (see the module's docstring)."""
    return _configured() or ("jax" if jax_gpu_available() else "tensorflow")


def activate(name: str | None = None) -> str:
    """Make `name` (or the chosen backend) the one Keras loads; it must run before Keras is imported."""
    name = name or chosen_backend()
    if name in INSTALL and importlib.util.find_spec(name) is None:
        raise DreamerError(f"the {name} backend is not installed: {INSTALL[name]}")
    if "keras" in sys.modules and sys.modules["keras"].backend.backend() != name:
        raise DreamerError(f"Keras was already loaded with another backend; set KERAS_BACKEND={name} instead")
    os.environ["KERAS_BACKEND"] = name
    return name
