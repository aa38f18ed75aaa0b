"""The gallery's videos in a real browser (Debian's chromium, headless): they load near the viewport only, play
and loop; one slider puts every style's video at the same step; reduced motion shows posters; without JavaScript
the GIFs play; axe-core finds no serious or critical problem. Over http from a subpath and over file://."""

import functools
import http.server
import io
import json
import os
import threading
from pathlib import Path

import pytest

from dreamer.gallery import build
from dreamer.gallery.settings import load

from conftest import REPO, make_tiny
from test_site_browser import LOAD_ALL_IMAGES, _QuietHandler, browser, wait_until  # noqa: F401 (a fixture)

# Two styles of different schedules (5 and 3 frames), so the slider has to map shares of the dream to frames.
TOML = """\
title = "Video gallery"
size = 96
styles = ["vgg16-eyes", "vgg16-deep"]
[style.vgg16-eyes]
octaves = 2
steps = 2
every = 1
[style.vgg16-deep]
octaves = 1
steps = 4
every = 2
[video]
small = 48
"""
AXE = REPO / ".ci" / "node_modules" / "axe-core" / "axe.min.js"

# Every video's state: [source file, readyState, paused, currentTime, duration, the frame times it carries].
VIDEOS = """Array.from(document.querySelectorAll('video.dream-video')).map((v) => ({
  src: v.currentSrc.split('/').pop(), ready: v.readyState, paused: v.paused, time: v.currentTime,
  duration: v.duration, width: v.videoWidth, poster: v.getAttribute('poster'), gif: v.dataset.gif,
  steps: v.dataset.steps, frames: window.dreamerFramesShown ? window.dreamerFramesShown(v) : null,
  times: v.dataset.times, shown: getComputedStyle(v).display !== 'none',
  top: v.getBoundingClientRect().top}))"""
# Through the page half a screen at a time, each position rendered (two frames) so that the page sees it.
SCROLL_THROUGH = """(async () => {
  const rendered = () => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
  for (let y = 0; y <= document.body.scrollHeight; y += innerHeight / 2) {
    scrollTo(0, y); await rendered();
  }
  scrollTo(0, 0); await rendered(); return true;
})()"""
# Installed before a page's own script runs: for every video, where it is sent (each seek's target), where it is
# when it starts playing, the first frames it presents, and the first frame it presents after going back in time
# (looping round).
FRAMES_SHOWN = """(() => {
  const shown = new WeakMap();
  window.dreamerFramesShown = (video) => shown.get(video) || null;
  addEventListener('loadedmetadata', (event) => {  // capturing: before the page's own listeners
    const video = event.target;
    if (!(video instanceof HTMLVideoElement) || shown.has(video)) return;
    const record = {seeks: [], playing: null, frames: [], last: null, wrappedTo: null};
    shown.set(video, record);
    video.addEventListener('seeking', () => record.seeks.push(video.currentTime));
    video.addEventListener('playing', () => { if (record.playing === null) record.playing = video.currentTime; });
    const presented = (now, frame) => {
      if (record.frames.length < 4) record.frames.push(frame.mediaTime);
      if (record.last !== null && frame.mediaTime < record.last - 0.5) record.wrappedTo = frame.mediaTime;
      record.last = frame.mediaTime;
      if (record.wrappedTo === null) video.requestVideoFrameCallback(presented);
    };
    video.requestVideoFrameCallback(presented);
  }, true);
})()"""
ALL_VIDEOS = "Array.from(document.querySelectorAll('video.dream-video'))"


@pytest.fixture
def frames_shown(browser):
    """FRAMES_SHOWN in every page this test opens."""
    script = browser.send("Page.addScriptToEvaluateOnNewDocument", session=True, source=FRAMES_SHOWN)["identifier"]
    yield
    browser.send("Page.removeScriptToEvaluateOnNewDocument", session=True, identifier=script)


