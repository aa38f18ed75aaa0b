"""Never lose a user's file, never publish a broken one: through the real `dreamer` and build.py entry
points, each case asserting byte for byte (sha256 before and after) that the user's files are unchanged."""

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

from dreamer.cli import main as dreamer
from dreamer.marks import read_mark
from dreamer.site import page_name

from conftest import REPO, TINY_TOML, check_site, make_tiny
from test_gallery import build_py

TINY = ["--style", "vgg16-textures", "--size", "48", "--octaves", "1", "--steps", "1", "--every", "1"]
SLOW_TOML = TINY_TOML.replace("[style.vgg16-deep]\noctaves = 1\nsteps = 2\nevery = 2",
                              "[style.vgg16-deep]\noctaves = 1\nsteps = 200\nevery = 50")


def hashes(folder: Path, skip=()) -> dict:
    """{relative path: sha256} of every file (and link) under `folder`, leaving out the names in `skip`."""
    found = {}
    for path in sorted(folder.rglob("*")):
        name = path.relative_to(folder).as_posix()
        if any(name == s or name.startswith(s + "/") for s in skip):
            continue
        if path.is_symlink():
            found[name] = "-> " + os.readlink(path)
        elif path.is_file():
            found[name] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def build_main(folder: Path, *args) -> int:
    return build_py().main(["--config", str(folder / "gallery.toml"), *args])


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    folder = make_tiny(tmp_path_factory.mktemp("safety"))
    assert build_main(folder) == 0
    return folder


@pytest.fixture
def site_copy(built, tmp_path):
    folder = Path(shutil.copytree(built, tmp_path / "gallery"))
    shutil.rmtree(folder / "site" / ".dreamer")  # a copy holds no lock, and its stat cache is the original's
    return folder


# 1. `dreamer render` never writes an input, and over an existing file only if Dreamer wrote it

@pytest.mark.parametrize("how", ["same name", "symlink", "hard link"])
def test_render_never_replaces_its_input(tmp_path, monkeypatch, capsys, how):
    shutil.copy(REPO / "inputs" / "coffee.jpg", tmp_path / "coffee.jpg")
    if how == "symlink":
        (tmp_path / "out.jpg").symlink_to("coffee.jpg")
    elif how == "hard link":
        os.link(tmp_path / "coffee.jpg", tmp_path / "out.jpg")
    before = hashes(tmp_path)
    monkeypatch.chdir(tmp_path)
    gif = "coffee.gif" if how == "same name" else "out.gif"
    for extra in ([], ["--overwrite"]):  # an input never, even with --overwrite
        assert dreamer(["render", "coffee.jpg", *TINY, "-o", gif, *extra]) == 2
        err = capsys.readouterr().err
        still = "coffee.jpg" if how == "same name" else "out.jpg"
        assert err.startswith(f"error: the still {still} ") and "the input coffee.jpg" in err and err.count("\n") == 1
    assert hashes(tmp_path) == before  # nothing written, not even the GIF


def test_render_replaces_only_files_dreamer_wrote(tmp_path, monkeypatch, capsys):
    shutil.copy(REPO / "inputs" / "coffee.jpg", tmp_path / "coffee.jpg")
    (tmp_path / "dream.gif").write_bytes(b"the user's own GIF")
    Image.new("RGB", (8, 8)).save(tmp_path / "dream.jpg")
    before = hashes(tmp_path)
    monkeypatch.chdir(tmp_path)
    assert dreamer(["render", "coffee.jpg", *TINY, "-o", "dream.gif"]) == 2
    assert capsys.readouterr().err == ("error: the GIF dream.gif exists and Dreamer did not write it; choose another "
                                       "output name, or pass --overwrite to replace it\n")
    assert hashes(tmp_path) == before
    (tmp_path / "dream.gif").unlink()  # the still alone is the user's too
    assert dreamer(["render", "coffee.jpg", *TINY, "-o", "dream.gif"]) == 2
    assert "the still dream.jpg exists and Dreamer did not write it" in capsys.readouterr().err
    assert not (tmp_path / "dream.gif").exists()

    assert dreamer(["render", "coffee.jpg", *TINY, "-o", "dream.gif", "--overwrite"]) == 0
    assert read_mark("dream.gif")["made_by"] == "Dreamer" and read_mark("dream.jpg") == {}
    first = hashes(tmp_path)
    assert dreamer(["render", "coffee.jpg", *TINY, "--seed", "1", "-o", "dream.gif"]) == 0  # its own: replaced
    assert hashes(tmp_path)["dream.gif"] != first["dream.gif"]
    assert hashes(tmp_path)["coffee.jpg"] == before["coffee.jpg"]


