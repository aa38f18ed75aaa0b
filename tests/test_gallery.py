"""The gallery build end to end, with real VGG16 weights and 2-step renders at 64 px: what renders,
what is reused, what is deleted, and that the site stays whole through failures and interruptions."""

import importlib.util
import io
import json
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dreamer import gallery
from dreamer.gallery.settings import ConfigError, load

from conftest import REPO, TINY_TOML, check_site, freeze, make_tiny, thaw, wait_for

PHOTOS = ("chelsea.jpg", "coffee.jpg")
STYLES = ("vgg16-eyes", "vgg16-deep")
ALL = {(p, s) for p in PHOTOS for s in STYLES}


def build(folder: Path, **options) -> gallery.Summary:
    return gallery.build(load(folder / "gallery.toml"), out=io.StringIO(), **options)


def build_py():
    """The top-level build.py as a module, to call its main() in this process."""
    spec = importlib.util.spec_from_file_location("build", REPO / "build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def done(summary, status="rendered") -> set:
    return {(j.photo.name, j.style.name) for j in summary.jobs if j.status == status}


def snapshot(site: Path) -> dict:
    """{relative path: mtime_ns} of every file in the site."""
    return {str(f.relative_to(site)): f.stat().st_mtime_ns for f in site.rglob("*") if f.is_file()}


def keys_of(manifest: dict, **where) -> set:
    return {k for k, e in manifest["renders"].items() if all(e[f] == v for f, v in where.items())}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The tiny gallery, built once; tests work on copies of it."""
    folder = make_tiny(tmp_path_factory.mktemp("built"))
    return folder, build(folder)


@pytest.fixture
def copy(built, tmp_path):
    return Path(shutil.copytree(built[0], tmp_path / "gallery"))


def test_tiny_gallery_end_to_end(built):
    folder, summary = built
    assert done(summary) == ALL and summary.ok and (summary.reused, summary.failed) == (0, 0)
    site = folder / "site"
    manifest = check_site(site)
    assert len(manifest["renders"]) == 4 and len(manifest["photos"]) == 2
    for entry in manifest["renders"].values():
        assert entry["input"] in PHOTOS and entry["style"] in STYLES
        assert entry["definition"]["name"] == entry["style"] and entry["definition"]["steps"] == 2
        assert entry["precision"] in ("float32", "bfloat16") and entry["backend"] == "tensorflow"
        assert entry["frames"] == 2 and max(entry["width"], entry["height"]) == 64 and entry["seconds"] > 0
        assert entry["options"]["size"] == 64 and entry["bytes"] == (site / entry["gif"]).stat().st_size
        with Image.open(site / entry["gif"]) as gif:
            assert gif.format == "GIF" and gif.size == (entry["width"], entry["height"])
    index = (site / "index.html").read_text()
    assert "Tiny &lt;gallery&gt; &amp; friends" in index and "<gallery>" not in index
    assert index.count('<tr>') == 3 and all(s in index for s in STYLES)
    assert len(list(site.glob("photo-*.html"))) == 2 and len(list(site.glob("style-*.html"))) == 2
    assert (site / "static" / "gallery.css").is_file() and (site / "static" / "gallery.js").is_file()


def test_rebuild_renders_nothing_and_touches_nothing(copy):
    site = copy / "site"
    before = snapshot(site)
    summary = build(copy)
    assert done(summary) == set() and done(summary, "reused") == ALL and summary.ok
    assert snapshot(site) == before


def test_noop_build_does_not_import_tensorflow(copy):
    """What makes a no-op build fast: it never imports a deep-learning framework (its time: bench/bench_build.py)."""
    script = f"""
import sys
sys.path.insert(0, {str(REPO)!r})
import build
rc = build.main(["--config", {str(copy / "gallery.toml")!r}])
heavy = [m for m in ("tensorflow", "keras", "jax", "torch") if m in sys.modules]
print("RESULT", rc, heavy)
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600)
    lines = [x for x in result.stdout.splitlines() if x.startswith("RESULT")]
    assert lines == ["RESULT 0 []"], result.stdout + result.stderr
    assert "reused 4" in result.stdout


