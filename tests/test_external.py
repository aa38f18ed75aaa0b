"""External networks: keras.applications, SavedModels / TF Hub, and users' .keras files (offline)."""

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest

keras = pytest.importorskip("keras")
tf = pytest.importorskip("tensorflow")

from dreamer.errors import StyleError, WeightsError  # noqa: E402
from dreamer.networks import external  # noqa: E402


def images(size, batch=1, seed=0):
    """Random RGB images in [-1, 1]."""
    return np.random.default_rng(seed).uniform(-1, 1, (batch, size, size, 3)).astype("float32")


# The download attempts of the offline tests run in a child process whose environment takes the network away:
# Keras's cache ($KERAS_HOME, read when keras is imported) and TF Hub's ($TFHUB_CACHE_DIR) are new empty folders,
# and every HTTP(S) request goes through a "proxy" on a local port that this test holds bound but never listens
# on, so each connection is refused at once, whether or not this machine could reach the hubs.
OFFLINE_LOADS = """
import json, sys
from dreamer.networks import external
found = {}
for source in sys.argv[1:]:
    try:
        external.load(source)
        found[source] = ["loaded", ""]
    except Exception as exc:
        found[source] = [type(exc).__name__, str(exc)]
print("RESULT " + json.dumps(found))
"""
KERAS_VGG16 = "keras:VGG16"
HUB_URL = "https://tfhub.dev/google/imagenet/inception_v1/feature_vector/1"
PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY")


@pytest.fixture(scope="module")
def offline(tmp_path_factory):
    """{source: (exception type name, message)} of loading keras:VGG16 and a TF Hub URL with no network and empty
    caches; also the Keras cache folder used."""
    root = tmp_path_factory.mktemp("offline")
    keras_home, hub_cache = root / "keras", root / "tfhub"
    keras_home.mkdir(), hub_cache.mkdir()
    with socket.socket() as refuser:  # bound, never listening: a connection to it is refused
        refuser.bind(("127.0.0.1", 0))
        proxy = f"http://127.0.0.1:{refuser.getsockname()[1]}"
        env = {k: v for k, v in os.environ.items() if k.lower() != "no_proxy"}
        env.update({name: proxy for name in PROXY_VARIABLES}, KERAS_HOME=str(keras_home),
                   TFHUB_CACHE_DIR=str(hub_cache), TFHUB_MODEL_LOAD_FORMAT="COMPRESSED", KERAS_BACKEND="tensorflow")
        done = subprocess.run([sys.executable, "-c", OFFLINE_LOADS, KERAS_VGG16, "hub:" + HUB_URL], env=env,
                              capture_output=True, text=True, timeout=300)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert done.returncode == 0 and lines, done.stdout[-2000:] + done.stderr[-3000:]
    return json.loads(lines[0].removeprefix("RESULT ")), keras_home


def test_is_external_recognises_the_source_forms(tmp_path):
    (tmp_path / "saved_model.pb").write_bytes(b"")
    for name in ["keras:VGG19", "hub:https://tfhub.dev/x/1", "savedmodel:/m", "mine.keras", str(tmp_path)]:
        assert external.is_external(name), name
    assert not external.is_external("vgg16")


def test_vgg16_has_caffe_preprocessing_inside():
    network = external.load("keras:VGG16?weights=none")
    x = images(8)
    got = network.extractor(["block1_conv1"])(x)["block1_conv1"]
    kernel, bias = network.model.get_layer("block1_conv1").get_weights()
    bgr = (x + 1) * 127.5
    bgr = bgr[..., ::-1] - np.array([103.939, 116.779, 123.68], "float32")
    want = tf.nn.relu(tf.nn.conv2d(bgr, kernel, 1, "SAME") + bias)
    np.testing.assert_allclose(np.asarray(got), want.numpy(), rtol=1e-4, atol=1e-3)


def test_inception_v3_mixed3_mixed5():
    network = external.load("keras:InceptionV3?weights=none")
    assert {"mixed3", "mixed5"} <= set(network.layer_names())
    out = network.extractor(["mixed3", "mixed5"])(images(75))
    assert out["mixed3"].shape[-1] == 768 and out["mixed5"].shape[-1] == 768


def test_unknown_application_lists_close_names():
    with pytest.raises(StyleError, match="keras:InceptionV3") as info:
        external.load("keras:inceptionv3x")
    assert "\n" not in str(info.value)
    with pytest.raises(StyleError, match="weights="):
        external.load("keras:VGG16?size=3")


