"""Numeric precision of the network: bfloat16 where the hardware runs it natively, else float32."""

import contextlib
import functools
import shutil
import subprocess
from pathlib import Path

PRECISIONS = ("auto", "float32", "bfloat16")
# Measured on our 2-core Xeon VM (AVX512-BF16 exposed, AMX not): a VGG16 dream step ran 3.8x SLOWER in
# bfloat16 than in float32 (1.6x in bench/RESULTS.md), while on AMX-BF16 hosts it ran 6x faster. So only
# AMX counts as native.
_BF16_CPU_FLAGS = {"amx_bf16"}


def cpu_has_native_bf16(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """True when this x86 CPU has AMX-BF16 tiles (read from /proc/cpuinfo)."""
    try:
        text = cpuinfo.read_text()
    except OSError:
        return False
    for line in text.splitlines():
        if line.startswith("flags"):
            return bool(_BF16_CPU_FLAGS & set(line.split(":", 1)[1].split()))
    return False


@functools.lru_cache(maxsize=1)
def gpu_has_native_bf16() -> bool:
    """True when `nvidia-smi` reports NVIDIA GPUs of compute capability 8.0 or newer (Ampere on)."""
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return False
    try:
        out = subprocess.run([smi, "--query-gpu=compute_cap", "--format=csv,noheader"], capture_output=True,
                             text=True, timeout=20).stdout
    except (OSError, subprocess.SubprocessError):
        return False
    capabilities = [float(x) for x in out.split() if x.replace(".", "", 1).isdigit()]
    return bool(capabilities) and min(capabilities) >= 8.0


_PLANNED_AUTO = None  # what 'auto' means where the renders run, when that is not here (a cluster's workers)


def plan_auto_as(precision: str) -> None:
    """Make `resolve('auto')` answer `precision`: a build that renders on other machines plans with theirs."""
    global _PLANNED_AUTO
    _PLANNED_AUTO = precision


def resolve(precision: str) -> str:
    """Turn 'auto' into 'bfloat16' or 'float32' for this machine (bfloat16 with an AMX CPU or an Ampere-or-newer
    NVIDIA GPU), or for the machines the renders run on (plan_auto_as); check the name."""
    if precision not in PRECISIONS:
        from dreamer.errors import DreamerError

        raise DreamerError(f"precision {precision!r} is not one of {', '.join(PRECISIONS)}")
    if precision != "auto":
        return precision
    if _PLANNED_AUTO:
        return _PLANNED_AUTO
    return "bfloat16" if cpu_has_native_bf16() or gpu_has_native_bf16() else "float32"


@contextlib.contextmanager
def dtype_policy(precision: str):
    """Build Keras layers under 'mixed_bfloat16' (bfloat16) or 'float32' inside the block."""
    import keras

    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_bfloat16" if resolve(precision) == "bfloat16" else "float32")
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)