def test_changed_style_rerenders_only_its_column(built, copy):
    old = json.loads((built[0] / "site" / "manifest.json").read_text())
    (copy / "gallery.toml").write_text(TINY_TOML.replace("[style.vgg16-deep]\noctaves = 1\nsteps = 2",
                                                         "[style.vgg16-deep]\noctaves = 1\nsteps = 3"))
    site = copy / "site"
    eyes_files = {f: t for f, t in snapshot(site).items() if any(k in f for k in keys_of(old, style="vgg16-eyes"))}
    summary = build(copy)
    assert done(summary) == {(p, "vgg16-deep") for p in PHOTOS}
    assert done(summary, "reused") == {(p, "vgg16-eyes") for p in PHOTOS}
    manifest = check_site(site)
    for key in keys_of(old, style="vgg16-deep"):
        assert not (site / "renders" / f"{key}.gif").exists() and key not in manifest["renders"]
    assert {f: t for f, t in snapshot(site).items() if f in eyes_files} == eyes_files
    assert len(manifest["renders"]) == 4


def test_new_photo_renders_only_its_row(copy):
    shutil.copyfile(REPO / "inputs" / "rocket.jpg", copy / "inputs" / "rocket.jpg")
    summary = build(copy)
    assert done(summary) == {("rocket.jpg", s) for s in STYLES} and done(summary, "reused") == ALL
    manifest = check_site(copy / "site")
    assert len(manifest["renders"]) == 6 and "rocket.jpg" in (copy / "site" / "index.html").read_text()


def test_deleted_photo_loses_its_files_and_row(copy):
    site = copy / "site"
    old = json.loads((site / "manifest.json").read_text())
    (copy / "inputs" / "coffee.jpg").unlink()
    summary = build(copy)
    assert done(summary) == set() and done(summary, "reused") == {("chelsea.jpg", s) for s in STYLES}
    manifest = check_site(site)
    assert all(e["input"] == "chelsea.jpg" for e in manifest["renders"].values())
    assert [e["input"] for e in manifest["photos"].values()] == ["chelsea.jpg"]
    for key in keys_of(old, input="coffee.jpg"):
        assert not list((site / "renders").glob(f"{key}.*"))
    # two renders left, each a GIF, a still, a WebM and an MP4 (64 px: no smaller rendition)
    assert len(list((site / "photos").iterdir())) == 1 and len(list((site / "renders").iterdir())) == 2 * 4
    assert "coffee" not in (site / "index.html").read_text() and not list(site.glob("photo-coffee-*.html"))


def test_force_renders_everything_again(copy):
    assert done(build(copy, force=True)) == ALL
    check_site(copy / "site")


def test_only_selects_a_style_or_an_input(copy):
    assert done(build(copy, force=True, only=["vgg16-eyes"])) == {(p, "vgg16-eyes") for p in PHOTOS}
    toml = TINY_TOML.replace("every = 2\n[style.vgg16-deep]", "every = 1\n[style.vgg16-deep]")
    (copy / "gallery.toml").write_text(toml)
    summary = build(copy, only=["chelsea"])  # a stem matches its input
    assert done(summary) == {("chelsea.jpg", "vgg16-eyes")}
    assert done(summary, "skipped") == {("coffee.jpg", "vgg16-eyes")} and summary.ok
    check_site(copy / "site")
    assert "not rendered yet" in (copy / "site" / "index.html").read_text()
    with pytest.raises(ConfigError, match="--only 'nothing' matches no style or input"):
        build(copy, only=["nothing"])


def test_dry_run_renders_and_writes_nothing(copy):
    (copy / "gallery.toml").write_text(TINY_TOML.replace("steps = 2\nevery = 2\n[style.vgg16-deep]",
                                                         "steps = 4\nevery = 2\n[style.vgg16-deep]"))
    before = snapshot(copy / "site")
    out = io.StringIO()
    summary = gallery.build(load(copy / "gallery.toml"), dry_run=True, out=out)
    assert (summary.rendered, summary.reused, summary.deleted) == (2, 2, 2 * 4)  # GIF, still, WebM, MP4 each
    assert "would render chelsea.jpg · vgg16-eyes" in out.getvalue() and done(summary) == set()
    assert snapshot(copy / "site") == before


def test_dry_run_on_a_fresh_folder_creates_nothing(tiny_gallery):
    assert build(tiny_gallery, dry_run=True).rendered == 4 and not (tiny_gallery / "site").exists()


