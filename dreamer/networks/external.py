"""Networks from outside Dreamer's registry, named by a source string.

- `keras:NAME[?weights=imagenet|none|PATH]`: a `keras.applications` model by class name (e.g.
  `keras:InceptionV3`), without its head; ImageNet weights are downloaded by Keras into
  `$KERAS_HOME/models/` (default `~/.keras/models/`). The application's own preprocessing is
  built into the network, so its input is RGB in [-1, 1] like every Dreamer network.
- `hub:HANDLE` (an https TF Hub URL, or a handle like `google/imagenet/inception_v1/feature_vector/1`),
  `savedmodel:DIR`, or a plain directory holding `saved_model.pb`: loaded with
  `tensorflow_hub.load`. Layers are the output keys of the `image_feature_vector` signature (TF1
  Hub modules) or else of `serving_default`. Convention: these models receive float32 RGB in
  [0, 1] (Dreamer maps its [-1, 1] images); they run in float32 whatever the precision.
- `PATH.keras`: a Keras model file of your own, loaded with `keras.models.load_model`; its input
  must already be RGB in [-1, 1], shape (batch, height, width, 3).

A model from a file or from TF Hub runs with the user's rights (a SavedModel's graph can read and write
files), so loading one says so on stderr, once per process; `hub:` URLs must be https.
"""

import difflib
import sys
from pathlib import Path
from urllib.parse import urlsplit

from tqdm import tqdm

from dreamer.errors import StyleError, WeightsError
from dreamer.networks.registry import KerasNetwork, check_layers

_PREFIXES = ("keras:", "hub:", "savedmodel:")


def is_external(name: str) -> bool:
    """True when `name` is one of the source strings this module loads."""
    return (name.startswith(_PREFIXES) or name.endswith(".keras")
            or (Path(name) / "saved_model.pb").is_file())


_WARNED: set[str] = set()  # the model sources this process has said run with the user's rights


def load(name: str):
    """Load the network a source string names (see the module docstring)."""
    if name.startswith("keras:"):
        return load_application(name.removeprefix("keras:"))
    if name.startswith("hub:"):
        return load_saved_model(hub_handle(name.removeprefix("hub:")), from_hub=True)
    if name.endswith(".keras"):
        return load_keras_file(name)
    return load_saved_model(name.removeprefix("savedmodel:"), from_hub=False)


def warn_runs_as_you(name: str) -> None:
    """Say once per process, on stderr, that the model `name` runs with the user's rights."""
    if name not in _WARNED:
        _WARNED.add(name)
        tqdm.write(f"note: {name} runs with your rights (a model's graph can read and write your files): "
                   "use only models you trust", file=sys.stderr)


def hub_handle(handle: str) -> str:
    """What `hub:HANDLE` loads: a local folder, a tfhub.dev handle as its https URL, or an https URL; any other
    URL (http://, gs://, file://) is refused, before any network access."""
    if "://" not in handle:
        return handle if Path(handle).is_dir() else "https://tfhub.dev/" + handle
    scheme = urlsplit(handle).scheme
    if scheme != "https":
        fix = f"write hub:https://{handle.split('://', 1)[1]}" if scheme == "http" else "use an https URL"
        raise StyleError(f"hub:{handle}: TF Hub models are fetched over https only; {fix}, or download the model "
                         "and use savedmodel:DIR")
    return handle


def load_keras_file(path: str) -> KerasNetwork:
    """A user's `.keras` model; its input must take RGB in [-1, 1]."""
    import keras

    if not Path(path).is_file():
        raise WeightsError(f"{path}: no such Keras model file")
    warn_runs_as_you(path)
    try:
        return KerasNetwork(keras.models.load_model(path, compile=False))
    except Exception as exc:
        raise WeightsError(f"{path}: cannot load this Keras model ({_first_line(exc)})") from None


def load_application(spec: str) -> KerasNetwork:
    """`keras.applications.NAME` without its head, preprocessing inside, input RGB in [-1, 1]."""
    import keras

    name, _, query = spec.partition("?")
    weights = _weights_option(spec, query)
    known = [n for n in dir(keras.applications) if n[:1].isupper()]
    if name not in known:
        lower = {n.lower(): n for n in known}
        close = [lower[n] for n in difflib.get_close_matches(name.lower(), list(lower), n=3, cutoff=0.5)]
        hint = f"; did you mean {', '.join('keras:' + n for n in close)}?" if close else ""
        raise StyleError(f"keras.applications has no model {name!r}{hint}")
    app = getattr(keras.applications, name)
    # Every application module's preprocess_input maps RGB on 0-255 to what its model expects
    # (caffe, tf or torch mode; a pass-through for models that preprocess inside themselves).
    preprocess = sys.modules[app.__module__].preprocess_input
    image = keras.Input((None, None, 3), name="image")
    try:
        model = app(include_top=False, weights=weights, input_tensor=preprocess((image + 1.0) * 127.5))
    except Exception as exc:
        download = _failed_download(exc)
        if download is None:
            raise StyleError(f"keras:{spec}: {_first_line(exc)}") from None
        url, target = download
        raise WeightsError(f"keras:{name}: cannot download the ImageNet weights {url}; to work offline, "
                           f"download that file elsewhere and put it at {target}") from None
    return KerasNetwork(keras.Model(image, model.output, name=name))