def test_imagenet_weights_offline_is_one_weights_error_line(offline):
    found, keras_home = offline
    kind, message = found[KERAS_VGG16]
    assert kind == "WeightsError", message
    assert "\n" not in message
    assert "https://storage.googleapis.com/" in message
    assert "models/vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5" in message
    # the file to put in place is named where this Keras looks for it: in $KERAS_HOME
    assert f"put it at {keras_home / 'models' / 'vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5'}" in message


def test_hub_url_offline_is_one_weights_error_line(offline):
    found, _ = offline
    kind, message = found["hub:" + HUB_URL]
    assert kind == "WeightsError", message
    assert "\n" not in message and HUB_URL in message and "savedmodel:" in message
    assert "refused" in message  # the test's own guard: it reached our refusing proxy, not the internet


@pytest.fixture(scope="module")
def saved_model_dir(tmp_path_factory):
    """A tiny two-conv SavedModel whose serving signature returns both conv outputs."""

    class TwoConvs(tf.Module):
        def __init__(self):
            rng = np.random.default_rng(1)
            self.k1 = tf.Variable(rng.normal(size=(3, 3, 3, 4)).astype("float32"))
            self.k2 = tf.Variable(rng.normal(size=(3, 3, 4, 5)).astype("float32"))

        @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32)])
        def serve(self, images):
            conv1 = tf.nn.relu(tf.nn.conv2d(images, self.k1, 1, "SAME"))
            conv2 = tf.nn.relu(tf.nn.conv2d(conv1, self.k2, 2, "SAME"))
            return {"conv1": conv1, "conv2": conv2}

    module = TwoConvs()
    path = tmp_path_factory.mktemp("savedmodel") / "two_convs"
    tf.saved_model.save(module, str(path), signatures={"serving_default": module.serve})
    return path


def test_saved_model_outputs_and_gradient(saved_model_dir):
    network = external.load(f"savedmodel:{saved_model_dir}")
    assert sorted(network.layer_names()) == ["conv1", "conv2"]
    assert dict(network.layer_shapes())["conv2"] == (None, None, None, 5)
    extract = network.extractor(["conv2"])
    x = tf.constant(images(16))
    with tf.GradientTape() as tape:
        tape.watch(x)
        out = extract(x)
        loss = tf.reduce_mean(out["conv2"])
    assert list(out) == ["conv2"] and out["conv2"].shape == (1, 8, 8, 5)
    assert float(tf.reduce_max(tf.abs(tape.gradient(loss, x)))) > 0
    with pytest.raises(StyleError, match="conv3"):
        network.extractor(["conv3"])


def test_plain_saved_model_directory_and_missing_one(saved_model_dir, tmp_path):
    assert external.is_external(str(saved_model_dir))
    assert "conv1" in external.load(str(saved_model_dir)).layer_names()
    with pytest.raises(WeightsError, match="saved_model.pb"):
        external.load(f"savedmodel:{tmp_path / 'nothing'}")


def test_keras_file_loads_and_missing_one_is_weights_error(tmp_path):
    x = keras.Input((None, None, 3))
    y = keras.layers.Conv2D(4, 3, name="c1")(x)
    path = tmp_path / "tiny.keras"
    keras.Model(x, keras.layers.Conv2D(2, 3, name="c2")(y)).save(path)
    network = external.load(str(path))
    assert {"c1", "c2"} <= set(network.layer_names())
    assert network.extractor(["c1"])(images(8))["c1"].shape == (1, 6, 6, 4)
    with pytest.raises(WeightsError, match="missing.keras"):
        external.load(str(tmp_path / "missing.keras"))


def test_missing_weights_file_is_weights_error(tmp_path):
    with pytest.raises(WeightsError, match="no such weights file"):
        external.load(f"keras:VGG16?weights={tmp_path / 'vgg.weights.h5'}")


def test_saved_model_style_renders_a_gif(saved_model_dir, tmp_path):
    """The whole render path (engine, tiles, GIF) works on a SavedModel source."""
    from PIL import Image

    from dreamer.dreaming import render
    from dreamer.options import RenderOptions
    from dreamer.style import Style

    photo = tmp_path / "photo.png"
    Image.fromarray(((images(40)[0] + 1) * 127.5).astype(np.uint8)).save(photo)
    style = Style("saved", f"savedmodel:{saved_model_dir}", {"conv2": 1.0}, octaves=2, steps=2, every=2)
    result = render(photo, style, tmp_path / "out.gif", options=RenderOptions(size=40))
    assert result.frames == 3
    with Image.open(result.gif) as gif:
        assert gif.n_frames == 3 and gif.size == (40, 40)
