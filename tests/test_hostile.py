"""A manifest that someone else edited (a merge, a pull request) never costs a user's file: through the real
build.py as a process, each case hashing every file that is not Dreamer's, inside the site and outside it,
before and after."""

import hashlib
import json
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

from dreamer.gallery.site import TEMPLATES

from conftest import REPO, check_site, hashes, make_tiny

ONE = """\
title = "Hostile"
size = 48
styles = ["vgg16-textures"]
[style.vgg16-textures]
octaves = 1
steps = 1
every = 1
"""


def run_build(folder: Path, *args) -> subprocess.CompletedProcess:
    """build.py in a process of its own, on `folder`'s gallery.toml."""
    return subprocess.run([sys.executable, str(REPO / "build.py"), "--config", str(folder / "gallery.toml"), *args],
                          capture_output=True, text=True, timeout=600)


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    """A built one-photo, one-style gallery (videos on), never changed: copy it."""
    folder = make_tiny(tmp_path_factory.mktemp("hostile") / "gallery", ONE, photos=("coffee.jpg",))
    result = run_build(folder)
    assert result.returncode == 0, result.stderr
    return folder


@pytest.fixture
def world(clean, tmp_path):
    """A copy of the gallery inside a 'home' holding the user's other files: (home, gallery folder, Dreamer's
    own files as the clean build recorded them)."""
    home = tmp_path / "home"
    folder = Path(shutil.copytree(clean, home / "projects" / "gallery"))
    shutil.rmtree(folder / "site" / ".dreamer")  # a fresh clone has no state folder
    (home / "victim.txt").write_text("the user's notes")
    (home / "projects" / "victim.txt").write_text("more notes")
    (home / "Pictures").mkdir()
    (home / "Pictures" / "holiday.css").write_text("a user's file")
    ours = set(json.loads((folder / "site" / "manifest.json").read_text())["files"])
    return home, folder, ours


def users(home: Path, folder: Path, ours) -> dict:
    """Every file under `home` that is not Dreamer's own (its recorded files, the manifest, the state folder)."""
    site = (folder / "site").relative_to(home).as_posix()
    return hashes(home, skip={f"{site}/{name}" for name in ours} | {f"{site}/manifest.json", f"{site}/.dreamer"})


def edit_manifest(folder: Path, change) -> dict:
    path = folder / "site" / "manifest.json"
    manifest = json.loads(path.read_text())
    change(manifest)
    path.write_text(json.dumps(manifest))
    return manifest


def test_a_hostile_manifest_touches_nothing_outside_dreamers_own_files(world):
    home, folder, ours = world
    site = folder / "site"
    victims = [home / "victim.txt", home / "projects" / "victim.txt", home / "Pictures" / "holiday.css"]
    (site / "about.html").write_text("<p>my own page</p>")  # the user's page in the site, not recorded
    key = next(iter(json.loads((site / "manifest.json").read_text())["renders"]))

    def hostile(manifest):
        files = manifest["files"]
        record = lambda p: {"bytes": p.stat().st_size, "sha256": sha(p)}  # noqa: E731 - even with the right hash
        files["../../victim.txt"] = record(victims[1])
        files["../../../victim.txt"] = record(victims[0])
        files[str(victims[0])] = record(victims[0])  # absolute
        files["about.html"] = {"bytes": 1, "sha256": "0" * 64}  # a user's page, its bytes not the recorded ones
        files["static/../../../victim.txt"] = record(victims[1])
        files["renders/x.gif"] = {"bytes": "many", "sha256": None}  # wrong types
        files["index.html"] = ["not", "a", "record"]
        manifest["photos"]["0123456789abcdef"] = {"input": "x.jpg", "sha256": "0" * 64, "file": "../../victim.txt",
                                                  "width": 1, "height": 1, "bytes": 1}
        manifest["photos"]["not-a-key"] = "garbage"
        manifest["renders"][key + "0"] = dict(manifest["renders"][key])  # a key of the wrong shape
        manifest["renders"]["fedcba9876543210"] = dict(manifest["renders"][key], gif="../../../victim.txt")

    edit_manifest(folder, hostile)
    before = users(home, folder, ours)
    result = run_build(folder)
    assert result.returncode == 0, result.stderr
    assert "rendered 0, reused 1, failed 0" in result.stdout
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning: ")]
    for name in ["../../victim.txt", "../../../victim.txt", str(victims[0]), "static/../../../victim.txt",
                 "renders/x.gif", "index.html", "0123456789abcdef", "not-a-key", key + "0", "fedcba9876543210"]:
        assert sum(json.dumps(name) in line for line in warnings) == 1, (name, warnings)
    assert any(f"{site / 'about.html'}: changed since Dreamer wrote it" in line for line in warnings), warnings
    assert users(home, folder, ours) == before  # every victim, and the user's page, byte for byte
    assert all(v.exists() for v in victims)
    check_site(site)
    assert run_build(folder, "--verify").returncode == 0  # the manifest it saved holds only the good entries