def test_two_renders_into_one_file_are_refused(tmp_path, capsys):
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        shutil.copy(REPO / "inputs" / "coffee.jpg", tmp_path / folder / "x.jpg")
    assert dreamer(["render", str(tmp_path / "a" / "x.jpg"), str(tmp_path / "b" / "x.jpg"), *TINY,
                    "-o", str(tmp_path / "out") + "/"]) == 2
    assert "would be written twice" in capsys.readouterr().err and not (tmp_path / "out").exists()


# 2. A gallery build owns only what its manifest records

def test_build_refuses_a_folder_that_is_not_a_dreamer_site(tiny_gallery, capsys):
    mysite = tiny_gallery / "mysite"
    (mysite / "photos").mkdir(parents=True)
    (mysite / "renders").mkdir()
    shutil.copy(REPO / "inputs" / "rocket.jpg", mysite / "photos" / "holiday.jpg")
    (mysite / "renders" / "notes.txt").write_text("my notes")
    (mysite / "index.html").write_text("<p>my home page</p>")
    (tiny_gallery / "gallery.toml").write_text('output = "mysite"\n' + TINY_TOML)
    before = hashes(tiny_gallery)
    assert build_main(tiny_gallery) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{mysite}: not empty and not a Dreamer site" in err and "new or empty" in err
    assert hashes(tiny_gallery) == before


@pytest.mark.parametrize("output, problem", [("inputs", "is the inputs folder"), (".", "is the project folder"),
                                             ("..", "contains the inputs folder"), ("~", "is the home folder"),
                                             ("/", "contains the inputs folder")])
def test_output_may_not_hold_the_inputs_project_or_home(tiny_gallery, capsys, output, problem):
    (tiny_gallery / "gallery.toml").write_text(f'output = "{output}"\n' + TINY_TOML)
    before = hashes(tiny_gallery)
    assert build_main(tiny_gallery) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "output" in err and problem in err
    assert hashes(tiny_gallery) == before


def test_users_files_in_a_dreamer_site_are_never_touched(site_copy, capsys):
    site = site_copy / "site"
    (site / "renders" / "notes.txt").write_text("mine")
    shutil.copy(REPO / "inputs" / "rocket.jpg", site / "photos" / "holiday.jpg")
    (site / "about.html").write_text("<p>about me</p>")
    (site / "static" / "extra.css").write_text("body {}")
    mine = ["renders/notes.txt", "photos/holiday.jpg", "about.html", "static/extra.css"]
    (site_copy / "inputs" / "coffee.jpg").unlink()  # its renders, photo and page go
    shutil.copy(REPO / "inputs" / "rocket.jpg", site_copy / "inputs" / "rocket.jpg")
    before = {k: v for k, v in hashes(site).items() if k in mine}
    assert build_main(site_copy) == 0
    assert {k: v for k, v in hashes(site).items() if k in mine} == before
    manifest = check_site(site)
    assert {e["input"] for e in manifest["renders"].values()} == {"chelsea.jpg", "rocket.jpg"}
    assert not set(mine) & set(manifest["files"]) and not list(site.glob("photo-coffee-*.html"))
    # a user's file where the site needs to write stops the build before it writes anything
    shutil.copy(REPO / "inputs" / "astronaut.jpg", site_copy / "inputs" / "astronaut.jpg")
    page = site / page_name("photo", "astronaut.jpg")
    page.write_text("<p>my astronaut page</p>")
    before = hashes(site_copy, skip=["site/.dreamer"])
    capsys.readouterr()
    assert build_main(site_copy) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{page}: Dreamer did not write this file" in err
    assert hashes(site_copy, skip=["site/.dreamer"]) == before


