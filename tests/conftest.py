"""Fixtures for the gallery tests: a tiny gallery (two photos, two fast VGG16 styles, 64 px), a checker that a
built site is whole (every page's links and images resolve, nothing absolute), and `hashes`, every file's sha256
under a folder (what a command must not change)."""

import hashlib
import json
import os
import shutil
import signal
import time
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFilter

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True, scope="session")
def own_caches(tmp_path_factory):
    """Builds (here and in the processes tests start) reuse served dreams from a store of the tests' own, and clip
    renders keep their frames in a folder of the tests' own, never the user's: $DREAMER_DREAMS
    (dreamer.serve.store) and $DREAMER_CLIP_FRAMES (dreamer.dreaming.clip_checkpoints) name them."""
    os.environ["DREAMER_DREAMS"] = str(tmp_path_factory.mktemp("dreams"))
    os.environ["DREAMER_CLIP_FRAMES"] = str(tmp_path_factory.mktemp("clip-frames"))
    yield
TINY_TOML = """\
title = "Tiny <gallery> & friends"
intro = "A test gallery."
size = 64
styles = ["vgg16-eyes", "vgg16-deep"]
[style.vgg16-eyes]
octaves = 1
steps = 2
every = 2
[style.vgg16-deep]
octaves = 1
steps = 2
every = 2
"""


def make_tiny(folder: Path, toml: str = TINY_TOML, photos=("chelsea.jpg", "coffee.jpg")) -> Path:
    """Fill `folder` with gallery.toml and inputs/ holding `photos` from the repository's inputs/."""
    (folder / "inputs").mkdir(parents=True, exist_ok=True)
    for name in photos:
        shutil.copyfile(REPO / "inputs" / name, folder / "inputs" / name)
    (folder / "gallery.toml").write_text(toml)
    return folder


PALETTE = [(250, 170, 30), (30, 120, 230), (240, 60, 40), (250, 240, 200), (20, 200, 180)]


def paint(path, seed=0, size=256):
    """A seeded painting: 400 thick strokes of five colours on deep blue, softened a little."""
    rng = np.random.default_rng(seed)
    canvas = Image.new("RGB", (size, size), (20, 30, 80))
    draw = ImageDraw.Draw(canvas)
    for _ in range(400):
        x, y = rng.integers(0, size, 2)
        angle, length = rng.uniform(0, np.pi), rng.integers(10, 40)
        draw.line([(x, y), (x + length * np.cos(angle), y + length * np.sin(angle))],
                  fill=PALETTE[rng.integers(len(PALETTE))], width=int(rng.integers(3, 8)))
    canvas.filter(ImageFilter.GaussianBlur(0.8)).save(path)
    return path


@pytest.fixture
def batched(monkeypatch):
    """The images of each call the renderer makes to the real engine's dream_batch (photos or clip frames dreaming
    together), as their (height, width)s: a list that fills as the test dreams."""
    from dreamer import dreaming

    calls, real = [], dreaming.dream_batch

    def dream_batch(stepper, images, *args, **kwargs):
        calls.append([image.shape[:2] for image in images])
        return real(stepper, images, *args, **kwargs)

    monkeypatch.setattr(dreaming, "dream_batch", dream_batch)
    return calls


@pytest.fixture
def tiny_gallery(tmp_path):
    """A folder with gallery.toml (64 px, 2 styles of 2 steps) and inputs/ holding chelsea and coffee."""
    return make_tiny(tmp_path)


class _Refs(HTMLParser):
    def __init__(self):
        super().__init__()
        self.refs = []

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if value is not None and (name in ("href", "src", "poster", "data-gif", "data-still")
                                      or name.startswith(("data-webm", "data-mp4"))):
                self.refs.append((tag, name, value))


def page_refs(page: Path) -> list[tuple[str, str, str]]:
    """(tag, attribute, value) of every link and image in an HTML file."""
    parser = _Refs()
    parser.feed(page.read_text(encoding="utf-8"))
    return parser.refs


def check_site(site: Path) -> dict:
    """Assert the site is whole: index and manifest parse, every local href/src of every page is a
    relative link to a file that exists, and no link leaves the site. Returns the manifest."""
    manifest = json.loads((site / "manifest.json").read_text())
    assert (site / "index.html").is_file() and (site / ".nojekyll").is_file()
    for page in site.glob("*.html"):
        for tag, attr, value in page_refs(page):
            if value.startswith("data:"):
                continue
            parts = urlsplit(value)
            assert not parts.scheme and not parts.netloc and not value.startswith("/"), (page.name, value)
            target = site / unquote(parts.path)
            assert target.is_file(), f"{page.name}: <{tag} {attr}={value!r}> points to a missing file"
    for key, entry in manifest["renders"].items():  # a clip's has a GIF only where its source is an animation
        assert all((site / name).is_file() for name in (entry.get("gif"), entry["still"]) if name), key
    return manifest


def wait_for(condition, seconds=300, what="the condition"):
    """Poll `condition()` until it is true: waiting for an event, `seconds` only a guard against a hang."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"{what} did not happen in {seconds} s"
        time.sleep(0.02)


def freeze(proc):
    """Stop `proc` (SIGSTOP) and wait until the kernel shows it stopped: it stays exactly where it is, any lock it
    holds held, until `thaw(proc)`."""
    os.kill(proc.pid, signal.SIGSTOP)

    def stopped():
        # /proc/PID/stat: "PID (COMMAND) STATE ...", the command may hold spaces and parentheses
        return Path(f"/proc/{proc.pid}/stat").read_text().rpartition(")")[2].split()[0] in ("T", "t")

    wait_for(stopped, 60, f"process {proc.pid} stopping")


def thaw(proc):
    os.kill(proc.pid, signal.SIGCONT)


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