def test_a_folder_of_the_site_linked_out_of_it_stops_the_build(world):
    home, folder, ours = world
    site = folder / "site"
    shutil.rmtree(site / "static")
    (site / "static").symlink_to(home / "Pictures")  # site/static/ leads to the user's pictures
    shutil.copy(TEMPLATES / "static" / "gallery.css", home / "Pictures" / "gallery.css")
    holiday = home / "Pictures" / "holiday.css"
    edit_manifest(folder, lambda m: m["files"].update(
        {"static/holiday.css": {"bytes": holiday.stat().st_size, "sha256": sha(holiday)}}))
    before = hashes(home, skip={"projects/gallery/site/.dreamer"})
    result = run_build(folder)
    assert result.returncode == 2
    error = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(error) == 1 and f"{site / 'static'} leads out of {site} (a link)" in error[0], result.stderr
    assert "Traceback" not in result.stderr
    assert hashes(home, skip={"projects/gallery/site/.dreamer"}) == before


def test_a_changed_page_is_left_in_place_and_a_changed_stale_file_is_not_deleted(world):
    home, folder, ours = world
    site = folder / "site"
    style_page = next(site.glob("style-*.html"))
    style_page.write_text(style_page.read_text().replace("</h1>", " (my notes)</h1>", 1))
    manifest = json.loads((site / "manifest.json").read_text())
    still = next(iter(manifest["renders"].values()))["still"]
    (site / still).write_bytes((site / still).read_bytes() + b"edited")  # soon stale: the photo goes
    (folder / "inputs" / "coffee.jpg").unlink()  # its renders go, the style page stays
    before = {name: sha(site / name) for name in (style_page.name, still)}
    result = run_build(folder)
    assert result.returncode == 0, result.stderr
    assert "rendered 0, reused 0, failed 0" in result.stdout
    assert {name: sha(site / name) for name in before} == before
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning: ")]
    assert len(warnings) == 2, warnings
    assert f"{style_page}: changed since Dreamer wrote it (or is not Dreamer's): left as it is" in warnings[1]
    assert warnings[0].startswith(f"warning: {site / still}: changed since Dreamer wrote it and no longer needed")
    after = json.loads((site / "manifest.json").read_text())["files"]
    assert still not in after and after[style_page.name] == manifest["files"][style_page.name]
    # the user follows the line: their page moved out, the next build writes Dreamer's again
    style_page.rename(home / "my-style-page.html")
    result = run_build(folder)
    assert result.returncode == 0 and "warning" not in result.stderr, result.stderr
    check_site(site)
    assert run_build(folder, "--verify").returncode == 0


CONFLICT = "<<<<<<< HEAD\n{ours}=======\n{theirs}>>>>>>> their-branch\n"


@pytest.mark.parametrize("version", [2, 1])
def test_a_garbled_manifest_claims_only_what_the_build_would_write(world, version):
    home, folder, ours = world
    site = folder / "site"
    index = (site / "index.html").read_text()
    photo_page = next(site.glob("photo-*.html"))
    mine = {"about.html": index.replace("<title>", "<title>About me: ", 1),  # copied from Dreamer's, mark and all
            "style-guide.html": "<p>my style guide</p>",  # named like Dreamer's pages, no mark
            "photo-holiday-123abc.html": photo_page.read_text(),  # a copy of a Dreamer page, a name it does not write
            "renders/0123456789abcdef.gif": (site / next(n for n in ours if n.endswith(".gif"))).read_bytes()}
    for name, data in mine.items():
        (site / name).write_bytes(data.encode() if isinstance(data, str) else data)
    text = (site / "manifest.json").read_text()
    if version == 2:
        (site / "manifest.json").write_text(CONFLICT.format(ours=text, theirs=text.replace('"engine"', '"engine2"')))
    else:  # a version-1 manifest, as an old Dreamer wrote it
        edit_manifest(folder, lambda m: (m.update(version=1), m.pop("files")))
    before = users(home, folder, ours)
    result = run_build(folder)
    assert result.returncode == 0, result.stderr
    assert "rendered 0, reused 1, failed 0" in result.stdout
    assert users(home, folder, ours) == before  # the user's pages and files, whatever their names and marks
    assert all((site / name).exists() for name in mine)
    recorded = json.loads((site / "manifest.json").read_text())["files"]
    assert set(recorded) == ours and not set(mine) & set(recorded)
    assert run_build(folder, "--verify").returncode == 0


class _Attributes(HTMLParser):
    def __init__(self):
        super().__init__()
        self.names = set()

    def handle_starttag(self, tag, attrs):
        self.names |= {name for name, _ in attrs}


def test_manifest_data_never_becomes_markup(world):
    home, folder, ours = world
    site = folder / "site"
    hostile = "mp4 autofocus tabindex=0 onfocus=alert(document.domain) x"

    def inject(manifest):
        entry = next(iter(manifest["renders"].values()))
        entry["videos"][hostile] = entry["videos"]["mp4"]

    edit_manifest(folder, inject)
    result = run_build(folder)
    assert result.returncode == 0, result.stderr
    assert "rendered 0, reused 1, failed 0" in result.stdout  # the entry is dropped, then found again on disk
    assert sum(json.dumps(hostile)[:60] in line for line in result.stderr.splitlines()) == 1, result.stderr
    pages = list(site.glob("*.html"))
    assert len(pages) == 3
    for page in pages:
        parser = _Attributes()
        parser.feed(page.read_text())
        assert not {name for name in parser.names if name.startswith("on") or name in ("autofocus", "tabindex")}
        assert "alert(" not in page.read_text()
        assert {"data-webm", "data-mp4"} <= parser.names
