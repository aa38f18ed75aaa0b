"""The committed gallery in a browser, the figures that move with the machine's load (so no test asserts them):
Lighthouse 12's mobile performance score of the index (tests/test_lighthouse.py asserts its bytes and its other
categories), every page's bytes beside the budgets that test asserts, and how close together the index's videos
restart on "Replay in sync" (tests/test_site_browser.py asserts that each is sent back to the start).
Ratios from one run: bytes / budget, and the replay's spread / the shortest frame of the videos.

Run: .venv/bin/python bench/bench_pages.py [--runs N]   (needs chromium, node and `npm install --prefix .ci
lighthouse@12`, as .ci/run installs)
"""

import argparse
import functools
import http.server
import statistics
import sys
import tempfile
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
from test_lighthouse import INDEX_BYTES, PAGE_BYTES, SITE, _Subpath, lighthouse  # noqa: E402
from test_site_browser import LOAD_ALL_IMAGES, Chromium  # noqa: E402

# The videos that got their sources (every one near the viewport at some point) can show a frame.
LOADED = ("Array.from(document.querySelectorAll('video.dream-video')).filter((v) => v.currentSrc)"
          ".every((v) => v.readyState >= 2) && !!document.querySelector('video.dream-video source')")
# Click "Replay in sync", then, once every video plays again, read every video's time in one turn of the page.
REPLAY = """(async () => {
  const videos = Array.from(document.querySelectorAll('video.dream-video')).filter((v) => v.currentSrc);
  const playing = videos.map((v) => new Promise((r) => v.addEventListener('playing', r, {once: true})));
  document.querySelector('[data-action=replay]').click();
  const clicked = videos.map((v) => v.currentTime);
  await Promise.all(playing);
  await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
  const frames = videos.flatMap((v) => v.dataset.times  // a dream's frames; a clip's: its length over its frames
    ? v.dataset.times.split(' ').map((p) => p.split(',').map(Number)).map(([start, end]) => end - start)
    : [Number(v.dataset.length) / Number(v.dataset.frames)]);
  return {clicked, playing: videos.map((v) => v.currentTime), shortest: Math.min(...frames)};
})()"""


def serve():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Subpath, directory=str(SITE)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/dreamer/"


def lighthouse_figures(base: str, runs: int):
    with tempfile.TemporaryDirectory() as tmp:
        scores, weights = [], []
        for run in range(runs):
            report = lighthouse(base + "index.html", Path(tmp))
            scores.append({name: c["score"] for name, c in report["categories"].items()})
            weights.append(report["audits"]["total-byte-weight"]["numericValue"])
            print(f"index, Lighthouse run {run + 1}: " + ", ".join(f"{k} {v:.2f}" for k, v in scores[-1].items())
                  + f"; {weights[-1] / 1e6:.3f} MB transferred", flush=True)
        performance = [s["performance"] for s in scores]
        print(f"index performance: median {statistics.median(performance):.2f} (min {min(performance):.2f}, "
              f"max {max(performance):.2f}) of {runs}; the test asserted >= 0.95 until 2026-12-06")
        print(f"index bytes / budget: {max(weights) / INDEX_BYTES:.2f} ({max(weights) / 1e6:.3f} MB of "
              f"{INDEX_BYTES / 1e6:.2f})")
        for page in sorted(p.name for p in SITE.glob("*.html") if p.name != "index.html"):
            report = lighthouse(base + page, Path(tmp), "--only-audits=total-byte-weight")
            weight = report["audits"]["total-byte-weight"]["numericValue"]
            print(f"{page:45} {weight / 1e6:6.3f} MB, bytes / budget {weight / PAGE_BYTES:.2f}", flush=True)


def replay_figures(base: str):
    browser = Chromium()
    try:
        browser.open(base + "index.html")
        browser.evaluate(LOAD_ALL_IMAGES)
        browser.evaluate(f"new Promise((r) => {{ const f = () => ({LOADED}) ? r(true) : setTimeout(f, 50); f(); }})",
                         timeout=120)
        found = browser.evaluate(REPLAY, timeout=60)
        spread = max(found["playing"]) - min(found["playing"])
        print(f"replay in sync, {len(found['playing'])} videos: at the click every time is "
              f"{sorted(set(found['clicked']))}; once all play, times {min(found['playing']):.3f}-"
              f"{max(found['playing']):.3f} s, spread {spread:.3f} s; spread / shortest frame "
              f"({found['shortest']:.3f} s): {spread / found['shortest']:.2f} (the test asserted a spread "
              "under 0.3 s until 2026-12-06)")
    finally:
        browser.close()


def main(runs: int, what: list[str]):
    server, base = serve()
    try:
        if "lighthouse" in what:
            lighthouse_figures(base, runs)
        if "replay" in what:
            replay_figures(base)
    finally:
        server.shutdown()
        server.server_close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="Lighthouse runs of the index (default 3)")
    parser.add_argument("--only", choices=["lighthouse", "replay"], help="one of the two parts")
    arguments = parser.parse_args()
    main(arguments.runs, [arguments.only] if arguments.only else ["lighthouse", "replay"])
