"""The README's promises that no other test holds it to, each through the real entry points (`dreamer`, build.py)
with real weights and real files: what a render or a build never writes, the committed site current and intact,
Ray left alone without --cluster, every photo format, training VGG16 and MobileNetV2, and tiles without seams."""

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import skimage.data
from PIL import Image

from dreamer.cli import main as dreamer

from conftest import REPO, check_site, hashes, paint

TINY = ["--style", "vgg16-textures", "--size", "48", "--octaves", "1", "--steps", "1", "--every", "1"]
# A gallery of one style that dreams toward a painting (VGG16's textures, 1 step), at 48 px.
PAINTED_TOML = """\
title = "Formats"
size = 48
styles = ["painted"]
[style.painted]
base = "vgg16-textures"
style_image = "painting.png"
octaves = 1
steps = 1
every = 1
"""
# The same photo in every format a gallery takes (and an upper-case suffix), each its own bytes.
FORMATS = {"PHOTO.JPG": "JPEG", "chelsea.bmp": "BMP", "chelsea.tiff": "TIFF", "chelsea.webp": "WEBP"}


def run_build(config: Path, *args, env=None, python=()) -> subprocess.CompletedProcess:
    """build.py in its own process (`python` options before the script), as a user runs it."""
    return subprocess.run([sys.executable, *python, str(REPO / "build.py"), "--config", str(config), *args],
                          capture_output=True, text=True, timeout=600, env={**os.environ, **(env or {})})


# 1. Nothing a render or a build writes may be a guide image, a style painting or gallery.toml, links included

@pytest.mark.parametrize("option", ["--guide", "--style-image"])
@pytest.mark.parametrize("how", ["same name", "symlink", "hard link", "same name, a GIF"])
def test_a_render_never_writes_over_its_guide_or_painting(tmp_path, monkeypatch, capsys, option, how):
    shutil.copy(REPO / "inputs" / "coffee.jpg", tmp_path / "coffee.jpg")
    image = "other.gif" if how.endswith("GIF") else "other.jpg"  # the guide or the painting
    Image.open(REPO / "inputs" / "chelsea.jpg").save(tmp_path / image)
    if how == "symlink":
        (tmp_path / "out.jpg").symlink_to(image)
    elif how == "hard link":
        os.link(tmp_path / image, tmp_path / "out.jpg")
    gif = "out.gif" if "link" in how else "other.gif"
    clash, kind = (gif, "GIF") if how.endswith("GIF") else (Path(gif).with_suffix(".jpg").name, "still")
    before = hashes(tmp_path)
    monkeypatch.chdir(tmp_path)
    for extra in ([], ["--overwrite"]):  # an input never, even with --overwrite
        assert dreamer(["render", "coffee.jpg", *TINY, option, image, "-o", gif, *extra]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"error: the {kind} {clash} ") and f"the input {image}: Dreamer never writes over " \
            "an input" in err and err.count("\n") == 1, err
    assert hashes(tmp_path) == before  # nothing written, not even the GIF


@pytest.fixture(scope="module")
def formats_build(tmp_path_factory):
    """A gallery of the photo in BMP, TIFF, WebP and as PHOTO.JPG, dreamed toward painting.png, built by build.py
    in its own process under `python -X importtime` (every module it imports, on stderr)."""
    folder = tmp_path_factory.mktemp("formats")
    (folder / "inputs").mkdir()
    photo = Image.open(REPO / "inputs" / "chelsea.jpg").convert("RGB")
    photo = photo.resize((72, round(72 * photo.height / photo.width)), Image.LANCZOS)
    for name, fmt in FORMATS.items():
        photo.save(folder / "inputs" / name, fmt)
    paint(folder / "painting.png", seed=3, size=64)
    (folder / "gallery.toml").write_text(PAINTED_TOML)
    done = run_build(folder / "gallery.toml", python=["-X", "importtime"])
    return folder, photo, done


