"""`dreamer train`: fine-tuning EfficientNet-Lite0 (real ImageNet weights) on procedurally painted canvases
against crops of scikit-image's photos, the saved network reloaded, its styles rendered, and bad training input."""

import json
import os

import numpy as np
import pytest
import skimage.data
from PIL import Image

from dreamer.cli import main
from dreamer.media.images import to_unit_range
from dreamer.training.data import square

from conftest import paint

SIDE = 96
PHOTOS = ["astronaut", "coffee", "chelsea", "rocket", "camera", "cat", "coins", "hubble_deep_field",
          "immunohistochemistry", "page", "retina", "horse"]


def crops(folder, seed, per_photo=2, side=160):
    """Random square crops (40-90 % of the short side) of scikit-image's photos: grey ones stay grey (mode L)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for name in PHOTOS:
        photo = getattr(skimage.data, name)()
        photo = (photo * 255).astype(np.uint8) if photo.dtype == bool else photo
        for k in range(per_photo):
            height, width = photo.shape[:2]
            s = int(min(height, width) * rng.uniform(0.4, 0.9))
            y, x = rng.integers(0, height - s + 1), rng.integers(0, width - s + 1)
            Image.fromarray(photo[y:y + s, x:x + s]).resize((side, side)).save(folder / f"{name}-{k}.png")
    return folder


def paintings(folder, seeds, side=160):
    folder.mkdir(parents=True, exist_ok=True)
    for seed in seeds:
        paint(folder / f"canvas-{seed}.png", seed=seed, size=side)
    return folder


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    """$DREAMER_DATA pointed at a fresh folder for this module."""
    folder = tmp_path_factory.mktemp("data")
    old = os.environ.get("DREAMER_DATA")
    os.environ["DREAMER_DATA"] = str(folder)
    yield folder
    if old is None:
        del os.environ["DREAMER_DATA"]
    else:
        os.environ["DREAMER_DATA"] = old


@pytest.fixture(scope="module")
def art_set(tmp_path_factory):
    """24 paintings, plus one each of: grey, CMYK, huge (24 MP JPEG), and two files that are not usable images;
    24 photo crops."""
    root = tmp_path_factory.mktemp("train")
    art = paintings(root / "art", range(24))
    grey = Image.open(art / "canvas-0.png").convert("L")
    grey.save(art / "grey.png")
    Image.open(art / "canvas-1.png").convert("CMYK").save(art / "cmyk.jpg")
    Image.open(art / "canvas-2.png").resize((6000, 4000), Image.NEAREST).save(art / "huge.jpg", quality=80)
    (art / "notes.txt").write_text("not an image")
    (art / "broken.png").write_bytes((art / "canvas-3.png").read_bytes()[:300])
    return art, crops(root / "photos", seed=1)


@pytest.fixture(scope="module")
def trained(data_dir, art_set):
    from dreamer.training import train

    art, photos = art_set
    lines = []
    result = train("strokes", art, photos, base="effnet-lite0", epochs=6, side=SIDE, warn=lines.append,
                   progress=False)
    return result, lines


def probability_of_art(model, images) -> np.ndarray:
    """p(art) of uint8 images, through `model` (classes art, photo) at SIDE px."""
    from keras import ops

    batch = np.stack([square(image, SIDE) for image in images])
    logits = ops.convert_to_numpy(model(to_unit_range(batch), training=False))
    return np.exp(logits[:, 0]) / np.exp(logits).sum(1)


def test_training_tells_the_art_from_photos_well_above_chance(trained, tmp_path):
    result, lines = trained
    described = result.description
    assert described["classes"] == ["art", "photo"]
    assert described["images"] == {"art": 24 + 3, "photo": len(PHOTOS) * 2}  # grey, CMYK and huge ones work
    assert described["held_out_accuracy"] >= 0.9 > described["chance"] + 0.3
    # the two unusable files were skipped, each on a line naming it
    assert sorted(line.split(":")[0] for line in lines) == sorted(
        f"skipped {result.description['art']}/{name}" for name in ("broken.png", "notes.txt"))
    # an independent check: new paintings and other crops, never seen, through the saved network reloaded
    from dreamer.networks import load_network

    reloaded = load_network("strokes").model
    unseen_art = [np.asarray(Image.open(p)) for p in sorted(paintings(tmp_path / "a", range(100, 110)).iterdir())]
    unseen_photos = [np.asarray(Image.open(p).convert("RGB"))
                     for p in sorted(crops(tmp_path / "p", seed=7, per_photo=1).iterdir())]
    right = (probability_of_art(reloaded, unseen_art) > 0.5).sum() + (
        probability_of_art(reloaded, unseen_photos) < 0.5).sum()
    assert right / (len(unseen_art) + len(unseen_photos)) >= 0.85


def test_the_saved_network_reloads_with_identical_outputs(trained, tmp_path):
    from dreamer.networks.trained import load

    result, _ = trained
    images = to_unit_range(np.stack([np.asarray(Image.open(path)) for path in
                                     sorted(paintings(tmp_path, (200, 201), side=SIDE).iterdir())]))
    assert np.array_equal(np.asarray(result.model(images, training=False)),
                          np.asarray(load("strokes")(images, training=False)))


def test_its_styles_are_listed_and_render(trained, data_dir, tmp_path, capsys):
    from dreamer.networks import load_network

    result, _ = trained
    assert main(["styles"]) == 0
    listed = capsys.readouterr().out
    for style in ("strokes-mid", "strokes-deep", "strokes-class"):
        assert style in listed
    assert main(["networks"]) == 0
    line = capsys.readouterr().out.splitlines()
    assert line[0].split()[:3] == ["strokes", "effnet-lite0", "2"] and "held-out accuracy" in line[1]

    photo = crops(tmp_path / "in", seed=3, per_photo=1, side=96)
    chelsea = photo / "chelsea-0.png"
    assert main(["render", str(chelsea), "--style", "strokes-mid", "--style", "strokes-class", "--size", "96",
                 "--octaves", "1", "--steps", "30", "--every", "10", "--seed", "1", "-o", str(tmp_path / "out/")]) == 0
    mid = Image.open(tmp_path / "out" / "chelsea-0-strokes-mid.gif")
    assert mid.n_frames >= 3
    start = np.asarray(Image.open(chelsea).convert("RGB")).astype(float)
    dreamed = np.asarray(Image.open(tmp_path / "out" / "chelsea-0-strokes-mid.jpg")).astype(float)
    assert np.abs(dreamed - start).mean() > 5  # it dreamed
    # the class style dreamed the photo toward "art": the trained network says so
    model = load_network("strokes").model
    toward = np.asarray(Image.open(tmp_path / "out" / "chelsea-0-strokes-class.jpg").convert("RGB"))
    before, after = probability_of_art(model, [start.astype(np.uint8), toward])
    assert after > 100 * before  # at 30 steps, typically 1e4 x


def test_a_retrained_network_renders_again_and_zoo_keys_stay(tmp_path, monkeypatch):
    """Its own network, in its own data folder, trained twice: the module's `strokes` that other tests read (and
    `load_network` caches by name) is never retrained under them, in whatever order they run."""
    from dreamer.files.digest import file_sha256
    from dreamer.gallery.keys import render_key
    from dreamer.training import train
    from dreamer.networks import get_style

    data = tmp_path / "data"
    monkeypatch.setenv("DREAMER_DATA", str(data))
    art, photos = paintings(tmp_path / "art", range(6), side=80), crops(tmp_path / "photos", seed=4, per_photo=1)
    quiet = dict(base="effnet-lite0", epochs=1, side=64, warn=lambda line: None, progress=False)
    train("retrained", art, photos, **quiet)
    first = render_key("ab" * 32, get_style("retrained-mid"), {})
    zoo = render_key("ab" * 32, get_style("effnet-lite0-shapes"), {})
    train("retrained", art, photos, seed=5, **quiet)
    assert render_key("ab" * 32, get_style("retrained-mid"), {}) != first
    assert render_key("ab" * 32, get_style("effnet-lite0-shapes"), {}) == zoo
    saved = json.loads((data / "networks" / "retrained" / "network.json").read_text())
    assert saved["weights_sha256"] == file_sha256(data / "networks" / "retrained" / "network.weights.h5")


def test_class_folders_name_the_classes_and_loose_files_are_named(tmp_path):
    from dreamer.training.data import class_files

    paintings(tmp_path / "art" / "baroque", range(2))
    paintings(tmp_path / "art" / "cubism" / "late", range(2))  # a class's images at any depth
    paint(tmp_path / "art" / "stray.png")
    lines = []
    found = class_files(tmp_path / "art", None, warn=lines.append)
    assert {name: len(files) for name, (_, files) in found.items()} == {"baroque": 2, "cubism": 2}
    assert lines == [f"ignored 1 file(s) in {tmp_path / 'art'} beside its class folders, such as stray.png: "
                     "move them into a class folder"]


@pytest.mark.parametrize("case, fault", [
    ("empty", "no images for class 'art'"),
    ("one-image", "one image for class 'art'"),
    ("one-class", "one class folder (cubism)"),
    ("no-photos", "trains against photos"),
    ("not-a-folder", "no such folder"),
    ("one-painting-class", "one image for class 'cubism'"),
])
def test_bad_training_input_fails_on_one_line_naming_the_folder(case, fault, tmp_path, data_dir, capsys):
    art, photos = tmp_path / "art", crops(tmp_path / "photos", seed=2, per_photo=1)
    art.mkdir()
    args = ["--photos", str(photos)]
    if case == "one-image":
        paint(art / "only.png")
    elif case == "one-class":
        paintings(art / "cubism", range(3))
    elif case == "no-photos":
        paintings(art, range(3))
        args = ["--photos", str(tmp_path / "missing")]
    elif case == "not-a-folder":
        art = tmp_path / "nowhere"
    elif case == "one-painting-class":
        paintings(art / "baroque", range(3))
        paintings(art / "cubism", range(1))
    assert main(["train", "bad", str(art), *args, "--side", "64", "--epochs", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and fault in err and err.startswith("error: ")
    assert str(art) in err or str(tmp_path) in err
    assert not (data_dir / "networks" / "bad").exists()  # nothing saved


def test_names_that_would_clash_are_refused(tmp_path, data_dir, capsys):
    for name, fault in [("vgg16", "a built-in network"), ("Bad Name", "lower-case letters"),
                        ("effnet-lite0", "a built-in network")]:
        assert main(["train", name, str(tmp_path)]) == 2
        assert fault in capsys.readouterr().err


def test_gallery_toml_takes_its_styles_like_the_zoo_s(trained, tmp_path):
    from dreamer.gallery.settings import load

    (tmp_path / "gallery.toml").write_text('styles = ["strokes-mid", "mine"]\n'
                                           '[style.mine]\nbase = "strokes-deep"\nsteps = 3\n')
    styles = load(tmp_path / "gallery.toml").styles
    assert [(s.name, s.network, s.steps) for s in styles] == [("strokes-mid", "strokes", 15), ("mine", "strokes", 3)]


def test_it_trains_on_the_jax_backend_too(tmp_path):
    """The GPU backend: the same command with KERAS_BACKEND=jax (here on the CPU), its network saved and listed."""
    import subprocess
    import sys

    art, photos = paintings(tmp_path / "art", range(6), side=80), crops(tmp_path / "photos", seed=4, per_photo=1)
    env = dict(os.environ, KERAS_BACKEND="jax", DREAMER_DATA=str(tmp_path / "data"))
    done = subprocess.run([sys.executable, "-m", "dreamer", "train", "jaxed", str(art), "--photos", str(photos),
                           "--side", "64", "--epochs", "2"], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.startswith("jaxed: held-out accuracy ")
    saved = json.loads((tmp_path / "data" / "networks" / "jaxed" / "network.json").read_text())
    assert saved["backend"] == "jax" and saved["images"] == {"art": 6, "photo": len(PHOTOS)}
