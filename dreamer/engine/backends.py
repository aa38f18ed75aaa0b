"""Which Keras backend renders: $KERAS_BACKEND or keras.json when set, else JAX on an NVIDIA GPU with a CUDA
build of JAX installed, else TensorFlow. Decided without importing Keras; `activate` then loads Keras on it,
keeping the native libraries' start-up log lines off the terminal."""

import contextlib
import functools
import importlib.util
import json
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path

from dreamer.errors import DreamerError

BACKENDS = ("tensorflow", "jax")
INSTALL = {"jax": "pip install -e '.[jax]' (on an NVIDIA GPU, a CUDA build too: pip install -U \"jax[cuda12]\")",
           "tensorflow": "pip install -e . (Dreamer's own dependencies include TensorFlow)"}
_JAX_CUDA_PLUGINS = ("jax_cuda13_plugin", "jax_cuda12_plugin")
# What TensorFlow's and XLA's native code logs through absl while it loads (absl writes these to stderr before any
# log level applies, so TF_CPP_MIN_LOG_LEVEL cannot stop them): "I0000 00:00:1795776614.17 123 port.cc:153] ..." lines,
# absl's notice about them, and cpu_feature_guard's second line.
NATIVE_LOG = re.compile(r"[IWEF]\d{4} [\d:.]+ +\d+ [\w./-]+:\d+\] |WARNING: All log messages before absl"
                        r"|To enable the following instructions: .* rebuild TensorFlow")


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
    """Load Keras on `name` (or the chosen backend), without the native libraries' start-up log lines."""
    name = name or chosen_backend()
    if name in INSTALL and importlib.util.find_spec(name) is None:
        raise DreamerError(f"the {name} backend is not installed: {INSTALL[name]}")
    if "keras" in sys.modules and sys.modules["keras"].backend.backend() != name:
        raise DreamerError(f"Keras was already loaded with another backend; set KERAS_BACKEND={name} instead")
    os.environ["KERAS_BACKEND"] = name
    if "keras" not in sys.modules:
        with native_logs_dropped():
            import keras  # noqa: F401 - loads the backend's libraries
    return name


@contextlib.contextmanager
def native_logs_dropped():
    """Inside the block, what is written to the process's stderr (file descriptor 2, where native code writes)
    is held back; on leaving, it is written out without the lines NATIVE_LOG matches."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            held.seek(0)
            lines = held.read().decode(errors="replace").splitlines(keepends=True)
            sys.stderr.write("".join(line for line in lines if not NATIVE_LOG.match(line)))
            sys.stderr.flush()
