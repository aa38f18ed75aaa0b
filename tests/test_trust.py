"""What a gallery.toml from someone else can do: its theme renders in Jinja2's sandbox (a template reaching for
Python fails the build on one line, running nothing and touching no file), and its model styles say once that
they run with the user's rights, a `hub:` one over https only."""

import os
import socket
import subprocess
import sys

import pytest

from dreamer.errors import ThemeError
from dreamer.gallery.settings import load
from dreamer.gallery.site import environment, static_sources

from conftest import REPO, hashes, make_tiny

BUILD = [sys.executable, str(REPO / "build.py")]
NO_VIDEO = "[video]\nformats = []\n"  # GIFs only: the renders here only need to exist
THEME_TOML = 'size = 64\nstyles = ["vgg16-eyes"]\n[style.vgg16-eyes]\noctaves = 1\nsteps = 1\nevery = 1\n' + NO_VIDEO
ESCAPES = {  # template -> what the sandbox must name as refused
    '{{ cycler.__init__.__globals__.os.popen("touch pwned").read() }}': "'__init__'",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}": "'__class__'",
    "{{ self._TemplateReference__context }}": "'_TemplateReference__context'",
    "{{ lipsum.__globals__['os'].system('touch pwned') }}": "'__globals__'",
    "{{ '{0.__class__}'.format(1) }}": "'__class__'",
    "{{ namespace.__init__.__globals__ }}": "'__init__'",
}


def build(folder, *args) -> subprocess.CompletedProcess:
    """build.py on the gallery in `folder`, as a user runs it, with no proxy between it and the network."""
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    return subprocess.run([*BUILD, "--config", str(folder / "gallery.toml"), *args], capture_output=True, text=True,
                          cwd=folder, env=env, timeout=300)


@pytest.mark.parametrize("template", ESCAPES)
def test_sandbox_refuses_each_way_into_python(tmp_path, monkeypatch, template):
    folder = make_tiny(tmp_path, 'templates = "theme"\n' + THEME_TOML, photos=())
    monkeypatch.chdir(folder)  # where `touch pwned` would write
    (folder / "theme").mkdir()
    (folder / "theme" / "index.html").write_text('<p>{% include "card.html" %}</p>\n')
    (folder / "theme" / "card.html").write_text(f"\n{template}\n")
    with pytest.raises(ThemeError) as refused:
        environment(load(folder / "gallery.toml")).get_template("index.html").render()
    message = str(refused.value)
    assert message.startswith(f"{folder / 'theme' / 'card.html'}, line 2: refused: access to attribute ")
    assert ESCAPES[template] in message and "\n" not in message
    assert not (folder / "pwned").exists()


def test_theme_links_to_files_outside_it_are_refused(tmp_path):
    folder = make_tiny(tmp_path, 'templates = "theme"\n' + THEME_TOML, photos=())
    secret = tmp_path / "home" / "id_rsa"
    secret.parent.mkdir()
    secret.write_text("PRIVATE KEY\n")
    (folder / "theme" / "static").mkdir(parents=True)
    (folder / "theme" / "index.html").write_text('{% include "key.html" %}\n')
    (folder / "theme" / "key.html").symlink_to(secret)
    (folder / "theme" / "static" / "key.js").symlink_to(secret)
    settings = load(folder / "gallery.toml")
    with pytest.raises(ThemeError) as page:
        environment(settings).get_template("index.html").render()
    with pytest.raises(ThemeError) as static:
        static_sources(settings)
    for refused, name in ((page, "key.html"), (static, "static/key.js")):
        assert str(refused.value).startswith(f"{folder / 'theme' / name}: a link to {secret}, outside ")


