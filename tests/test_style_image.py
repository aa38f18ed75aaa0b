"""Dreaming in the style of a painting (objectives.style_image, Gram matrices of VGG16's block*_conv1): with
real VGG16 weights, a seeded painting of brush strokes and the scikit-image cat."""

import io
import json

import numpy as np
import pytest
from PIL import Image

from dreamer import objectives
from dreamer.images import load_image, resize_to_long_side, to_unit_range
from dreamer.render import RenderOptions, render
from dreamer.zoo import get_style

from conftest import REPO, make_tiny, paint

SIZE = 128
@pytest.fixture(scope="module")
def painting(tmp_path_factory):
    return paint(tmp_path_factory.mktemp("art") / "strokes.png")


@pytest.fixture(scope="module")
def distance(painting):
    """The Gram distance of a uint8 image to the painting (0: the painting's own textures)."""
    from keras import ops

    from dreamer.networks import load_network

    layers = objectives.VGG16_STYLE_LAYERS
    extract = load_network("vgg16", "float32").extractor(list(layers))
    term = objectives.style_image(resize_to_long_side(load_image(painting), SIZE), layers, extract)
    return lambda image: -float(ops.sum(objectives.evaluate(term, extract,
                                                            ops.convert_to_tensor(to_unit_range(image[None])))))


def colour_gap(image, painting) -> float:
    """L1 distance between two images' colour histograms (6 bins a channel)."""
    def hist(pixels):
        counts, _ = np.histogramdd(pixels.reshape(-1, 3), bins=(6, 6, 6), range=[(0, 256)] * 3)
        return counts / counts.sum()
    return float(np.abs(hist(image) - hist(np.asarray(Image.open(painting).convert("RGB")))).sum())


def dream(tmp_path, painting, weight=100.0, tile_size=512):
    style = get_style("vgg16-textures").replace(style_image=str(painting), style_weight=weight, octaves=2, steps=20,
                                                every=10, step_size=0.03, tile_size=tile_size)
    result = render(REPO / "inputs" / "chelsea.jpg", style, tmp_path / "d.gif", tmp_path / "d.png",
                    RenderOptions(size=SIZE))
    return np.asarray(Image.open(result.still))


@pytest.fixture(scope="module")
def photo():
    return resize_to_long_side(load_image(REPO / "inputs" / "chelsea.jpg"), SIZE)


def test_the_dream_takes_the_paintings_textures_and_colours(tmp_path, painting, distance, photo):
    dreamed = dream(tmp_path, painting)
    assert distance(dreamed) < distance(photo) / 4  # the Gram matrices come many times closer
    assert colour_gap(dreamed, painting) < 0.95 * colour_gap(photo, painting)  # and so do its colours
    assert np.corrcoef(dreamed.mean(2).ravel(), photo.mean(2).ravel())[0, 1] > 0.3  # the cat is still there


def test_a_stronger_weight_gives_more_painting(tmp_path, painting, distance):
    weak, strong = dream(tmp_path, painting, weight=0.3), dream(tmp_path, painting, weight=100.0)
    assert distance(strong) < 0.7 * distance(weak)


def test_tiled_and_untiled_agree(tmp_path, painting, distance, photo):
    """Four 64-px tiles of the 128-px photo, each scored against the painting: about the same dream's distance."""
    whole, tiled = distance(dream(tmp_path, painting)), distance(dream(tmp_path, painting, tile_size=64))
    assert tiled < distance(photo) / 3 and 0.5 < tiled / whole < 2


def test_the_paintings_bytes_are_part_of_the_key(tmp_path):
    from dreamer.gallery import build, make_plan
    from dreamer.settings import load

    folder = make_tiny(tmp_path, 'size = 48\nstyles = ["art", "vgg16-eyes"]\n[style.art]\nbase = "vgg16-eyes"\n'
                       'style_image = "art/strokes.png"\noctaves = 1\nsteps = 2\nevery = 2\n'
                       '[style.vgg16-eyes]\noctaves = 1\nsteps = 2\nevery = 2\n', photos=("coffee.jpg",))
    (folder / "art").mkdir()
    paint(folder / "art" / "strokes.png", seed=1)
    assert build(load(folder / "gallery.toml"), out=io.StringIO()).ok
    before = {job.style.name: job.key for job in make_plan(load(folder / "gallery.toml")).jobs}
    paint(folder / "art" / "strokes.png", seed=2)  # a new painting at the same path: only its column renders
    after = {job.style.name: job.key for job in make_plan(load(folder / "gallery.toml")).jobs}
    assert after["vgg16-eyes"] == before["vgg16-eyes"] and after["art"] != before["art"]
    summary = build(load(folder / "gallery.toml"), out=io.StringIO())
    assert (summary.rendered, summary.reused) == (1, 1)
    manifest = json.loads((folder / "site" / "manifest.json").read_text())
    assert (folder / "art" / "strokes.png").is_file() and "art/strokes.png" not in json.dumps(manifest["files"])


def test_render_with_a_style_image_from_the_cli(tmp_path, painting, capsys):
    from dreamer.cli import main

    args = ["render", str(REPO / "inputs" / "coffee.jpg"), "--size", "48", "--octaves", "1", "--steps", "2",
            "--every", "1", "--style-image", str(painting), "--style-weight", "5", "-o", str(tmp_path / "c.gif")]
    assert main(args) == 0 and (tmp_path / "c.gif").is_file()
    assert main(["render", str(REPO / "inputs" / "coffee.jpg"), "--style-image", str(tmp_path / "none.png"),
                 "--size", "48", "--steps", "1", "-o", str(tmp_path / "n.gif")]) == 1
    assert f"{tmp_path / 'none.png'}: file not found" in capsys.readouterr().err


def test_the_default_gallerys_painting_is_the_seeded_script_s():
    """art/swirls.png, the default gallery's style image, is what art/paint.py paints from its seed (pixels)."""
    import runpy
    import tomllib

    gallery = tomllib.loads((REPO / "gallery.toml").read_text())
    assert gallery["style"]["swirls-painting"]["style_image"] == "art/swirls.png"
    painted = runpy.run_path(str(REPO / "art" / "paint.py"))["paint"]()
    assert np.array_equal(np.asarray(painted), np.asarray(Image.open(REPO / "art" / "swirls.png").convert("RGB")))
