"""InceptionV3 with the uint8-quantised weights of nsfwjs's tfjs model (a Keras 2 InceptionV3 fine-tuned
from ImageNet): the TensorFlow DeepDream tutorial's network family.

Layer names are those keras.applications.InceptionV3 gets in a fresh session (`conv2d`, `conv2d_1`, ...,
`batch_normalization_*`, `activation_*`, `mixed0` ... `mixed10`), whatever Keras named before. The model
ends at `mixed10`: nsfwjs's head was trained to detect NSFW content and is never loaded.
Input RGB in [-1, 1], mapped inside onto the [0, 1] that nsfwjs was trained on.
"""

import json
import re

import numpy as np

from dreamer.errors import WeightsError
from dreamer.networks.fetch import NSFWJS_SHARDS, converted_model, fetched_path
from dreamer.networks.registry import Network, register

FETCH = "nsfwjs"
CACHE_NAME = "inceptionv3-nsfwjs.weights.h5"
AUTO_NAMED = ("conv2d", "batch_normalization", "activation", "max_pooling2d", "average_pooling2d", "concatenate")


def read_tfjs_weights(manifest: dict, shards: list[bytes]) -> dict[str, np.ndarray]:
    """tfjs weight name -> float32 array, from a model.json and its group's shard bytes (concatenated in
    order, each weight uint8-quantised: value = q * scale + min)."""
    data = b"".join(shards)
    weights, offset = {}, 0
    for group in manifest["weightsManifest"]:
        for entry in group["weights"]:
            quant = entry.get("quantization", {})
            if quant.get("dtype") != "uint8":
                raise WeightsError(f"nsfwjs: {entry['name']} is not uint8-quantised")
            count = int(np.prod(entry["shape"]))
            q = np.frombuffer(data, np.uint8, count, offset).astype(np.float32)
            weights[entry["name"]] = (q * quant["scale"] + quant["min"]).reshape(entry["shape"])
            offset += count
    if offset != len(data):
        raise WeightsError(f"nsfwjs: the shards hold {len(data)} bytes, the manifest {offset}")
    return weights


def split_name(name: str) -> tuple[str, int]:
    """An automatic Keras layer name's prefix and number: `conv2d_5` -> ("conv2d", 5), `conv2d` -> ("conv2d", 0)."""
    prefix, number = re.fullmatch(r"(.*?)(?:_(\d+))?", name).groups()
    return prefix, int(number or 0)


def _fresh_session_names(model) -> None:
    """Rename the automatically named layers as a fresh Keras session names them, in creation order."""
    numbered = {prefix: [] for prefix in AUTO_NAMED}
    for layer in model.layers:
        prefix, number = split_name(layer.name)
        if prefix in numbered:
            numbered[prefix].append((number, layer))
    for prefix, layers in numbered.items():
        for i, (_, layer) in enumerate(sorted(layers, key=lambda item: item[0])):
            layer.name = f"{prefix}_{i}" if i else prefix


def build_architecture():
    """keras.applications.InceptionV3 without its top, any input size (at least 75 px), fresh weights."""
    import keras
    from keras import layers

    image = keras.Input((None, None, 3), name="image")
    unit = layers.Rescaling(0.5, offset=0.5, name="preprocess")(image)  # [-1, 1] -> nsfwjs's [0, 1]
    inception = keras.applications.InceptionV3(weights=None, include_top=False, input_tensor=unit)
    _fresh_session_names(inception)
    return keras.Model(image, inception.output, name="inceptionv3")


def copy_nsfwjs_weights(model) -> None:
    """Dequantise the fetched tfjs weights and set them: tfjs `conv2d_{k+1}` / `batch_normalization_{k+1}`
    (Keras 2 numbering, from 1) onto this model's k-th; batch norms have no gamma (scale=False)."""
    manifest = json.loads(fetched_path(FETCH, "model.json").read_text())
    weights = read_tfjs_weights(manifest, [fetched_path(FETCH, shard).read_bytes() for shard in NSFWJS_SHARDS])
    used = set()
    for layer in model.layers:
        kind = type(layer).__name__
        if kind not in ("Conv2D", "BatchNormalization"):
            continue
        prefix, number = split_name(layer.name)
        keys = ["kernel"] if kind == "Conv2D" else ["beta", "moving_mean", "moving_variance"]
        names = [f"{prefix}_{number + 1}/{key}" for key in keys]
        values = [weights.get(name) for name in names]
        expected = [tuple(w.shape) for w in layer.get_weights()]
        if [None if v is None else v.shape for v in values] != expected:
            raise WeightsError(f"nsfwjs: {names[0]} does not fit layer {layer.name} {expected}")
        layer.set_weights(values)
        used.update(names)
    unused = sorted(name for name in set(weights) - used if not name.startswith("dense_"))
    if unused:
        raise WeightsError(f"nsfwjs: {len(unused)} weights left unmapped, e.g. {unused[0]}")


def build_inceptionv3():
    """InceptionV3 with nsfwjs's weights, dequantised once from the fetched shards and cached as Keras weights."""
    return converted_model(CACHE_NAME, build_architecture, copy_nsfwjs_weights)


register(Network(
    name="inceptionv3",
    summary="InceptionV3 (ImageNet-initialised, quantised; the TF tutorial's family): swirls, eyes, "
            "pagodas; dream up to mixed5",
    weights="nsfwjs 4.3.0's tfjs model (MIT, npm), fetched by `dreamer fetch nsfwjs` and dequantised once",
    build=build_inceptionv3,
))