def test_hostile_theme_fails_the_build_on_one_line_and_touches_nothing(tmp_path):
    folder = make_tiny(tmp_path, THEME_TOML, photos=("chelsea.jpg",))
    assert build(folder).returncode == 0
    (folder / "notes.txt").write_text("mine\n")
    (folder / "site" / "about.html").write_text("<p>my page</p>\n")
    (folder / "theme").mkdir()
    (folder / "theme" / "index.html").write_text(
        '{% extends "base.html" %}\n{% block content %}' + next(iter(ESCAPES)) + "{% endblock %}\n")
    (folder / "gallery.toml").write_text('templates = "theme"\n' + THEME_TOML)
    before = hashes(folder, skip=["site/.dreamer"])
    done = build(folder)
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        f"error: {folder / 'theme' / 'index.html'}, line 2: refused: access to attribute '__init__' of 'type' "
        "object is unsafe. Templates render in Jinja2's sandbox: use the page's variables and filters, not "
        "Python's internals"]
    assert not (folder / "pwned").exists()
    assert hashes(folder, skip=["site/.dreamer"]) == before  # every page, render and user file as it was
    assert build(folder, "--verify").returncode == 0


MODEL_STYLES = {"saved-a": ("savedmodel:{saved}", "conv1"), "saved-b": ("savedmodel:{saved}", "conv2"),
                "own-keras": ("{keras}", "c1"), "hub-plain-http": ("hub:http://127.0.0.1:{port}/model", "x")}
MODELS_TOML = f"size = 64\nstyles = {list(MODEL_STYLES)}\n" + "".join(
    f'[style.{name}]\nnetwork = "{network}"\nlayers = ["{layer}"]\noctaves = 1\nsteps = 2\nevery = 2\n'
    for name, (network, layer) in MODEL_STYLES.items()) + NO_VIDEO


def tiny_models(folder):
    """A two-conv SavedModel and a one-conv .keras file in `folder`."""
    keras = pytest.importorskip("keras")
    tf = pytest.importorskip("tensorflow")

    class TwoConvs(tf.Module):
        def __init__(self):
            self.k1 = tf.Variable(tf.random.stateless_normal((3, 3, 3, 4), seed=(1, 2)))
            self.k2 = tf.Variable(tf.random.stateless_normal((3, 3, 4, 5), seed=(3, 4)))

        @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32)])
        def serve(self, images):
            conv1 = tf.nn.relu(tf.nn.conv2d(images, self.k1, 1, "SAME"))
            return {"conv1": conv1, "conv2": tf.nn.relu(tf.nn.conv2d(conv1, self.k2, 2, "SAME"))}

    module = TwoConvs()
    tf.saved_model.save(module, str(folder / "saved"), signatures={"serving_default": module.serve})
    image = keras.Input((None, None, 3))
    keras.Model(image, keras.layers.Conv2D(4, 3, name="c1")(image)).save(folder / "own.keras")
    return folder / "saved", folder / "own.keras"


def test_model_styles_say_once_they_run_as_you_and_hub_takes_https_only(tmp_path):
    saved, own = tiny_models(tmp_path)
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        folder = make_tiny(tmp_path, MODELS_TOML.format(saved=saved, keras=own, port=port), photos=("chelsea.jpg",))
        done = build(folder)
        server.setblocking(False)
        with pytest.raises(BlockingIOError):
            server.accept()  # nothing tried the http:// URL
    output = done.stdout + done.stderr
    notes = [line for line in output.splitlines() if "runs with your rights" in line]
    assert done.returncode == 1 and "Traceback" not in output, output[-3000:]
    assert sorted(notes) == [f"note: {source} runs with your rights (a model's graph can read and write your files): "
                             "use only models you trust" for source in sorted([f"savedmodel:{saved}", str(own)])]
    assert "rendered 3, reused 0, failed 1" in done.stdout
    refused = [line for line in done.stderr.splitlines() if f"hub:http://127.0.0.1:{port}/model" in line]
    assert len(refused) == 1 and "hub-plain-http" in refused[0], done.stderr[-3000:]
    assert refused[0].endswith(f"TF Hub models are fetched over https only; write hub:https://127.0.0.1:{port}"
                               "/model, or download the model and use savedmodel:DIR")
