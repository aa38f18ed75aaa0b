"""A gallery anywhere: Dreamer built as a wheel and installed in a fresh virtual environment, used from a folder
outside the checkout: `dreamer init` starts a gallery, `dreamer build` builds it, `--verify` checks it."""

import hashlib
import json
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from dreamer.media.marks import read_mark

from conftest import REPO

QUICK = """
[style.vgg16-textures]
octaves = 1
steps = 1
every = 1
"""


def run(command, cwd: Path) -> subprocess.CompletedProcess:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(cwd), "DREAMER_CACHE": str(cwd / "cache")}
    return subprocess.run([str(c) for c in command], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def venv(tmp_path_factory) -> Path:
    """A fresh virtual environment with Dreamer's wheel installed (its dependencies read from this one's)."""
    root = tmp_path_factory.mktemp("wheel")
    source = root / "source"  # the project's own files only: a build/ folder left in the checkout is not read
    listed = subprocess.check_output(["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO, text=True)
    for name in listed.splitlines():
        if (REPO / name).is_file() and not name.startswith("site/"):
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, source / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--quiet", "-w",
                    str(root / "dist"), str(source)], check=True, capture_output=True, timeout=300)
    (wheel,) = (root / "dist").glob("dreamer-*.whl")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root / "venv")], check=True, timeout=300)
    python = root / "venv" / "bin" / "python"
    site = Path(subprocess.check_output([python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                                        text=True).strip())
    (site / "dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")  # TensorFlow and the rest
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--quiet",
                    str(wheel)], check=True, capture_output=True, timeout=300)
    return root / "venv" / "bin"


def test_a_wheel_installed_elsewhere_starts_builds_and_verifies_a_gallery(venv, tmp_path):
    where = run([venv / "python", "-c", "import dreamer; print(dreamer.__file__)"], tmp_path)
    assert where.stdout.startswith(str(venv.parent)), where  # the wheel's Dreamer, not the checkout's
    made = run([venv / "dreamer", "init", "gallery"], tmp_path)
    assert made.returncode == 0, made.stderr
    gallery = tmp_path / "gallery"
    assert sorted(p.relative_to(gallery).as_posix() for p in gallery.rglob("*") if p.is_file()) == [
        ".github/workflows/pages.yml", ".gitignore", "gallery.toml", "inputs/CREDITS.md"]
    shutil.copy(REPO / "inputs" / "coffee.jpg", gallery / "inputs" / "coffee.jpg")
    dry = run([venv / "dreamer", "build", "--dry-run"], gallery)  # the starter's gallery.toml as it is written
    assert dry.returncode == 0 and "dry run: would render 3, reuse 0" in dry.stdout, dry.stdout + dry.stderr

    text = (gallery / "gallery.toml").read_text()  # then a quicker column to build here
    text = text.replace('styles = ["vgg16-eyes", "hed-edges", "effnet-lite0-shapes"]', 'styles = ["vgg16-textures"]')
    (gallery / "gallery.toml").write_text(text.replace("size = 320", "size = 48") + QUICK)
    built = run([venv / "dreamer", "build"], gallery)
    assert built.returncode == 0 and "rendered 1, reused 0, failed 0" in built.stdout, built.stdout + built.stderr
    site = gallery / "site"
    pages = sorted(p.name for p in site.glob("*.html"))
    assert len(pages) == 3 and all(read_mark(site / page) == {} for page in pages)  # the wheel's templates
    assert {"gallery.css", "gallery.js", "favicon.svg"} <= {p.name for p in (site / "static").iterdir()}
    verified = run([venv / "dreamer", "build", "--verify"], gallery)
    assert verified.returncode == 0 and "all intact" in verified.stdout, verified.stdout
    assert json.loads((site / "manifest.json").read_text())["renders"]


def test_init_never_replaces_a_file(tmp_path, capsys):
    from dreamer.cli import main

    (tmp_path / "gallery.toml").write_text("title = 'mine'\n")
    before = hashlib.sha256((tmp_path / "gallery.toml").read_bytes()).hexdigest()
    assert main(["init", str(tmp_path)]) == 2
    assert capsys.readouterr().err == (f"error: {tmp_path / 'gallery.toml'} exists: dreamer init writes a new gallery "
                                       "and never replaces a file; choose a new or empty folder\n")
    assert hashlib.sha256((tmp_path / "gallery.toml").read_bytes()).hexdigest() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gallery.toml"]  # nothing else written either