def _failed_download(exc: BaseException):
    """(URL, local file) of the `keras.utils.get_file` call that raised `exc`, or None.

    The local file is read from get_file's frame because Keras's cache name is not always the
    URL's last part (NASNet) and the cache falls back to /tmp/.keras when ~/.keras is read-only.
    """
    tb = exc.__traceback__
    while tb is not None:
        frame = tb.tb_frame.f_locals
        if tb.tb_frame.f_code.co_name == "get_file" and "origin" in frame and "download_target" in frame:
            return frame["origin"], frame["download_target"]
        tb = tb.tb_next
    return None


def _weights_option(spec: str, query: str):
    """The `weights` argument from a `?weights=imagenet|none|PATH` query (default imagenet)."""
    if not query:
        return "imagenet"
    key, _, value = query.partition("=")
    if key != "weights" or not value:
        raise StyleError(f"keras:{spec}: the only option is ?weights=imagenet|none|PATH")
    if value.lower() == "none":
        return None
    if value.lower() == "imagenet":
        return "imagenet"
    if not Path(value).is_file():
        raise WeightsError(f"keras:{spec}: no such weights file {value}")
    return value


class SavedModelNetwork:
    """A TensorFlow SavedModel or TF Hub module whose signature outputs can be dreamed on."""

    SIGNATURES = ("image_feature_vector", "serving_default")

    def __init__(self, module, source: str):
        self.module = module  # keeps the signature's variables alive
        found = [s for s in self.SIGNATURES if s in module.signatures]
        if not found:
            raise StyleError(f"{source}: no {' or '.join(self.SIGNATURES)} signature "
                             f"(it has {', '.join(module.signatures) or 'none'})")
        self.signature = module.signatures[found[0]]
        inputs = self.signature.structured_input_signature[1]
        if len(inputs) != 1:
            raise StyleError(f"{source}: signature {found[0]} takes {len(inputs)} inputs, "
                             f"not one image batch ({', '.join(inputs)})")
        self.input_name = next(iter(inputs))

    def layer_names(self) -> list[str]:
        """The signature's output keys."""
        return list(self.signature.structured_outputs)

    def layer_shapes(self) -> list[tuple[str, tuple]]:
        """(output key, shape) of every signature output."""
        return [(key, tuple(t.shape)) for key, t in self.signature.structured_outputs.items()]

    def extractor(self, layers):
        """A function mapping RGB images in [-1, 1] to {output key: activations} for `layers`."""
        import tensorflow as tf

        check_layers(self.layer_names(), layers)
        layers = list(layers)

        def extract(images):
            images01 = (tf.cast(images, tf.float32) + 1.0) / 2.0
            outputs = self.signature(**{self.input_name: images01})
            return {key: outputs[key] for key in layers}

        return extract


def load_saved_model(handle: str, from_hub: bool) -> SavedModelNetwork:
    """Load a TF Hub URL or folder (`from_hub`, see hub_handle) or a SavedModel directory with
    `tensorflow_hub.load`."""
    import keras

    if keras.backend.backend() != "tensorflow":
        raise StyleError(f"{handle}: hub and SavedModel sources need KERAS_BACKEND=tensorflow")
    import tensorflow_hub as hub

    if not from_hub and not (Path(handle) / "saved_model.pb").is_file():
        raise WeightsError(f"{handle}: not a SavedModel directory (no saved_model.pb in it)")
    warn_runs_as_you(f"{'hub' if from_hub else 'savedmodel'}:{handle}")
    try:
        module = hub.load(handle)
    except OSError as exc:
        if not from_hub:
            raise WeightsError(f"{handle}: cannot load this SavedModel ({_first_line(exc)})") from None
        raise WeightsError(f"cannot download the TF Hub module {handle} ({_first_line(exc)}); download "
                           "and unpack it elsewhere and pass savedmodel:DIR (or set TFHUB_CACHE_DIR "
                           "to a folder that holds it)") from None
    return SavedModelNetwork(module, handle)


def _first_line(exc: BaseException) -> str:
    """The first line of an exception's message (or its type name when it has none)."""
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__