def test_photos_in_every_format_and_upper_case_suffixes_build(formats_build):
    folder, photo, done = formats_build
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"rendered {len(FORMATS)}, reused 0, failed 0" in done.stdout, done.stdout
    manifest = check_site(folder / "site")
    assert sorted(e["input"] for e in manifest["renders"].values()) == sorted(FORMATS)
    expected = photo.resize((48, round(48 * photo.height / photo.width)), Image.LANCZOS)
    for entry in manifest["renders"].values():
        with Image.open(folder / "site" / entry["gif"]) as gif:
            assert (gif.n_frames, gif.size) == (entry["gif_frames"], expected.size) and entry["gif_frames"] == 2
    for entry in manifest["photos"].values():  # each decoded right: the site's copy is the photo, resized
        shown = np.asarray(Image.open(folder / "site" / entry["file"]).convert("RGB").resize(expected.size), float)
        error = np.abs(shown - np.asarray(expected, float)).mean()
        assert error < 6.0, (entry["input"], error)
    assert run_build(folder / "gallery.toml", "--verify").returncode == 0


def imported(importtime_log: str) -> set[str]:
    """The modules `python -X importtime` reported importing ("import time: self | cumulative | name")."""
    return {m.group(1) for m in re.finditer(r"^import time:\s+\d+ \|\s+\d+ \|\s+(\S+)$", importtime_log, re.M)}


def test_without_cluster_ray_is_never_imported(formats_build):
    if importlib.util.find_spec("ray") is None:  # then nothing could import it: the test would prove nothing
        message = "Ray is not installed: pip install -e '.[cluster]'"
        pytest.fail(message) if os.environ.get("CI") else pytest.skip(message)
    folder, _, done = formats_build
    assert done.returncode == 0, done.stderr[-3000:]
    modules = imported(done.stderr)
    assert {"tensorflow", "keras", "dreamer.dreaming", "dreamer.engine.backend_tf"} <= modules  # it rendered, here
    assert not {m for m in modules if m == "ray" or m.startswith("ray.")}
    # and the same log of a process that imports Ray names it: the check can see it
    ray_log = subprocess.run([sys.executable, "-X", "importtime", "-c", "import ray"], capture_output=True,
                             text=True, timeout=120).stderr
    assert "ray" in imported(ray_log)


@pytest.mark.parametrize("what", ["gallery.toml", "painting"])
@pytest.mark.parametrize("how", ["symlink", "hard link"])
def test_a_build_never_writes_over_gallery_toml_or_its_painting(formats_build, tmp_path, capsys, what, how):
    from test_gallery import build_py

    folder = Path(shutil.copytree(formats_build[0], tmp_path / "gallery"))
    shutil.rmtree(folder / "site" / ".dreamer")  # a copy holds no lock
    source = folder / ("gallery.toml" if what == "gallery.toml" else "painting.png")
    page = folder / "site" / "index.html"  # a file every build writes
    page.unlink()
    if how == "symlink":
        page.symlink_to(source)
    else:
        os.link(source, page)
    before = hashes(folder, skip=["site/.dreamer"])  # the build's lock and state
    assert build_py().main(["--config", str(folder / "gallery.toml")]) == 2
    err = capsys.readouterr().err
    assert err == f"error: the site's file {page} is the same file as the input {source}: Dreamer never writes " \
                  "over an input; choose another output name\n", err
    assert hashes(folder, skip=["site/.dreamer"]) == before


# 2. The committed site/ is current (nothing would render) and intact (--verify), as the page tests assume

def float32_config(folder: Path) -> Path:
    """The repository's gallery.toml with `precision = "float32"` (what the committed site was rendered in; `auto`
    means bfloat16 on an AMX CPU or a GPU) and its paths absolute, written into `folder`."""
    text = (REPO / "gallery.toml").read_text()
    for key, path in (("inputs", "inputs"), ("output", "site"), ("style_image", "art/swirls.png")):
        line = f'{key} = "{path}"'
        assert text.count(line) == 1, f"gallery.toml has no single line {line!r}"
        text = text.replace(line, f'{key} = "{REPO / path}"')
    (folder / "gallery.toml").write_text('precision = "float32"\n' + text)
    return folder / "gallery.toml"