@pytest.fixture(scope="module")
def video_site(tmp_path_factory):
    """Three photos x two styles with videos, built, under http://127.0.0.1:PORT/REPO/site/."""
    root = tmp_path_factory.mktemp("serve")
    folder = make_tiny(root / "REPO", TOML, photos=("chelsea.jpg", "coffee.jpg", "rocket.jpg"))
    assert build(load(folder / "gallery.toml"), out=io.StringIO()).ok
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield folder / "site", f"http://127.0.0.1:{server.server_address[1]}/REPO/site/"
    server.shutdown()
    server.server_close()


def pages(site: Path) -> list[str]:
    return ["index.html", *sorted(p.name for p in site.glob("photo-*.html")), *sorted(p.name for p in site.glob("style-*.html"))]


def address(video_site, page: str, over: str) -> str:
    site, base = video_site
    return base + page if over == "http" else (site / page).as_uri()


def frame_at(steps: list[int], share: float) -> int:
    """The frame a video of these steps shows at `share` of its dream (the last whose step is not past it)."""
    return max(i for i, step in enumerate(steps) if step <= share * steps[-1] + 1e-9)


@pytest.mark.parametrize("over", ["http", "file"])
def test_every_video_loads_plays_and_loops(browser, video_site, over, frames_shown):
    site, _ = video_site
    renders = json.loads((site / "manifest.json").read_text())["renders"]
    for page in pages(site):
        since = len(browser.events)
        browser.open(address(video_site, page, over))
        browser.evaluate(SCROLL_THROUGH)
        wait_until(browser, f"{ALL_VIDEOS}.every((v) => v.readyState >= 2)")
        videos = browser.evaluate(VIDEOS)
        assert videos and all(v["src"].endswith(".webm") and v["width"] > 0 and v["poster"].endswith(".jpg")
                              for v in videos), (page, videos)
        assert all(not v["paused"] for v in videos)
        # each plays until it loops round: it presents a frame earlier than the one before
        wait_until(browser, f"{ALL_VIDEOS}.every((v) => (dreamerFramesShown(v) || {{}}).wrappedTo != null)")
        for v in browser.evaluate(VIDEOS):
            times = renders[v["src"].split(".")[0].removesuffix("-small")]["times"]  # the manifest's frame times
            start, end = times[-1]
            # it starts on the finished dream (as its poster): the page first sends it to the dream's last frame,
            # and it starts playing there
            assert start - 1e-3 <= v["frames"]["seeks"][0] < end, (page, v["src"], v["frames"], times)
            assert start - 1e-3 <= v["frames"]["playing"] < end, (page, v["src"], v["frames"], times)
            # and wraps round to the photo, the dream's first frame
            assert v["frames"]["wrappedTo"] < times[0][1], (page, v["src"], v["frames"], times)
        browser.settle()
        assert browser.errors(since) == [], page


