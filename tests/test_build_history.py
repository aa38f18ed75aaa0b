"""A seeded history of edits, kills, damage and hostile manifests: after the last clean build the site equals one
built from scratch, every file verifies, and no file that Dreamer did not record and still hold byte for byte was
touched. Kills happen at events the seed picks, not after a time, so a seed replays its history."""

import contextlib
import io
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from conftest import REPO, check_site, hashes, make_tiny
from test_gallery import build_py

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


def _build_as_a_user(folder: Path, left: set, log: list) -> None:
    """A build, then what its lines tell a user: each file it left in place and asks to move out goes to moved/
    (and the build runs again); each it left in place as no longer its own stays, noted in `left`."""
    for _ in range(4):
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            code = _build(folder)
        moved = False
        for line in err.getvalue().splitlines():
            path = _named(line)
            if path is None or not path.exists():
                continue
            if "move it out of" in line:
                target = folder / "moved" / f"{len(list((folder / 'moved').glob('*')))}-{path.name}"
                target.parent.mkdir(exist_ok=True)
                path.rename(target)
                left.discard(path.relative_to(folder / "site").as_posix())
                moved = True
            elif "left as it is" in line:
                left.add(path.relative_to(folder / "site").as_posix())
        assert code in (0, 1) or (code == 2 and moved), (log, err.getvalue())
        if not moved:
            return
    raise AssertionError(f"still asked to move files out after 4 builds: {log}")


def _named(line: str) -> Path | None:
    """The file a build's warning or error line names, if any."""
    match = re.match(r"^(?:warning|error): (/[^:]+): ", line)
    return Path(match[1]) if match else None


def _killed_build(folder: Path, rng: random.Random) -> None:
    """A build.py killed with SIGKILL at an event the seed picks: at once (starting up), or once it has said that
    its first or second render finished; a build that ends first is not killed."""
    renders = rng.choice([0, 1, 2])
    proc = subprocess.Popen([sys.executable, str(REPO / "build.py"), "--config", str(folder / "gallery.toml")],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    seen = 0
    while seen < renders and (line := proc.stdout.readline()):
        seen += line.startswith("rendered ") and ": " in line
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)


def _owned(folder: Path) -> list[str]:
    try:
        return sorted(json.loads((folder / "site" / "manifest.json").read_text())["files"])
    except (OSError, ValueError, KeyError):
        return []


def _hostile_edit(folder: Path, rng: random.Random) -> None:
    """What a merge or a pull request can do to the manifest: records of random paths inside the site and outside
    it (a user's files among them) with random hashes, or the manifest in conflict markers."""
    path = folder / "site" / "manifest.json"
    text = path.read_text()
    try:
        manifest = json.loads(text)
    except ValueError:  # a truncated one
        manifest = None
    if rng.random() < 0.3 or not isinstance(manifest, dict):
        path.write_text(f"<<<<<<< HEAD\n{text}=======\n{text[:rng.randint(0, len(text))]}\n>>>>>>> theirs\n")
        return
    names = [*USER_FILES, "gallery.toml", "inputs/chelsea.jpg"]
    outside = [f"../{name}" for name in names] + [str(folder / name) for name in names] + ["/etc/passwd"]
    inside = [name.removeprefix("site/") for name in USER_FILES if name.startswith("site/")] + _owned(folder)
    for name in rng.sample(outside, 3) + rng.sample(inside, min(3, len(inside))):
        manifest.setdefault("files", {})[name] = {"bytes": rng.randint(0, 9999), "sha256": rng.randbytes(32).hex()}
    path.write_text(json.dumps(manifest))


def _step(folder: Path, rng: random.Random, log: list, left: set) -> None:
    inputs, site = folder / "inputs", folder / "site"
    present = sorted(p.name for p in inputs.glob("*.jpg"))
    action = rng.choice(["add", "remove", "change photo", "change style", "kill", "garble", "delete manifest",
                         "truncate manifest", "hostile manifest", "edit page", "build"])
    owned = _owned(folder)
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
    elif action == "garble" and [n for n in owned if n.startswith(("renders/", "photos/"))]:
        target = site / rng.choice([n for n in owned if n.startswith(("renders/", "photos/"))])  # damage
        if target.exists():
            target.write_bytes(os.urandom(rng.randint(1, max(1, target.stat().st_size))))
    elif action == "edit page" and [n for n in owned if n.endswith(".html")]:
        page = site / rng.choice([n for n in owned if n.endswith(".html")])  # the user's own change
        if page.exists():
            page.write_text(page.read_text() + "<!-- my edit -->")
    elif action == "delete manifest":
        (site / "manifest.json").unlink(missing_ok=True)
    elif action == "truncate manifest" and (site / "manifest.json").exists():
        data = (site / "manifest.json").read_bytes()
        (site / "manifest.json").write_bytes(data[:rng.randint(0, len(data))])
    elif action == "hostile manifest" and (site / "manifest.json").exists():
        _hostile_edit(folder, rng)
    else:
        action = "build"
        _build_as_a_user(folder, left, log)
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
    log, left = [], set()  # left: files a build left in place as no longer Dreamer's (changed since it wrote them)
    for _ in range(10):
        _step(folder, rng, log, left)
        assert {k: v for k, v in hashes(folder).items() if k in USER_FILES} == users, log

    _build_as_a_user(folder, left, log)
    mine = hashes(folder, skip=["site"]) | users  # the inputs and gallery.toml as the history left them
    mine |= {f"site/{k}": v for k, v in hashes(folder / "site").items() if k in left}
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
    on_disk = set(hashes(folder / "site", skip=[".dreamer"])) - {k.removeprefix("site/") for k in USER_FILES} - left
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