def test_special_characters_in_file_names(copy):
    weird = ["<b>&\"'.png", "café au lait (1).jpg"]
    with Image.open(REPO / "inputs" / "chelsea.jpg") as image:
        image.save(copy / "inputs" / weird[0])
    shutil.copyfile(REPO / "inputs" / "coffee.jpg", copy / "inputs" / weird[1])
    summary = build(copy, only=weird)
    assert done(summary) == {(weird[0], s) for s in STYLES}
    assert {(weird[1], s) for s in STYLES} <= done(summary, "reused")  # the same bytes as coffee.jpg
    site = copy / "site"
    check_site(site)
    index = (site / "index.html").read_text()
    assert "&lt;b&gt;&amp;&#34;&#39;.png" in index and "<b>" not in index
    assert "café au lait (1).jpg" in index
    page = next(site.glob("photo-b-*.html"))
    assert page.name.isascii() and "<h1>&lt;b&gt;&amp;&#34;&#39;.png</h1>" in page.read_text()
    assert f'href="{page.name}"' in index and next(site.glob("photo-cafe-au-lait-1-*.html"))


def test_bad_input_and_bad_style_fail_alone(copy, capsys):
    (copy / "inputs" / "broken.jpg").write_bytes(b"this is not a JPEG")
    (copy / "gallery.toml").write_text(TINY_TOML.replace('styles = ["vgg16-eyes", "vgg16-deep"]',
                                                         'styles = ["vgg16-eyes", "vgg16-deep", "bad"]')
                                       + '[style.bad]\nnetwork = "vgg16"\nlayers = { nope = 1.0 }\n')
    rc = build_py().main(["--config", str(copy / "gallery.toml")])
    out, err = capsys.readouterr()
    assert rc == 1
    assert err.count("broken.jpg: not an image") == 1
    assert "layer 'nope' is not in this network" in out + err
    assert "rendered 0, reused 4, failed 5" in out
    check_site(copy / "site")
    index = (copy / "site" / "index.html").read_text()
    assert "failed: " in index and "broken.jpg" in index


def test_a_twin_photo_fails_with_the_render_it_shares(copy):
    # two photos with the same bytes dream once; when that render fails, both say so (batch 2: same group)
    shutil.copy(copy / "inputs" / "chelsea.jpg", copy / "inputs" / "chelsea-copy.jpg")
    (copy / "gallery.toml").write_text(TINY_TOML.replace("size = 64", "size = 64\nbatch = 2")
                                       .replace('"vgg16-deep"]', '"vgg16-deep", "bad"]')
                                       + '[style.bad]\nnetwork = "vgg16"\nlayers = { nope = 1.0 }\n')
    summary = build(copy)
    assert done(summary, "failed") == {(p, "bad") for p in ("chelsea.jpg", "coffee.jpg", "chelsea-copy.jpg")}
    assert ("chelsea-copy.jpg", "vgg16-eyes") in done(summary, "reused")  # chelsea.jpg's, from the first build
    for name in ("chelsea-copy.jpg", "chelsea.jpg"):  # the render's own failure, and its twin's
        assert any(m.startswith(name) and "layer 'nope'" in m for m in summary.failures)
    check_site(copy / "site")