@pytest.mark.parametrize("over", ["http", "file"])
def test_one_slider_puts_every_video_at_the_same_step(browser, video_site, over):
    site, _ = video_site
    photo = next(p for p in pages(site) if p.startswith("photo-"))
    for page in ("index.html", photo):
        browser.open(address(video_site, page, over))
        browser.evaluate(SCROLL_THROUGH)
        wait_until(browser, "Array.from(document.querySelectorAll('video.dream-video')).every((v) => v.readyState >= 1)")
        count = browser.evaluate("Number(document.querySelector('#scrub').max)") + 1
        videos = browser.evaluate(VIDEOS)
        all_steps = [[int(s) for s in v["steps"].split()] for v in videos]
        shares = sorted({round(step / steps[-1], 6) for steps in all_steps for step in steps})
        assert count == len(shares) == 5  # 0, 1/4, 2/4, 3/4, 1 of one style; 0, 1/2, 1 of the other
        for position in range(count):
            browser.evaluate(f"(() => {{ const s = document.querySelector('#scrub'); s.value = '{position}';"
                             " s.dispatchEvent(new Event('input')); return true; })()")
            wait_until(browser, "Array.from(document.querySelectorAll('video.dream-video')).every((v) => !v.seeking)")
            for v, steps in zip(browser.evaluate(VIDEOS), all_steps):
                frame = frame_at(steps, shares[position])
                start, end = map(float, v["times"].split()[frame].split(","))
                assert v["paused"] and start <= v["time"] < end, (page, position, v)
        # the label: the moment of the dream; on a photo page each card's own step and octave
        assert browser.evaluate("document.querySelector('#scrub-label').textContent") == "100 % of the dream"
        if page == photo:
            labels = browser.evaluate("Array.from(document.querySelectorAll('[data-step-label]')).map((o) => o.textContent)")
            assert labels == ["step 4 of 4 · octave 2 of 2", "step 4 of 4"]
            # arrow keys step one position of the slider, from the page
            browser.evaluate("document.activeElement.blur(), true")
            for key in ("ArrowLeft", "ArrowLeft"):
                for kind in ("keyDown", "keyUp"):
                    browser.send("Input.dispatchKeyEvent", session=True, type=kind, key=key, code=key,
                                 windowsVirtualKeyCode=37)
            assert browser.evaluate("document.querySelector('#scrub').value") == str(count - 3)
            labels = browser.evaluate("Array.from(document.querySelectorAll('[data-step-label]')).map((o) => o.textContent)")
            assert labels == ["step 2 of 4 · octave 1 of 2", "step 2 of 4"]  # share 1/2
        # play all resumes every video: each moves on from the slider's moment
        stood = [v["time"] for v in browser.evaluate(VIDEOS)]
        browser.evaluate("document.querySelector('[data-action=toggle]').click(), true")
        wait_until(browser, f"{ALL_VIDEOS}.every((v, i) => !v.paused && v.currentTime !== {json.dumps(stood)}[i])")


def test_offscreen_videos_load_nothing_until_near(browser, video_site):
    site, base = video_site
    style_page = next(p for p in pages(site) if p.startswith("style-"))
    browser.send("Emulation.setDeviceMetricsOverride", session=True, width=390, height=500, deviceScaleFactor=1,
                 mobile=True)
    try:
        browser.open(base + style_page)
        # by the time the near videos have loaded (the page has seen what is near), the far ones fetched nothing
        wait_until(browser, f"{ALL_VIDEOS}.some((v) => v.currentSrc) && "
                            f"{ALL_VIDEOS}.filter((v) => v.currentSrc).every((v) => v.readyState >= 2)")
        videos = browser.evaluate(VIDEOS)
        far = [v for v in videos if v["top"] > 500 + 400]
        assert far and all(v["src"] == "" and v["poster"] is None for v in far)
        fetched = browser.evaluate("performance.getEntriesByType('resource').map((e) => e.name.split('/').pop())")
        keys = {v["gif"].split("/")[-1].removesuffix(".gif") for v in far}
        assert fetched and not [name for name in fetched if name.split(".")[0].removesuffix("-small") in keys]
        browser.evaluate(SCROLL_THROUGH)
        wait_until(browser, "Array.from(document.querySelectorAll('video.dream-video')).every((v) => v.currentSrc)")
    finally:
        browser.send("Emulation.clearDeviceMetricsOverride", session=True)


def test_small_cells_get_the_small_rendition(browser, video_site):
    """The index's cells on a screen of density 0.25 are under 48 device pixels: the small videos load."""
    site, base = video_site
    browser.send("Emulation.setDeviceMetricsOverride", session=True, width=390, height=844, deviceScaleFactor=0.25,
                 mobile=True)
    try:
        browser.open(base + "index.html")
        wait_until(browser, "Array.from(document.querySelectorAll('video.dream-video')).every((v) => v.readyState >= 1)")
        videos = browser.evaluate(VIDEOS)
        assert all(v["src"].endswith("-small.webm") and v["width"] == 48 for v in videos), videos
    finally:
        browser.send("Emulation.clearDeviceMetricsOverride", session=True)


