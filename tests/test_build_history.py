"""A seeded history of edits, kills and damage: after the last clean build the site equals one built from
scratch, every file verifies, and no file that is not Dreamer's was touched."""

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

from conftest import REPO, check_site, make_tiny
from test_gallery import build_py
from test_safety import hashes

FAST = """\
size = 32
styles = ["vgg16-textures"]
[style.vgg16-textures]
octaves = 1
steps = {steps}
every = 1
"""
POOL = ["chelsea.jpg", "coffee.jpg", "rocket.jpg", "astronaut.jpg"]
USER_FILES = {"site/renders/notes.txt": b"my notes", "site/photos/holiday.jpg": None, "site/about.html": b"<p>me</p>",
              "inputs/CREDITS.md": b"credits", "site/static/mine.css": b"body {}"}
SEEDS = [int(s) for s in os.environ.get("DREAMER_HISTORY_SEEDS", "7").split(",")]


def _build(folder: Path, *args) -> int:
    return build_py().main(["--config", str(folder / "gallery.toml"), *args])


def _killed_build(folder: Path, rng: random.Random) -> None:
    """A build.py killed with SIGKILL at a random moment: starting up, planning or rendering."""
    proc = subprocess.Popen([sys.executable, str(REPO / "build.py"), "--config", str(folder / "gallery.toml")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(rng.uniform(0.5, 9.0))
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)


def _owned(folder: Path) -> list[str]:
    try:
        return sorted(json.loads((folder / "site" / "manifest.json").read_text())["files"])
    except (OSError, ValueError, KeyError):
        return []


def _step(folder: Path, rng: random.Random, log: list) -> None:
    inputs, site = folder / "inputs", folder / "site"
    present = sorted(p.name for p in inputs.glob("*.jpg"))
    action = rng.choice(["add", "remove", "change photo", "change style", "kill", "garble", "delete manifest",
                         "truncate manifest", "build"])
    if action == "add" and len(present) < len(POOL):
        name = rng.choice([n for n in POOL if n not in present])
        shutil.copy(REPO / "inputs" / name, inputs / name)
    elif action == "remove" and len(present) > 1:
        (inputs / rng.choice(present)).unlink()
    elif action == "change photo" and present:
        name = rng.choice(present)
        with Image.open(REPO / "inputs" / name) as image:
            image.rotate(rng.choice([90, 180, 270]), expand=True).save(inputs / name, quality=rng.randint(70, 95))
    elif action == "change style":
        toml = (folder / "gallery.toml").read_text()
        (folder / "gallery.toml").write_text(FAST.format(steps=1 if "steps = 2" in toml else 2))
    elif action == "kill":
        _killed_build(folder, rng)
    elif action == "garble" and _owned(folder):
        target = site / rng.choice(_owned(folder))
        if target.exists():
            target.write_bytes(os.urandom(rng.randint(1, max(1, target.stat().st_size))))
    elif action == "delete manifest":
        (site / "manifest.json").unlink(missing_ok=True)
    elif action == "truncate manifest" and (site / "manifest.json").exists():
        data = (site / "manifest.json").read_bytes()
        (site / "manifest.json").write_bytes(data[:rng.randint(0, len(data))])
    else:
        action = "build"
        assert _build(folder) in (0, 1)
    log.append(action)


@pytest.mark.parametrize("seed", SEEDS)
def test_a_history_of_edits_kills_and_damage_ends_in_the_site_built_from_scratch(tmp_path, seed):
    rng = random.Random(seed)
    folder = make_tiny(tmp_path / "history", FAST.format(steps=1), photos=POOL[:2])
    assert _build(folder) == 0
    for name, data in USER_FILES.items():  # the user's own files, in and beside the site
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        if data is None:
            shutil.copy(REPO / "inputs" / "rocket.jpg", folder / name)
        else:
            (folder / name).write_bytes(data)
    users = {k: v for k, v in hashes(folder).items() if k in USER_FILES}
    log = []
    for _ in range(8):
        _step(folder, rng, log)
        assert {k: v for k, v in hashes(folder).items() if k in USER_FILES} == users, log

    mine = hashes(folder, skip=["site"]) | users  # the inputs and gallery.toml as the history left them
    assert _build(folder) == 0, log
    scratch = make_tiny(tmp_path / "scratch", (folder / "gallery.toml").read_text(), photos=())
    for photo in (folder / "inputs").glob("*.jpg"):
        shutil.copy(photo, scratch / "inputs" / photo.name)
    assert _build(scratch) == 0

    ours, theirs = (json.loads((f / "site" / "manifest.json").read_text()) for f in (folder, scratch))
    assert set(ours["renders"]) == set(theirs["renders"]) and set(ours["photos"]) == set(theirs["photos"]), log
    assert set(ours["files"]) == set(theirs["files"]), log
    for f in (folder, scratch):
        check_site(f / "site")
        assert _build(f, "--verify") == 0, log
    on_disk = set(hashes(folder / "site", skip=[".dreamer"])) - {k.removeprefix("site/") for k in USER_FILES}
    assert on_disk == set(ours["files"]) | {"manifest.json"}, log  # no leftover: old renders, temp files
    assert {k: v for k, v in hashes(folder).items() if k in mine} == mine, log  # user files and inputs as they were
    gifsicle = shutil.which("gifsicle")
    for entry in ours["renders"].values():  # the GIFs, counted by a tool nobody here wrote
        if gifsicle:
            info = subprocess.run([gifsicle, "--info", str(folder / "site" / entry["gif"])],
                                  capture_output=True, text=True, check=True).stdout
            assert f"{entry['gif_frames']} images" in info.splitlines()[0]
        with Image.open(folder / "site" / entry["gif"]) as gif:
            assert gif.n_frames == entry["gif_frames"] and gif.size == (entry["width"], entry["height"])