def test_the_committed_site_is_current_and_intact(tmp_path):
    from dreamer.engine.precision import cpu_has_native_bf16, gpu_has_native_bf16

    from dreamer.gallery.settings import load
    from dreamer.media.clips import is_clip

    manifest = json.loads((REPO / "site" / "manifest.json").read_text())
    assert {(e["backend"], e["precision"]) for e in manifest["renders"].values()} == {("tensorflow", "float32")}
    settings = load(REPO / "gallery.toml")
    clips = [p for p in settings.inputs.iterdir() if is_clip(p)]
    assert clips, "the default gallery has a clip row"
    skips = len(clips) * sum(1 for s in settings.styles if s.target_class)  # a class style dreams no clip
    configs = [float32_config(tmp_path)]
    if not cpu_has_native_bf16() and not gpu_has_native_bf16():  # `auto` is float32 here: gallery.toml as it is
        configs.append(REPO / "gallery.toml")
    for config in configs:
        done = run_build(config, "--dry-run", env={"KERAS_BACKEND": "tensorflow"})
        assert done.returncode == 0, done.stderr
        assert done.stdout.splitlines()[-1] == \
            f"dry run: would render 0, reuse {len(manifest['renders'])}, skip {skips}, delete 0 file(s)", done.stdout
    verified = run_build(REPO / "gallery.toml", "--verify")
    assert verified.returncode == 0, verified.stdout[-3000:]
    assert verified.stdout.splitlines()[-1].endswith(": all intact")


def test_the_committed_clip_is_what_its_credited_command_films(tmp_path):
    """inputs/coffee-pan.mp4 is what the command inputs/CREDITS.md gives makes again: the same frames at the same
    times (pixels within 2 levels: another build of the H.264 encoder may round otherwise)."""
    import av

    command = re.search(r"`python (art/camera\.py [^`]*inputs/coffee-pan\.mp4[^`]*)`",
                        " ".join((REPO / "inputs" / "CREDITS.md").read_text().split()))[1].split()
    remade = tmp_path / "coffee-pan.mp4"
    subprocess.run([sys.executable, *[str(remade) if a == "inputs/coffee-pan.mp4" else a for a in command]],
                   cwd=REPO, check=True, timeout=120)

    def frames(path):
        with av.open(str(path)) as clip:
            return [(f.time, f.to_ndarray(format="rgb24").astype(int)) for f in clip.decode(video=0)]

    committed, again = frames(REPO / "inputs" / "coffee-pan.mp4"), frames(remade)
    assert len(committed) == len(again) == 24
    assert [t for t, _ in committed] == [t for t, _ in again]
    assert max(np.abs(a - b).mean() for (_, a), (_, b) in zip(committed, again)) < 2


# 3. `dreamer train --network vgg16` and `--network mobilenetv2`: a tiny run each, through the command

@pytest.mark.parametrize("base, frozen, batch_norm", [("vgg16", "block1_conv1", None),
                                                      ("mobilenetv2", "Conv1", "block_10_expand_BN")])