@pytest.mark.parametrize("over", ["http", "file"])
def test_reduced_motion_shows_posters_until_play(browser, video_site, over):
    browser.send("Emulation.setEmulatedMedia", session=True,
                 features=[{"name": "prefers-reduced-motion", "value": "reduce"}])
    try:
        browser.open(address(video_site, "index.html", over))
        browser.evaluate(SCROLL_THROUGH)
        wait_until(browser, f"{ALL_VIDEOS}.every((v) => v.getAttribute('poster'))")  # the page saw each one near
        videos = browser.evaluate(VIDEOS)
        assert videos and all(v["paused"] and v["time"] == 0 and v["poster"] and v["shown"] for v in videos)
        assert browser.evaluate("document.querySelector('[data-action=toggle]').textContent") == "Play all"
        browser.evaluate("document.querySelector('[data-action=toggle]').click(), true")
        wait_until(browser, "Array.from(document.querySelectorAll('video.dream-video')).every((v) => !v.paused)")
    finally:
        browser.send("Emulation.setEmulatedMedia", session=True, features=[])


@pytest.mark.parametrize("over", ["http", "file"])
def test_without_javascript_the_gifs_play(browser, video_site, over):
    browser.send("Emulation.setScriptExecutionDisabled", session=True, value=True)
    try:
        browser.open(address(video_site, "index.html", over))
        browser.evaluate("Array.from(document.images).forEach((i) => { i.loading = 'eager'; }), true")
        wait_until(browser, "Array.from(document.images).every((i) => i.complete)")
        gifs = browser.evaluate("Array.from(document.images).filter((i) => i.src.endsWith('.gif'))"
                                ".map((i) => [i.naturalWidth, i.getBoundingClientRect().width])")
        assert len(gifs) == 6 and all(natural > 0 and shown > 0 for natural, shown in gifs)
        assert not any(v["shown"] or v["src"] for v in browser.evaluate(VIDEOS))
    finally:
        browser.send("Emulation.setScriptExecutionDisabled", session=True, value=False)


def test_axe_finds_no_serious_problem(browser, video_site):
    if not AXE.is_file():
        message = "axe-core is not installed: npm install --prefix .ci axe-core"
        pytest.fail(message) if os.environ.get("CI") else pytest.skip(message)
    site, base = video_site
    for page in pages(site):
        browser.open(base + page)
        browser.evaluate(AXE.read_text(encoding="utf-8") + "; true")
        result = browser.evaluate("axe.run(document, {resultTypes: ['violations']}).then((r) => r.violations"
                                  ".map((v) => ({id: v.id, impact: v.impact, nodes: v.nodes.length})))", timeout=60)
        serious = [v for v in result if v["impact"] in ("serious", "critical")]
        assert serious == [], f"{page}: {json.dumps(serious)}"


def test_gif_only_galleries_keep_their_gifs(browser, tmp_path):
    """video.formats = [] writes no video; the pages show the GIFs, and pausing shows the stills."""
    folder = make_tiny(tmp_path, TOML.replace("small = 48", "formats = []"), photos=("chelsea.jpg",))
    site = load(folder / "gallery.toml").output
    assert build(load(folder / "gallery.toml"), out=io.StringIO()).ok
    assert not list((site / "renders").glob("*.webm")) and not list((site / "renders").glob("*.mp4"))
    browser.open((site / "index.html").as_uri())
    records = browser.evaluate(LOAD_ALL_IMAGES)
    assert sum(r["src"].endswith(".gif") for r in records) == 2
    browser.evaluate("document.querySelector('[data-action=toggle]').click(), true")
    assert all(s.endswith(".jpg") for s in browser.evaluate(
        "Array.from(document.querySelectorAll('img[data-gif]')).map((i) => i.getAttribute('src'))"))