def test_bad_config_key_is_one_line_and_exit_2(tiny_gallery, capsys):
    (tiny_gallery / "gallery.toml").write_text(TINY_TOML.replace("size = 64", "size = 64\nsizes = 3"))
    assert build_py().main(["--config", str(tiny_gallery / "gallery.toml")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and "unknown key 'sizes'" in err


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["SIGINT", "SIGKILL"])
def test_interrupted_build_leaves_a_site_the_next_run_completes(tmp_path, sig):
    # The second style is slow (120 steps, both photos in one batch); the build is frozen (SIGSTOP) as soon as its
    # manifest records a render, and the signal lands while it is frozen: mid-build, however fast the machine.
    folder = make_tiny(tmp_path, TINY_TOML.replace("[style.vgg16-deep]\noctaves = 1\nsteps = 2\nevery = 2",
                                                   "[style.vgg16-deep]\noctaves = 1\nsteps = 120\nevery = 40"))
    manifest_path = folder / "site" / "manifest.json"

    def recorded() -> int:
        try:
            return len(json.loads(manifest_path.read_text())["renders"])
        except (OSError, ValueError):
            return 0

    with open(tmp_path / "stderr.txt", "w") as err:
        proc = subprocess.Popen([sys.executable, str(REPO / "build.py"), "--config", str(folder / "gallery.toml")],
                                stdout=subprocess.DEVNULL, stderr=err)
        try:
            wait_for(lambda: recorded() or proc.poll() is not None, what="a first render in the manifest")
            freeze(proc)
            assert 0 < recorded() < len(ALL), (tmp_path / "stderr.txt").read_text()  # stopped mid-build
            proc.send_signal(sig)
            thaw(proc)
            rc = proc.wait(timeout=600)
        finally:
            proc.kill()
    assert rc == (130 if sig == signal.SIGINT else -signal.SIGKILL), (tmp_path / "stderr.txt").read_text()
    if sig == signal.SIGINT:
        assert "interrupted" in (tmp_path / "stderr.txt").read_text()
    finished = {(e["input"], e["style"]) for e in check_site(folder / "site")["renders"].values()}
    assert ("chelsea.jpg", "vgg16-eyes") in finished and finished != ALL

    summary = build(folder)
    assert summary.ok and done(summary, "reused") == finished and done(summary) == ALL - finished
    check_site(folder / "site")
    assert not [f for f in (folder / "site" / "renders").iterdir() if f.name.startswith(".")]


def test_slugs_are_safe_and_distinct():
    names = ["<b>&\"'.png", "a b.jpg", "a-b.jpg", "Ünïcödé.JPG", "日本.png", ".jpg"]
    slugs = [gallery.slug(n) for n in names]
    assert len(set(slugs)) == len(names)
    assert all(s.isascii() and s.replace("-", "").isalnum() for s in slugs)
    assert slugs[3].startswith("unicode-") and slugs[0].startswith("b-")


def test_static_row_renders_from_seeded_noise(copy):
    (copy / "gallery.toml").write_text(TINY_TOML.replace("size = 64", 'size = 64\nstatic = ["noise:48x32"]'))
    summary = build(copy)
    assert done(summary) == {("noise:48x32", s) for s in STYLES} and done(summary, "reused") == ALL
    site = copy / "site"
    manifest = check_site(site)
    static = [e for e in manifest["renders"].values() if e["input"] == "noise:48x32"]
    assert len(static) == 2 and all((e["width"], e["height"]) == (48, 32) for e in static)
    photo = next(p for p in manifest["photos"].values() if p["input"] == "noise:48x32")
    with Image.open(site / photo["file"]) as first:  # the row starts from the static itself
        assert first.size == (48, 32) and np.asarray(first).std() > 40
    assert "noise:48x32" in (site / "index.html").read_text()
    # another seed is another static: the row renders again
    (copy / "gallery.toml").write_text(TINY_TOML.replace("size = 64", 'size = 64\nseed = 1\nstatic = ["noise:48x32"]'))
    assert ("noise:48x32", "vgg16-eyes") in done(build(copy))


def test_bad_static_entry_is_one_line(tiny_gallery, capsys):
    (tiny_gallery / "gallery.toml").write_text(TINY_TOML.replace("size = 64", 'size = 64\nstatic = ["noise:big"]'))
    assert build_py().main(["--config", str(tiny_gallery / "gallery.toml")]) == 2
    err = capsys.readouterr().err.strip()
    assert "static" in err and "noise:big" in err and "\n" not in err


def test_batched_build_dreams_photos_together_with_the_same_results(built, copy):
    # `built` dreamed its two photos (both 64 x 43) together (batch "auto" on a CPU); this copy one at a time
    (copy / "gallery.toml").write_text(TINY_TOML.replace("size = 64", "size = 64\nbatch = 1"))
    summary = build(copy, force=True)
    assert done(summary) == ALL and summary.ok
    old = json.loads((built[0] / "site" / "manifest.json").read_text())
    new = check_site(copy / "site")
    assert set(new["renders"]) == set(old["renders"])  # batching is speed only: the same keys
    for style in ("vgg16-eyes", "vgg16-deep"):  # renders dreamed together share their time, each half of it
        assert len({entry["seconds"] for entry in old["renders"].values() if entry["style"] == style}) == 1
    for key, entry in new["renders"].items():
        with Image.open(copy / "site" / entry["gif"]) as a, Image.open(built[0] / "site" / entry["gif"]) as b:
            assert a.n_frames == b.n_frames
            for i in range(a.n_frames):
                a.seek(i), b.seek(i)
                diff = np.abs(np.asarray(a.convert("RGB"), int) - np.asarray(b.convert("RGB"), int))
                assert diff.mean() < 2.0, (key, i)
