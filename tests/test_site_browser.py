"""The built site in a real browser: Debian's chromium, headless, driven over the DevTools protocol
through a pipe (--remote-debugging-pipe: no extra package). Every page is visited over http from a
subpath (as on GitHub Pages) and over file://; every image must load, every link resolve, and the
console stay free of errors.

Also a tool: `python tests/test_site_browser.py site docs/gallery.png` screenshots a built site.
"""

import base64
import fcntl
import functools
import http.server
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import unquote, urldefrag, urlsplit
from urllib.request import urlopen

import pytest

from dreamer.gallery import build
from dreamer.gallery.settings import load

from conftest import REPO, make_tiny

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--no-default-browser-check",
         "--disable-extensions", "--mute-audio", "--hide-scrollbars", "--remote-debugging-pipe"]


class Chromium:
    """Headless chromium with one page, spoken to in CDP JSON messages over fds 3 and 4."""

    def __init__(self, executable=CHROMIUM, width=1280, height=900):
        self.profile = tempfile.mkdtemp(prefix="dreamer-chromium-")
        to_browser, self._to_browser = os.pipe()
        self._from_browser, from_browser = os.pipe()
        # Move the child's ends above 10 so that putting them on fds 3 and 4 cannot clobber them.
        child_read = fcntl.fcntl(to_browser, fcntl.F_DUPFD_CLOEXEC, 10)
        child_write = fcntl.fcntl(from_browser, fcntl.F_DUPFD_CLOEXEC, 10)
        os.close(to_browser), os.close(from_browser)

        def on_fds_3_and_4():
            os.dup2(child_read, 3)
            os.dup2(child_write, 4)

        self.proc = subprocess.Popen(
            [executable, *FLAGS, f"--user-data-dir={self.profile}", f"--window-size={width},{height}"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            close_fds=False, preexec_fn=on_fds_3_and_4)
        os.close(child_read), os.close(child_write)
        self._next_id, self._replies, self.events = 0, {}, []
        self._lock = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()
        target = self.send("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.send("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        for domain in ("Page", "Runtime", "Log"):
            self.send(f"{domain}.enable", session=True)

    def _read(self):
        buffer = b""
        with os.fdopen(self._from_browser, "rb", buffering=0) as pipe:
            while chunk := pipe.read(1 << 16):
                buffer += chunk
                *messages, buffer = buffer.split(b"\0")
                with self._lock:
                    for raw in messages:
                        message = json.loads(raw)
                        if "id" in message:
                            self._replies[message["id"]] = message
                        else:
                            self.events.append(message)
                    self._lock.notify_all()

    def send(self, method, session=False, timeout=30, **params):
        """Call a CDP method (on the page's session if `session`), return its result."""
        with self._lock:
            self._next_id += 1
            call_id = self._next_id
        message = {"id": call_id, "method": method, "params": params}
        if session:
            message["sessionId"] = self.session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        with self._lock:
            if not self._lock.wait_for(lambda: call_id in self._replies, timeout):
                raise TimeoutError(f"chromium did not answer {method} in {timeout} s")
            reply = self._replies.pop(call_id)
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        return reply["result"]

    def wait_for_event(self, method, since: int, timeout=30):
        with self._lock:
            if not self._lock.wait_for(lambda: any(e["method"] == method for e in self.events[since:]), timeout):
                raise TimeoutError(f"no {method} in {timeout} s")

    def open(self, url):
        """Navigate and wait for the load event."""
        since = len(self.events)
        result = self.send("Page.navigate", session=True, url=url)
        assert "errorText" not in result, f"{url}: {result['errorText']}"
        self.wait_for_event("Page.loadEventFired", since)

    def evaluate(self, expression, timeout=30):
        """The JSON value of a JS expression (promises awaited); JS exceptions raise."""
        result = self.send("Runtime.evaluate", session=True, timeout=timeout, expression=expression,
                           awaitPromise=True, returnByValue=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"JS error: {result['exceptionDetails']}")
        return result["result"].get("value")

    def errors(self, since=0) -> list[str]:
        """Console errors, uncaught exceptions and failed loads since event number `since`."""
        found = []
        for event in self.events[since:]:
            method, params = event["method"], event.get("params", {})
            if method == "Runtime.exceptionThrown":
                found.append(params["exceptionDetails"].get("text", "exception"))
            elif method == "Runtime.consoleAPICalled" and params["type"] in ("error", "assert"):
                found.append(" ".join(str(a.get("value", a.get("description"))) for a in params["args"]))
            elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
                found.append(f"{params['entry']['text']} {params['entry'].get('url', '')}")
        return found

    def settle(self):
        """Wait until every console message, exception and log entry the page sent before now has arrived: the page
        logs a marker, which comes back after them (one page, one ordered channel)."""
        self._marks = getattr(self, "_marks", 0) + 1
        mark, since = f"dreamer-settle-{self._marks}", len(self.events)
        self.evaluate(f"console.debug({mark!r}), true")

        def arrived():
            return any(e["method"] == "Runtime.consoleAPICalled" and e["params"]["args"]
                       and e["params"]["args"][0].get("value") == mark for e in self.events[since:])

        with self._lock:
            if not self._lock.wait_for(arrived, 30):
                raise TimeoutError("the page's console marker did not come back in 30 s")

    def screenshot(self, path, full_page=False):
        params = {"format": "png"}
        if full_page:
            size = self.send("Page.getLayoutMetrics", session=True)["cssContentSize"]
            params.update(captureBeyondViewport=True,
                          clip={"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1})
        data = self.send("Page.captureScreenshot", session=True, **params)["data"]
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_bytes(base64.b64decode(data))

    def close(self):
        try:
            self.send("Browser.close", timeout=5)
        except Exception:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._to_browser)
        shutil.rmtree(self.profile, ignore_errors=True)


# Load every image now: lazy ones are made eager and the page is scrolled through; then wait for them.
LOAD_ALL_IMAGES = """
(async () => {
  const imgs = Array.from(document.images);
  const loading = imgs.map((img) => img.getAttribute("loading"));
  imgs.forEach((img) => { img.loading = "eager"; });
  for (let y = 0; y <= document.body.scrollHeight; y += innerHeight / 2) {
    scrollTo(0, y);
    await new Promise((r) => requestAnimationFrame(r));
  }
  scrollTo(0, 0);
  await Promise.all(imgs.map((img) => img.complete ? null : new Promise((r) => { img.onload = img.onerror = r; })));
  return imgs.map((img, i) => ({src: img.currentSrc || img.src, naturalWidth: img.naturalWidth,
                                width: img.getAttribute("width"), height: img.getAttribute("height"),
                                alt: img.getAttribute("alt"), loading: loading[i]}));
})()
"""
LINKS = "Array.from(document.querySelectorAll('a[href]')).map((a) => a.href)"
VIDEOS_READY = "Array.from(document.querySelectorAll('video')).every((v) => v.readyState >= 2 && v.videoWidth > 0)"


def exists(url: str) -> bool:
    if url.startswith("file://"):
        return Path(unquote(urlsplit(url).path)).is_file()
    try:
        with urlopen(url, timeout=10) as reply:
            return reply.status == 200
    except OSError:
        return False


def wait_until(browser: Chromium, expression: str, timeout=120):
    """Poll a JS expression until it is true (from here: it works with the page's scripts disabled too); `timeout`
    only guards against a hang."""
    deadline = time.monotonic() + timeout
    while not browser.evaluate(expression):
        assert time.monotonic() < deadline, f"timed out waiting for {expression}"
        time.sleep(0.05)


def crawl(browser: Chromium, start: str) -> dict:
    """Visit every page reachable from `start` (within its folder); assert images, links, console.
    Returns {page url: [image records]}."""
    root = start.rsplit("/", 1)[0] + "/"
    todo, seen, images = [start], {start}, {}
    while todo:
        url = todo.pop(0)
        since = len(browser.events)
        browser.open(url)
        records = browser.evaluate(LOAD_ALL_IMAGES)  # scrolling through, it brings every video near the viewport
        for img in records:
            assert img["naturalWidth"] > 0, f"{url}: image {img['src']} did not load"
            assert img["width"] and img["height"] and img["alt"] and img["loading"] == "lazy", (url, img)
        wait_until(browser, VIDEOS_READY)
        records += browser.evaluate("Array.from(document.querySelectorAll('video')).map((v) => "
                                    "({src: v.currentSrc, naturalWidth: v.videoWidth}))")
        for link in browser.evaluate(LINKS):
            link = urldefrag(link).url
            assert link.startswith(root), f"{url}: link {link} leaves the site"
            assert exists(link), f"{url}: link {link} does not resolve"
            if link.endswith(".html") and link not in seen:
                seen.add(link)
                todo.append(link)
        browser.settle()  # every console message of the page so far has arrived
        assert browser.errors(since) == [], f"{url}: console errors"
        images[url] = records
    return images


@pytest.fixture(scope="module")
def browser():
    if CHROMIUM is None:
        message = "chromium is not installed: apt-get install -y chromium"
        pytest.fail(message) if os.environ.get("CI") else pytest.skip(message)
    chromium = Chromium()
    yield chromium
    chromium.close()


@pytest.fixture(scope="module")
def served_site(tmp_path_factory):
    """A tiny gallery with an awkwardly named photo, built, under http://127.0.0.1:PORT/REPO/site/."""
    root = tmp_path_factory.mktemp("serve")
    folder = make_tiny(root / "REPO")
    shutil.copyfile(REPO / "inputs" / "rocket.jpg", folder / "inputs" / "<b>&\"' rocket #1?.jpg")
    assert build(load(folder / "gallery.toml"), out=io.StringIO()).ok
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield folder / "site", f"http://127.0.0.1:{server.server_address[1]}/REPO/site/index.html"
    server.shutdown()
    server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    """Serves the files quietly and, as GitHub Pages does, in byte ranges (`Range: bytes=A-B`): a browser plays
    and seeks a video through ranges; without them it cannot seek before the whole video has arrived."""

    def log_message(self, *args):
        pass

    def end_headers(self):
        if not self._ranged:
            self.send_header("Accept-Ranges", "bytes")
        super().end_headers()

    _ranged = False

    def send_head(self):
        found = re.fullmatch(r"bytes=(\d*)-(\d*)", self.headers.get("Range", "").strip())
        path = self.translate_path(self.path)
        if not found or found.groups() == ("", "") or not os.path.isfile(path):
            return super().send_head()
        with open(path, "rb") as f:
            data = f.read()
        first, last = found.groups()
        start = int(first) if first else max(0, len(data) - int(last))
        end = min(int(last), len(data) - 1) if first and last else len(data) - 1
        self._ranged = True
        if start > end:
            self.send_response(http.HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE)
            self.send_header("Content-Range", f"bytes */{len(data)}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return None
        self.send_response(http.HTTPStatus.PARTIAL_CONTENT)
        self.send_header("Content-Type", self.guess_type(path))
        self.send_header("Content-Range", f"bytes {start}-{end}/{len(data)}")
        self.send_header("Content-Length", str(end - start + 1))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        return io.BytesIO(data[start:end + 1])


def test_every_page_over_http_from_a_subpath(browser, served_site, tmp_path):
    site, url = served_site
    images = crawl(browser, url)
    assert len(images) == 1 + 3 + 2  # index, a page per photo, a page per style
    assert sum(len(v) for v in images.values()) > 20
    browser.open(url)
    browser.evaluate(LOAD_ALL_IMAGES)
    browser.screenshot(tmp_path / "index.png")
    assert (tmp_path / "index.png").stat().st_size > 10_000


def test_every_page_over_file_urls(browser, served_site):
    site, _ = served_site
    images = crawl(browser, (site / "index.html").as_uri())
    assert len(images) == 6 and all(v for v in images.values())


# Wait for the page to render this many frames: a video that plays moves on with them.
FRAMES = "new Promise((r) => { let n = %d; const f = () => (--n > 0 ? requestAnimationFrame(f) : r(true)); f(); })"
# Click "Replay in sync"; every video's time at once (its seek target), then where each seek landed.
REPLAY = """(async () => {
  const videos = Array.from(document.querySelectorAll('video'));
  const seeked = videos.map((v) => new Promise((r) => v.addEventListener('seeked', () => r(v.currentTime), {once: true})));
  document.querySelector('[data-action=replay]').click();
  const clicked = videos.map((v) => v.currentTime);
  return {clicked, seeked: await Promise.all(seeked),
          first: videos.map((v) => Number(v.dataset.times.split(' ')[0].split(',')[1]))};
})()"""


def test_pause_play_and_replay_in_sync(browser, served_site):
    _, url = served_site
    since = len(browser.events)
    browser.open(url)
    browser.evaluate(LOAD_ALL_IMAGES)
    assert browser.evaluate("document.querySelector('[data-controls]').hidden") is False
    click = "document.querySelector('[data-action=%s]').click(), true"
    state = "Array.from(document.querySelectorAll('video')).map((v) => [v.paused, v.currentTime])"
    wait_until(browser, VIDEOS_READY)
    browser.evaluate(click % "toggle")
    paused = browser.evaluate(state)
    assert len(paused) == 6 and all(p for p, _ in paused)
    browser.evaluate(FRAMES % 30)
    assert browser.evaluate(state) == paused  # paused videos stay where they are while the page renders on
    browser.evaluate(click % "toggle")
    # played again, each moves on from where it stood (or has looped round)
    wait_until(browser, "Array.from(document.querySelectorAll('video')).every((v, i) => !v.paused && "
                        f"v.currentTime !== {json.dumps([t for _, t in paused])}[i])")
    replay = browser.evaluate(REPLAY)
    assert replay["clicked"] == [0] * 6  # every video sent back to the start in one turn of the page
    # each seek landed on the video's first frame (the photo); how close together they play: bench/bench_pages.py
    assert all(0 <= at < first for at, first in zip(replay["seeked"], replay["first"])), replay
    wait_until(browser, "Array.from(document.querySelectorAll('video')).every((v) => !v.paused)")
    browser.settle()
    assert browser.errors(since) == []


def test_usable_on_a_phone(browser, served_site):
    _, url = served_site
    browser.send("Emulation.setDeviceMetricsOverride", session=True, width=390, height=844,
                 deviceScaleFactor=2, mobile=True)
    try:
        for page in (url, url.replace("index.html", "") + _first_photo_page(served_site[0])):
            browser.open(page)
            browser.evaluate(LOAD_ALL_IMAGES)
            # The page itself does not scroll sideways (the grid scrolls inside its own box).
            assert browser.evaluate("document.documentElement.scrollWidth <= innerWidth"), page
    finally:
        browser.send("Emulation.clearDeviceMetricsOverride", session=True)


def test_works_without_javascript(browser, served_site):
    _, url = served_site
    browser.send("Emulation.setScriptExecutionDisabled", session=True, value=True)
    try:
        browser.open(url)
        # Runtime.evaluate still runs (without timers or promises); the page's own script did not.
        assert browser.evaluate("document.querySelector('[data-controls]').hidden") is True
        browser.evaluate("Array.from(document.images).forEach((i) => { i.loading = 'eager'; }), true")
        wait_until(browser, "Array.from(document.images).every((i) => i.complete)")
        gifs = browser.evaluate("Array.from(document.images).map((i) => [i.src, i.naturalWidth])")
        assert any(src.endswith(".gif") for src, _ in gifs) and all(width > 0 for _, width in gifs)
    finally:
        browser.send("Emulation.setScriptExecutionDisabled", session=True, value=False)


def _first_photo_page(site: Path) -> str:
    return sorted(p.name for p in site.glob("photo-*.html"))[0]


if __name__ == "__main__":  # python tests/test_site_browser.py SITE_FOLDER OUT.png [WIDTH HEIGHT]
    site_folder, out = Path(sys.argv[1]), Path(sys.argv[2])
    width, height = (int(sys.argv[3]), int(sys.argv[4])) if len(sys.argv) > 4 else (1280, 900)
    chromium = Chromium(width=width, height=height)
    try:
        chromium.open((site_folder / "index.html").resolve().as_uri())
        # as a visitor first sees it: the videos in view loaded, on the finished dream they start with, drawn
        wait_until(chromium, "Array.from(document.querySelectorAll('video')).filter((v) => v.currentSrc)"
                             ".every((v) => v.readyState >= 2 && !v.seeking) && !!document.querySelector('video source')")
        chromium.evaluate(FRAMES % 2)
        chromium.screenshot(out)
    finally:
        chromium.close()
    print(out)