def test_a_build_never_writes_an_input_linked_into_the_site(site_copy, capsys):
    site = site_copy / "site"
    manifest = json.loads((site / "manifest.json").read_text())
    photo = next(e["file"] for e in manifest["photos"].values() if e["input"] == "chelsea.jpg")
    (site_copy / "inputs" / "mine.jpg").symlink_to(site / photo)  # a photo of the site, linked into the inputs
    (site / photo).write_bytes((site / photo).read_bytes() + b"x")  # changed: the build would write it again
    before = hashes(site_copy, skip=["site/.dreamer"])
    assert build_main(site_copy) == 2
    err = capsys.readouterr().err
    assert err == f"error: the site's file {site / photo} is the same file as the input {site_copy / 'inputs' / 'mine.jpg'}" \
                  ": Dreamer never writes over an input; choose another output name\n"
    assert hashes(site_copy, skip=["site/.dreamer"]) == before


# 3. Integrity: a changed file is never published as reused

def test_a_garbled_gif_is_rendered_again_and_verify_finds_it(site_copy, capsys):
    site = site_copy / "site"
    manifest = json.loads((site / "manifest.json").read_text())
    key, entry = next(iter(sorted(manifest["renders"].items())))
    size = (site / entry["gif"]).stat().st_size
    (site / entry["gif"]).write_bytes(os.urandom(size))  # the same size: only the sha256 can tell
    users = hashes(site_copy, skip=["site"])
    capsys.readouterr()
    assert build_main(site_copy, "--verify") == 1
    out = capsys.readouterr().out.splitlines()
    assert f"{site / entry['gif']}: its sha256 is not the manifest's (changed since Dreamer wrote it)" in out
    assert any("does not decode as a GIF" in line for line in out) and out[-1].endswith("2 problem(s)")

    assert build_main(site_copy) == 0
    captured = capsys.readouterr()
    assert f"{site / entry['gif']} changed since Dreamer wrote it" in captured.err
    assert "rendered 1, reused 3" in captured.out
    assert build_main(site_copy, "--verify") == 0 and hashes(site_copy, skip=["site"]) == users
    with Image.open(site / entry["gif"]) as gif:
        assert gif.n_frames == json.loads((site / "manifest.json").read_text())["renders"][key]["gif_frames"]


def test_verify_checks_frame_count_and_size(site_copy, capsys):
    site = site_copy / "site"
    manifest = json.loads((site / "manifest.json").read_text())
    entry = next(iter(manifest["renders"].values()))
    frames = [Image.new("RGB", (entry["width"], entry["height"]), (i * 40, 0, 0)) for i in range(5)]
    frames[0].save(site / entry["gif"], save_all=True, append_images=frames[1:], duration=100, loop=0)
    manifest["files"][entry["gif"]] = {"bytes": (site / entry["gif"]).stat().st_size,
                                       "sha256": hashlib.sha256((site / entry["gif"]).read_bytes()).hexdigest()}
    (site / "manifest.json").write_text(json.dumps(manifest))
    assert build_main(site_copy, "--verify") == 1
    assert (f"{site / entry['gif']}: has 5 frames of {entry['width']}x{entry['height']}; the manifest says "
            f"{entry['gif_frames']} of {entry['width']}x{entry['height']}") in capsys.readouterr().out


@pytest.mark.parametrize("damage", ["truncated", "deleted", "deleted with the state folder"])
def test_a_lost_manifest_is_rebuilt_from_the_renders_on_disk(built, site_copy, capsys, damage):
    site = site_copy / "site"
    original = json.loads((built / "site" / "manifest.json").read_text())
    if damage == "truncated":
        (site / "manifest.json").write_bytes((site / "manifest.json").read_bytes()[:100])
    else:
        (site / "manifest.json").unlink()
    if damage == "deleted with the state folder":
        shutil.rmtree(site / ".dreamer", ignore_errors=True)
    before, users = hashes(site, skip=["manifest.json", ".dreamer"]), hashes(site_copy, skip=["site"])
    capsys.readouterr()
    assert build_main(site_copy) == 0
    captured = capsys.readouterr()
    found = "corrupt" if damage == "truncated" else "missing"
    assert [line for line in captured.err.splitlines() if "warning" in line] == [
        f"warning: {site / 'manifest.json'} was {found}: rebuilt from the files on disk (4 complete renders recognised)"]
    assert "rendered 0, reused 4, failed 0" in captured.out
    assert hashes(site, skip=["manifest.json", ".dreamer"]) == before  # nothing rendered, nothing rewritten
    assert hashes(site_copy, skip=["site"]) == users
    rebuilt = json.loads((site / "manifest.json").read_text())
    assert rebuilt["files"] == original["files"] and set(rebuilt["renders"]) == set(original["renders"])
    for key, entry in rebuilt["renders"].items():
        assert {k: v for k, v in entry.items() if k != "seconds"} == \
            {k: v for k, v in original["renders"][key].items() if k != "seconds"}
    assert build_main(site_copy, "--verify") == 0


