"""Budgets of the committed gallery, measured by Lighthouse 12 (npm, in .ci/node_modules) in Debian's chromium:
the mobile preset, from a Pages-like subpath. The README's figure is the budget: the index transfers at most
0.8 MB, and no photo or style page more than the index may; accessibility, best practices and SEO score 1.
The performance score moves with the machine's load, so it is measured by bench/bench_pages.py, not asserted."""

import functools
import http.server
import json
import os
import shutil
import subprocess
import threading

import pytest

from conftest import REPO
from test_site_browser import CHROMIUM, FLAGS, _QuietHandler

LIGHTHOUSE = REPO / ".ci" / "node_modules" / "lighthouse" / "cli" / "index.js"
SITE = REPO / "site"
CHROME_FLAGS = " ".join(flag for flag in FLAGS if flag != "--remote-debugging-pipe")
INDEX_BYTES = 800_000  # README: "The committed gallery's index (41 renders, six of them clips) transfers 0.8 MB on a phone"
PAGE_BYTES = INDEX_BYTES  # a page of one photo or one style shows fewer renders than the index


@pytest.fixture(scope="module")
def site_url():
    """The committed site under http://127.0.0.1:PORT/dreamer/ (as Pages serves a project)."""
    missing = [name for name, found in (("node", shutil.which("node")), ("chromium", CHROMIUM),
                                        ("lighthouse: npm install --prefix .ci lighthouse@12", LIGHTHOUSE.is_file()))
               if not found]
    if missing:
        message = f"not installed: {', '.join(missing)}"
        pytest.fail(message) if os.environ.get("CI") else pytest.skip(message)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Subpath, directory=str(SITE)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/dreamer/"
    server.shutdown()
    server.server_close()


class _Subpath(_QuietHandler):
    """Serves the site's folder at /dreamer/."""

    def translate_path(self, path):
        prefix = "/dreamer/"
        return super().translate_path("/" + path[len(prefix):] if path.startswith(prefix) else "/missing/" + path)


def lighthouse(url, tmp_path, *extra) -> dict:
    report = tmp_path / "report.json"
    subprocess.run(["node", str(LIGHTHOUSE), url, "--output=json", f"--output-path={report}", "--quiet",
                    f"--chrome-path={CHROMIUM}", f"--chrome-flags={CHROME_FLAGS}", *extra],
                   check=True, timeout=300, env={**os.environ, "CHROME_PATH": CHROMIUM})
    return json.loads(report.read_text())


def test_index_budget(site_url, tmp_path):
    report = lighthouse(site_url + "index.html", tmp_path)
    assert report["lighthouseVersion"].startswith("12.")
    assert report["configSettings"]["formFactor"] == "mobile"
    scores = {name: category["score"] for name, category in report["categories"].items()}
    weight = report["audits"]["total-byte-weight"]["numericValue"]
    assert weight <= INDEX_BYTES, f"the index transfers {weight / 1e6:.2f} MB"
    assert scores["accessibility"] == scores["best-practices"] == scores["seo"] == 1, scores


@pytest.mark.parametrize("page", sorted(p.name for p in SITE.glob("*.html") if p.name != "index.html"))
def test_page_budget(site_url, tmp_path, page):
    report = lighthouse(site_url + page, tmp_path, "--only-audits=total-byte-weight")
    weight = report["audits"]["total-byte-weight"]["numericValue"]
    assert weight <= PAGE_BYTES, f"{page} transfers {weight / 1e6:.2f} MB"