def test_train_fine_tunes_vgg16_and_mobilenetv2(tmp_path, monkeypatch, capsys, base, frozen, batch_norm):
    """5 paintings against 5 photos at 32 px, 1 epoch (one Adam step: all 8 training images are one batch): the
    network is saved, listed, its early layers and batch norms as the zoo's, its later ones moved by one step,
    and its style renders."""
    from dreamer.files.digest import file_sha256
    from dreamer.networks import load_network
    from dreamer.networks.trained import BASES, load
    from dreamer.training import LEARNING_RATE

    monkeypatch.setenv("DREAMER_DATA", str(tmp_path / "data"))
    name = f"tiny-{base}"  # names of their own: load_network caches by name
    art, photos = tmp_path / "art", tmp_path / "photos"
    art.mkdir(), photos.mkdir()
    for seed in range(5):
        paint(art / f"canvas-{seed}.png", seed=seed, size=64)
    for photo in ("astronaut", "coffee", "chelsea", "rocket", "camera"):
        Image.fromarray(getattr(skimage.data, photo)()).resize((64, 64)).save(photos / f"{photo}.png")
    assert dreamer(["train", name, str(art), "--photos", str(photos), "--network", base, "--side", "32",
                    "--epochs", "1"]) == 0
    out = capsys.readouterr().out
    folder = tmp_path / "data" / "networks" / name
    saved = json.loads((folder / "network.json").read_text())
    assert out.startswith(f"{name}: held-out accuracy {saved['held_out_accuracy']:.0%} on 2 images (chance 50%), "
                          f"art 5, photo 5; styles {name}-mid, {name}-deep, {name}-class"), out
    assert {k: saved[k] for k in ("name", "base", "classes", "images", "side", "held_out_images", "chance",
                                  "epochs")} == {"name": name, "base": base, "classes": ["art", "photo"],
                                                 "images": {"art": 5, "photo": 5}, "side": 32,
                                                 "held_out_images": 2, "chance": 0.5, "epochs": 1}
    assert saved["weights_sha256"] == file_sha256(folder / "network.weights.h5")
    assert dreamer(["networks"]) == 0
    assert capsys.readouterr().out.splitlines()[0].split()[:3] == [name, base, "2"]

    trained, zoo = load(name), load_network(base).model
    for layer in (frozen, batch_norm):  # frozen: before train_from, and every batch norm
        if layer:
            assert all(np.array_equal(a, b) for a, b in zip(trained.get_layer(layer).get_weights(),
                                                            zoo.get_layer(layer).get_weights())), layer
    learnt = BASES[base].train_from
    moved = max(np.abs(a - b).max() for a, b in zip(trained.get_layer(learnt).get_weights(),
                                                    zoo.get_layer(learnt).get_weights()))
    assert moved == pytest.approx(LEARNING_RATE, rel=0.01)  # Adam's first step moves a weight by the rate

    gif = tmp_path / "out.gif"
    assert dreamer(["render", str(REPO / "inputs" / "chelsea.jpg"), "--style", f"{name}-deep", "--size", "48",
                    "--octaves", "1", "--steps", "2", "--every", "2", "-o", str(gif)]) == 0
    with Image.open(gif) as frames:
        assert (frames.n_frames, frames.size) == (2, (48, 32))
    dreamed = np.asarray(Image.open(gif.with_suffix(".jpg")).convert("RGB"), float)
    first = np.asarray(Image.open(gif).convert("RGB"), float)
    assert np.abs(dreamed - first).mean() > 1.0  # it dreamed


# 4. Tiles without seams: a big image dreams tile by tile, the tiles' borders rolled away each step

class FixedTiles:
    """The backend's stepper with every roll set to 0: the tiles' borders stay where they are, as seams would."""

    def __init__(self, stepper):
        self.stepper, self.whole_octaves = stepper, stepper.whole_octaves

    def advance(self, groups, shifts, *args, **kwargs):
        return self.stepper.advance(groups, np.zeros_like(shifts), *args, **kwargs)


def seam_ratio(frame, image, tile: int, band: int = 4) -> float:
    """The mean absolute gradient (across the border) of what the dream added, in the bands of `band` pixels each
    side of the tiles' borders, over that elsewhere: 1 without seams."""
    from dreamer.engine.tiles import tile_starts

    added = frame.astype(float) - image.astype(float)
    inside, outside = 0.0, 0.0
    for axis in (0, 1):
        profile = np.abs(np.diff(added, axis=axis)).mean(axis=(1 - axis, 2))  # position i: between i and i + 1
        near = np.zeros(len(profile), bool)
        for border in tile_starts(added.shape[axis], tile)[1:]:
            near[border - band:border + band] = True
        inside, outside = inside + profile[near].mean(), outside + profile[~near].mean()
    return inside / outside


def test_tiles_leave_no_seams():
    """Static of 192 px through vgg16-eyes in 64-px tiles (3 x 3): the dream is as smooth across the tiles'
    borders as elsewhere; the same dream with the rolls taken out shows its seams there (the measure sees them)."""
    from dreamer.engine import loop as engine
    from dreamer.dreaming import prepare, schedule_of
    from dreamer.networks import get_style

    style = get_style("vgg16-eyes").replace(octaves=1, steps=8, every=8, tile_size=64, precision="float32")
    image = np.random.default_rng(0).integers(0, 256, (192, 192, 3), dtype=np.uint8)
    stepper = prepare(style).stepper
    rolled = list(engine.dream(stepper, image, schedule_of(style)))[-1]
    fixed = list(engine.dream(FixedTiles(stepper), image, schedule_of(style)))[-1]
    assert np.abs(rolled.astype(float) - image).mean() > 5  # it dreamed
    assert seam_ratio(rolled, image, 64) < 1.1 < 1.3 < seam_ratio(fixed, image, 64)
