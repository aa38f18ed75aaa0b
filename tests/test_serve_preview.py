"""`dreamer serve` in a gallery's folder (one photo, one style of 2 steps, 64 px): its site at `/`, rebuilt by
`dreamer build` when gallery.toml changes, the open page in chromium reloading itself and showing a failed build's
line; videos seek (Range); only the site's own files are served; nothing of the preview is written into site/."""

import io
import time

import pytest
from PIL import Image

from conftest import make_tiny
from test_serve import Server
from test_site_browser import browser  # noqa: F401 (a fixture)

pytest.importorskip("watchfiles")

GALLERY = """\
title = "Preview"
size = 64
styles = ["vgg16-textures"]
[style.vgg16-textures]
octaves = 1
steps = {steps}
every = 1
"""
SCRIPT = "/api/preview/reload.js"


@pytest.fixture(scope="module")
def gallery(tmp_path_factory):
    """(the gallery's folder, its server) once the first build has finished."""
    folder = make_tiny(tmp_path_factory.mktemp("preview"), GALLERY.format(steps=2), photos=("chelsea.jpg",))
    server = Server(folder)
    assert idle(server)["error"] is None, server.stderr.read_text()
    yield folder, server
    server.stop()


def idle(server, builds=1) -> dict:
    """The preview's state once `builds` builds have finished and none is running (the timeout guards a hang)."""
    deadline = time.monotonic() + 300
    while True:
        state = server.client.get("/api/preview").json()
        if state["builds"] >= builds and not state["building"]:
            return state
        assert time.monotonic() < deadline, f"no build finished: {server.stderr.read_text()}"
        time.sleep(0.2)


def poll(browser, expression: str):
    """The value of `expression` in the page once it is truthy, tolerating the page reloading meanwhile."""
    deadline = time.monotonic() + 300
    while True:
        try:
            value = browser.evaluate(expression)
        except RuntimeError:  # the page was between two documents
            value = None
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {expression}"
        time.sleep(0.1)


def gif_of_the_column(server, browser) -> bytes:
    return server.client.get("/" + browser.evaluate("document.querySelector('[data-gif]').dataset.gif")).content


def test_changing_a_styles_steps_rebuilds_its_column_and_reloads_the_open_page(gallery, browser):
    folder, server = gallery
    before = idle(server)
    browser.open(f"{server.base}/")
    gif = gif_of_the_column(server, browser)
    browser.evaluate("window.servedBefore = true")
    since = len(browser.events)
    (folder / "gallery.toml").write_text(GALLERY.format(steps=3))
    browser.wait_for_event("Page.loadEventFired", since, timeout=300)
    after = idle(server, before["builds"] + 1)
    assert after["error"] is None
    assert poll(browser, "document.readyState === 'complete' && window.servedBefore === undefined")
    assert browser.evaluate(f"document.querySelector('script[src=\"{SCRIPT}\"]') !== null")  # it listens again
    rebuilt = gif_of_the_column(server, browser)
    assert rebuilt != gif
    assert Image.open(io.BytesIO(rebuilt)).n_frames == Image.open(io.BytesIO(gif)).n_frames + 1  # a frame a step
    browser.settle()
    assert browser.errors(since) == []  # the site's policy lets its videos and placeholders through


def test_a_broken_gallery_toml_shows_its_line_on_the_page(gallery, browser):
    folder, server = gallery
    before = idle(server)
    browser.open(f"{server.base}/")
    (folder / "gallery.toml").write_text(GALLERY.format(steps=2).replace("size = 64", "size = 10"))
    shown = poll(browser, "document.getElementById('dreamer-build-error')?.textContent")
    error = idle(server, before["builds"] + 1)["error"]
    assert error == "gallery.toml: size: must be a whole number of pixels from 32 to 4096, got 10"
    assert shown == f"Build failed: {error}"
    assert browser.evaluate("document.querySelectorAll('[data-gif]').length") == 1  # the site as it was


def test_the_site_holds_no_reload_script_and_its_videos_seek(gallery):
    folder, server = gallery
    idle(server)
    site = folder / "site"
    page = server.client.get("/")
    assert page.status_code == 200 and f'<script src="{SCRIPT}"' in page.text
    assert page.headers["cache-control"] == "no-store"
    for path in site.rglob("*"):
        assert not path.is_file() or b"/api/preview" not in path.read_bytes(), path
    video = next(site.glob("renders/*.webm"))
    data = video.read_bytes()
    seek = server.client.get(f"/renders/{video.name}", headers={"Range": "bytes=10-99"})
    assert seek.status_code == 206 and seek.headers["content-range"] == f"bytes 10-99/{len(data)}"
    assert seek.content == data[10:100]


def test_only_the_sites_own_files_are_served_and_the_api_comes_first(gallery):
    folder, server = gallery
    idle(server)
    (folder / "site" / "leak.toml").symlink_to(folder / "gallery.toml")
    try:
        for path in ("/leak.toml", "/..%2Fgallery.toml", "/%2e%2e/gallery.toml", "/renders/..%2F..%2Fgallery.toml",
                     "/inputs/chelsea.jpg"):
            assert server.client.get(path).status_code == 404, path
    finally:
        (folder / "site" / "leak.toml").unlink()
    missing = server.client.get("/not-yet.html")
    assert missing.status_code == 404 and f'<script src="{SCRIPT}"' in missing.text  # it reloads once built
    assert server.client.post("/index.html").status_code == 405
    assert server.client.get("/api/styles").status_code == 200 and server.client.get("/studio").status_code == 200
