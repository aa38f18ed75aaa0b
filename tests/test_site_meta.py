"""What a search engine, a link preview and the W3C Nu HTML checker see of the pages."""

import os
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from conftest import REPO, TINY_TOML, make_tiny
from test_gallery import build


class _Head(HTMLParser):
    def __init__(self):
        super().__init__()
        self.meta, self.icons = {}, []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "meta" and ("name" in attrs or "property" in attrs):
            self.meta[attrs.get("name") or attrs["property"]] = attrs["content"]
        if tag == "link" and attrs.get("rel") == "icon":
            self.icons.append(attrs["href"])


def head(page: Path) -> _Head:
    parser = _Head()
    parser.feed(page.read_text(encoding="utf-8"))
    return parser


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    folder = make_tiny(tmp_path_factory.mktemp("meta"), 'site_url = "https://me.example.org/dreamer"\n' + TINY_TOML)
    assert build(folder).ok
    return folder / "site"


def test_every_page_has_a_description_and_an_icon_that_exists(published):
    pages = sorted(published.glob("*.html"))
    assert len(pages) == 5
    for page in pages:
        found = head(page)
        assert len(found.meta["description"]) > 10, page.name
        assert found.icons == ["static/favicon.svg"] and (published / found.icons[0]).stat().st_size > 100
    assert head(published / "index.html").meta["description"] == "A test gallery."


def test_link_previews_have_absolute_urls_of_the_first_finished_dream(published):
    import json

    manifest = json.loads((published / "manifest.json").read_text())
    first = next(e for e in manifest["renders"].values() if (e["input"], e["style"]) == ("chelsea.jpg", "vgg16-eyes"))
    meta = head(published / "index.html").meta
    base = "https://me.example.org/dreamer/"
    assert meta["og:url"] == base and meta["og:image"] == base + first["still"] == meta["twitter:image"]
    assert meta["twitter:card"] == "summary_large_image" and meta["og:title"] == "Tiny <gallery> & friends"
    assert (published / meta["og:image"].removeprefix(base)).is_file()
    page = next(published.glob("style-vgg16-deep-*.html"))
    assert head(page).meta["og:url"] == base + page.name and head(page).meta["og:title"].startswith("vgg16-deep · ")


def test_without_site_url_there_are_no_link_preview_tags(tiny_gallery):
    assert build(tiny_gallery).ok
    meta = head(tiny_gallery / "site" / "index.html").meta
    assert "description" in meta and not [k for k in meta if k.startswith(("og:", "twitter:"))]


def vnu_jar() -> Path | None:
    jar = Path(os.environ.get("VNU_JAR", REPO / ".ci" / "node_modules" / "vnu-jar" / "build" / "dist" / "vnu.jar"))
    return jar if jar.is_file() and shutil.which("java") else None


@pytest.fixture
def nu_checker():
    jar = vnu_jar()
    if jar is None:
        message = "the Nu HTML checker needs java and npm's vnu-jar (.ci/run installs both)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return lambda pages: subprocess.run(["java", "-jar", str(jar), "--errors-only", *map(str, pages)],
                                        capture_output=True, text=True, timeout=300)


def test_the_nu_checker_finds_no_error_in_any_page(published, nu_checker, tmp_path):
    pages = sorted(published.glob("*.html")) + sorted((REPO / "site").glob("*.html"))
    result = nu_checker(pages)
    assert result.returncode == 0 and result.stderr == "", result.stderr
    broken = tmp_path / "broken.html"  # the checker does find errors (beside, not in, the shared site)
    broken.write_text("<!doctype html><html lang=en><title>x</title><p><div></p>")
    assert nu_checker([broken]).returncode == 1