def test_a_version_1_site_is_adopted_without_rendering(site_copy, capsys):
    """Version 1 wrote GIFs and stills only: a GIF-only gallery's site, its manifest made version 1."""
    site = site_copy / "site"
    with open(site_copy / "gallery.toml", "a") as f:
        f.write("[video]\nformats = []\n")
    assert build_main(site_copy) == 0
    assert not list((site / "renders").glob("*.webm"))
    manifest = json.loads((site / "manifest.json").read_text())
    v2 = dict(manifest)
    for entry in manifest["renders"].values():
        del entry["gif_frames"]
    del manifest["files"]
    manifest["version"] = 1
    (site / "manifest.json").write_text(json.dumps(manifest))
    assert build_main(site_copy) == 0
    assert "rendered 0, reused 4" in capsys.readouterr().out
    assert json.loads((site / "manifest.json").read_text())["files"] == v2["files"]


def test_manifest_and_renders_reach_the_disk_before_the_rename(tmp_path, monkeypatch):
    from dreamer import atomic
    from dreamer.cache import Manifest

    synced = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(atomic.os, "fsync", lambda fd: (synced.append(os.readlink(f"/proc/self/fd/{fd}")),
                                                        real_fsync(fd)))
    monkeypatch.setattr(atomic.os, "replace", lambda a, b: (synced.append(("rename", str(b))), real_replace(a, b)))
    Manifest(renders={"k": {}}).save(tmp_path / "manifest.json")
    assert len(synced) == 3 and synced[0].startswith(str(tmp_path / ".manifest.json."))
    assert synced[1:] == [("rename", str(tmp_path / "manifest.json")), str(tmp_path)]  # file, rename, folder


# 5. One build at a time

def _start_build(folder: Path, log: Path, *args) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(REPO / "build.py"), "--config", str(folder / "gallery.toml"), *args],
                            stdout=subprocess.DEVNULL, stderr=open(log, "w"))


def _wait_for(condition, seconds=180):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def test_a_second_build_fails_at_once_or_waits(tmp_path):
    folder = make_tiny(tmp_path, SLOW_TOML)
    holder = folder / "site" / ".dreamer" / "holder"
    users = hashes(folder, skip=["site"])
    first = _start_build(folder, tmp_path / "site-first.log")
    try:
        assert _wait_for(holder.exists)
        started = time.monotonic()
        second = subprocess.run([sys.executable, str(REPO / "build.py"), "--config", str(folder / "gallery.toml")],
                                capture_output=True, text=True, timeout=120)
        assert second.returncode == 2 and time.monotonic() - started < 30  # at once: no TensorFlow, no render
        assert second.stderr.count("\n") == 1 and f"process {first.pid} on " in second.stderr
        assert "build.py" in second.stderr and "--wait" in second.stderr
        waited = subprocess.run([sys.executable, str(REPO / "build.py"), "--config", str(folder / "gallery.toml"),
                                 "--wait"], capture_output=True, text=True, timeout=600)
        assert first.wait(timeout=60) == 0 and waited.returncode == 0
        assert f"waiting for process {first.pid}" in waited.stderr
        assert "rendered 0, reused 4" in waited.stdout  # it did not render the jobs again
        assert hashes(folder, skip=["site", "site-first.log"]) == users
        assert build_main(folder, "--verify") == 0
    finally:
        first.kill()


def test_a_build_killed_with_sigkill_leaves_no_lock(tmp_path):
    folder = make_tiny(tmp_path, SLOW_TOML)
    first = _start_build(folder, tmp_path / "first.txt")
    assert _wait_for(lambda: (folder / "site" / ".dreamer" / "holder").exists())
    first.kill()
    first.wait(timeout=60)
    assert build_main(folder) == 0
    check_site(folder / "site")
    assert build_main(folder, "--verify") == 0
