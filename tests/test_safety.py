"""Never lose a user's file, never publish a broken one: through the real `dreamer` and build.py entry
points, each case asserting byte for byte (sha256 before and after) that the user's files are unchanged."""

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageSequence

from dreamer.cli import main as dreamer
from dreamer.media.marks import read_mark
from dreamer.gallery.site import page_name

from conftest import REPO, TINY_TOML, check_site, freeze, hashes, make_tiny, thaw, wait_for
from test_gallery import build_py

TINY = ["--style", "vgg16-textures", "--size", "48", "--octaves", "1", "--steps", "1", "--every", "1"]


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


def test_manifest_and_renders_reach_the_disk_before_the_rename(built, tmp_path, monkeypatch):
    """A real manifest (the built site's: 4 renders, their photos and files) and a real render (a GIF and its
    still, from that site's frames) are each written to a temp file beside the target, flushed to disk, renamed
    onto the target, and then the folder is flushed, so that the rename itself survives a power cut."""
    from dreamer.media import gif as animate
    from dreamer.files import atomic
    from dreamer.gallery.manifest import Manifest

    site = built / "site"
    manifest = Manifest.load(site / "manifest.json")
    assert manifest.found == "ok" and len(manifest.renders) == 4 and len(manifest.photos) == 2
    assert len(manifest.files) > 10
    entry = next(iter(sorted(manifest.renders.items())))[1]
    with Image.open(site / entry["gif"]) as gif:
        frames = [np.asarray(frame.convert("RGB")) for frame in ImageSequence.Iterator(gif)]
    events = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(atomic.os, "fsync", lambda fd: (events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}"))),
                                                        real_fsync(fd)))
    monkeypatch.setattr(atomic.os, "replace", lambda a, b: (events.append(("rename", str(a), str(b))),
                                                            real_replace(a, b)))
    out = Path(os.path.realpath(tmp_path)) / "site"
    manifest.save(out / "manifest.json")
    atomic.write_bytes(out / "render.gif", animate.gif_bytes(frames).data)  # as a render's files are written
    atomic.write_bytes(out / "render.jpg", animate.still_bytes(frames[-1]))
    for target in ("manifest.json", "render.gif", "render.jpg"):
        renames = [event for event in events if event[0] == "rename" and event[2] == str(out / target)]
        assert len(renames) == 1, (target, events)
        at, temp = events.index(renames[0]), renames[0][1]
        assert Path(temp).parent == out and atomic.temp_target(Path(temp).name) == target, temp
        assert ("fsync", temp) in events[:at], (target, events)  # its bytes on the disk before the rename
        assert ("fsync", str(out)) in events[at + 1:], (target, events)  # then the rename, by the folder's
    saved = Manifest.load(out / "manifest.json")
    assert (saved.found, saved.renders, saved.photos, saved.files) == \
        ("ok", manifest.renders, manifest.photos, manifest.files)
    with Image.open(out / "render.gif") as gif:
        assert gif.n_frames == len(frames) and gif.size == (entry["width"], entry["height"])
    assert read_mark(out / "render.gif")["made_by"] == "Dreamer" and read_mark(out / "render.jpg") == {}


# 5. One build at a time

def _start_build(folder: Path, log: Path, *args) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(REPO / "build.py"), "--config", str(folder / "gallery.toml"), *args],
                            stdout=subprocess.DEVNULL, stderr=open(log, "w"))


def _frozen_holding_the_lock(build: subprocess.Popen, folder: Path) -> None:
    """Wait until `build` holds the site's lock (its holder file names it), then freeze it there (SIGSTOP), so
    that it holds the lock for as long as the test needs, however fast it would have finished."""
    holder = folder / "site" / ".dreamer" / "holder"

    def holds() -> bool:
        try:
            return json.loads(holder.read_text())["pid"] == build.pid
        except (OSError, ValueError, KeyError):
            return build.poll() is not None  # it ended: the assertion below says so

    wait_for(holds, what=f"build {build.pid} taking the lock")
    assert build.poll() is None, f"the build ended (exit {build.returncode}) before the test could hold it"
    freeze(build)
    assert json.loads(holder.read_text())["pid"] == build.pid  # frozen inside the lock: the holder is still there


REFUSED = """
import sys
sys.path.insert(0, {repo!r})
import build
rc = build.main(["--config", {config!r}])
print("RESULT", rc, [m for m in ("tensorflow", "keras", "jax", "torch") if m in sys.modules])
"""


def test_a_second_build_fails_at_once_or_waits(tmp_path):
    folder = make_tiny(tmp_path / "gallery")
    config = str(folder / "gallery.toml")
    users = hashes(folder, skip=["site"])
    first = _start_build(folder, tmp_path / "first.log")
    waiting = None
    try:
        _frozen_holding_the_lock(first, folder)
        # "at once": it neither imports a framework nor renders before it refuses (its time: bench/bench_build.py)
        second = subprocess.run([sys.executable, "-c", REFUSED.format(repo=str(REPO), config=config)],
                                capture_output=True, text=True, timeout=600)
        assert "RESULT 2 []" in second.stdout.splitlines(), second.stdout + second.stderr
        assert second.stderr.count("\n") == 1 and f"process {first.pid} on " in second.stderr
        assert "build.py" in second.stderr and "--wait" in second.stderr
        with open(tmp_path / "waiting.out", "w") as out, open(tmp_path / "waiting.err", "w") as err:
            waiting = subprocess.Popen([sys.executable, str(REPO / "build.py"), "--config", config, "--wait"],
                                       stdout=out, stderr=err)
        wait_for(lambda: f"waiting for process {first.pid}" in (tmp_path / "waiting.err").read_text()
                 or waiting.poll() is not None, what="the --wait build waiting")
        assert waiting.poll() is None, (tmp_path / "waiting.err").read_text()
        thaw(first)
        assert first.wait(timeout=600) == 0, (tmp_path / "first.log").read_text()
        assert waiting.wait(timeout=600) == 0, (tmp_path / "waiting.err").read_text()
        assert "rendered 0, reused 4" in (tmp_path / "waiting.out").read_text()  # it did not render them again
        assert hashes(folder, skip=["site"]) == users
        assert build_main(folder, "--verify") == 0
    finally:
        for proc in (first, waiting):
            if proc is not None:
                proc.kill()
                proc.wait()


def test_a_build_killed_with_sigkill_leaves_no_lock(tmp_path):
    folder = make_tiny(tmp_path / "gallery")
    first = _start_build(folder, tmp_path / "first.log")
    try:
        _frozen_holding_the_lock(first, folder)
        first.kill()  # killed while it holds the lock: none of its own clean-up runs
        assert first.wait(timeout=60) == -signal.SIGKILL
    finally:
        first.kill()
        first.wait()
    assert (folder / "site" / ".dreamer" / "holder").exists()  # it left its holder file, but the kernel freed the lock
    assert build_main(folder) == 0
    check_site(folder / "site")
    assert build_main(folder, "--verify") == 0
