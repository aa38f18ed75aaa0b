"""Finished dreams kept by `dreamer serve` (dreamer.serve.store): across a restart and a kill -9 (bytes verified, a
damaged entry dreamed again, the interrupted dream reported), their videos served with Range, least recently used
evicted and nothing else touched; a closed event stream cancels its dream, another site's page gets no stream; and
"Add to gallery" puts the photo in inputs/ where a real build reuses the served files byte for byte."""

import base64
import hashlib
import io
import json
import os
import subprocess
import sys
import time

import pytest
from conftest import REPO, make_tiny
from PIL import Image

httpx = pytest.importorskip("httpx")
pytest.importorskip("fastapi")

from test_serve import PHOTO, Server, events, one_line_error

GALLERY = """\
size = 64
styles = ["vgg16-textures"]
[style.vgg16-textures]
octaves = 1
steps = 2
every = 1
[video]
formats = ["webm", "mp4"]
"""
ROLES = ("gif", "still", "webm", "mp4")
FACTS = {"style": "s", "size": 64, "frames": 2, "gif_frames": 2, "width": 64, "height": 48, "seconds": 1.0,
         "backend": "tensorflow", "precision": "float32"}  # what a store's record says of a render


def dream(client, photo=PHOTO, **fields):
    """POST `photo` in vgg16-textures: its one dream's status."""
    created = client.post("/api/dreams", data={"styles": "vgg16-textures", **fields},
                          files={"photo": ("photo.jpg", photo)})
    assert created.status_code == 202, created.text
    return created.json()["dreams"][0]


def until(client, dream_id, *statuses, limit=120):
    """The dream's status once it is one of `statuses` (polled; fails after `limit` seconds)."""
    ends = time.monotonic() + limit
    while (status := client.get(f"/api/dreams/{dream_id}").json())["status"] not in statuses:
        assert time.monotonic() < ends, status
        time.sleep(0.2)
    return status


def files_of(client, status) -> dict:
    return {role: client.get(status[role]).content for role in ROLES}


def test_finished_dreams_outlive_a_kill_9_and_the_interrupted_one_says_so(tmp_path):
    first = Server(tmp_path)
    try:
        short = until(first.client, dream(first.client, size="48", steps="2")["id"], "done")
        served = files_of(first.client, short)
        long = dream(first.client, size="48", steps="250", keep="true")
        until(first.client, long["id"], "running")
    finally:
        first.process.kill()  # SIGKILL mid-dream
        first.process.wait(timeout=30)
        first.client.close()
    assert (Image.open(io.BytesIO(served["gif"])).format, Image.open(io.BytesIO(served["still"])).format) == \
        ("GIF", "JPEG")

    second = Server(tmp_path)
    try:
        interrupted = second.client.get(f"/api/dreams/{long['id']}").json()
        assert interrupted["status"] == "interrupted"
        assert interrupted["error"] == "the server stopped during this dream; ask again"
        again = dream(second.client, size="48", steps="2")
        assert (again["status"], again["key"]) == ("done", short["key"])  # at once, from the store
        assert files_of(second.client, again) == served
        webm = second.client.get(again["webm"], headers={"Range": "bytes=0-99"})
        assert (webm.status_code, webm.content, webm.headers["content-type"]) == (206, served["webm"][:100],
                                                                                    "video/webm")
        assert second.client.get(again["mp4"]).headers["content-type"] == "video/mp4"

        gif = tmp_path / "dreams" / f"{short['key']}.gif"
        gif.write_bytes(gif.read_bytes()[:100])  # truncated: never served again
        assert one_line_error(second.client.get(again["gif"]), 410)
        redreamed = dream(second.client, size="48", steps="2")
        assert redreamed["status"] in ("queued", "running")
        done = until(second.client, redreamed["id"], "done")
        assert Image.open(io.BytesIO(second.client.get(done["gif"]).content)).n_frames >= 2
        record = json.loads((tmp_path / "dreams" / f"{short['key']}.json").read_text())
        assert hashlib.sha256(gif.read_bytes()).hexdigest() == record["files"]["gif"]["sha256"]
    finally:
        second.stop()


@pytest.fixture(scope="module")
def gallery(tmp_path_factory):
    """A gallery (size 64, vgg16-textures in 2 steps, WebM and MP4) served from its folder."""
    folder = make_tiny(tmp_path_factory.mktemp("gallery"), GALLERY, photos=())
    running = Server(folder)
    running.folder = folder
    yield running
    running.stop()


def test_add_to_gallery_and_the_build_reuses_the_served_files(gallery):
    status = until(gallery.client, dream(gallery.client)["id"], "done")
    served = files_of(gallery.client, status)
    added = gallery.client.post(f"/api/dreams/{status['id']}/gallery")
    assert added.status_code == 201 and added.json()["added"] is True
    name = added.json()["input"]
    assert name == f"served-{hashlib.sha256(PHOTO).hexdigest()[:10]}.jpg"
    assert (gallery.folder / "inputs" / name).read_bytes() == PHOTO  # the bytes as sent
    assert gallery.client.post(f"/api/dreams/{status['id']}/gallery").json() == {"input": name, "added": False}

    built = subprocess.run([sys.executable, "-m", "dreamer", "build", "--wait"], check=False, cwd=gallery.folder, capture_output=True,
                           text=True, timeout=300,
                           env={**os.environ, "PYTHONPATH": str(REPO), "DREAMER_DREAMS": str(gallery.folder / "dreams")})
    assert built.returncode == 0, built.stderr[-2000:]
    assert "rendered 0, reused 1, failed 0" in built.stdout
    site = gallery.folder / "site"
    manifest = json.loads((site / "manifest.json").read_text())
    entry = manifest["renders"][status["key"]]
    record = json.loads((gallery.folder / "dreams" / f"{status['key']}.json").read_text())
    assert entry["seconds"] == record["seconds"]  # the served dream's, not a render's (nor the preview's build's)
    for role, path in [("gif", entry["gif"]), ("still", entry["still"]), *entry["videos"].items()]:
        assert (site / path).read_bytes() == served[role], role
        assert manifest["files"][path]["sha256"] == hashlib.sha256(served[role]).hexdigest()


def test_a_photo_is_never_added_over_a_file(gallery):
    photo = (REPO / "inputs" / "coffee.jpg").read_bytes()
    status = until(gallery.client, dream(gallery.client, photo)["id"], "done")
    mine = gallery.folder / "inputs" / f"served-{hashlib.sha256(photo).hexdigest()[:10]}.jpg"
    mine.write_bytes(b"the user's own file")
    try:
        added = gallery.client.post(f"/api/dreams/{status['id']}/gallery").json()
        assert added == {"input": mine.name.replace(".jpg", "-2.jpg"), "added": True}
        assert mine.read_bytes() == b"the user's own file"
        assert (gallery.folder / "inputs" / added["input"]).read_bytes() == photo
    finally:  # the other tests' builds see only their own photos
        for path in (mine, gallery.folder / "inputs" / added["input"]):
            path.unlink(missing_ok=True)


def test_the_studio_adds_a_finished_card_to_the_gallery(gallery):
    from test_site_browser import CHROMIUM, Chromium

    if CHROMIUM is None:
        message = "chromium is not installed: apt-get install -y chromium"
        pytest.fail(message) if os.environ.get("CI") else pytest.skip(message)
    photo = (REPO / "inputs" / "astronaut.jpg").read_bytes()
    added = gallery.folder / "inputs" / f"served-{hashlib.sha256(photo).hexdigest()[:10]}.jpg"
    browser = Chromium()
    try:
        browser.open(gallery.url)
        shown = browser.evaluate("""new Promise(resolve => {
            const go = () => {
              const bytes = Uint8Array.from(atob("PHOTO"), c => c.charCodeAt(0));
              const files = new DataTransfer();
              files.items.add(new File([bytes], "astronaut.jpg", {type: "image/jpeg"}));
              document.getElementById("photo").files = files.files;
              new MutationObserver(() => {
                const button = document.querySelector(".card button");
                if (button && !button.disabled && button.textContent === "Add to gallery") button.click();
                if (button && button.textContent.startsWith("added")) resolve({button: button.textContent,
                    links: [...document.querySelectorAll(".card a")].map(a => a.textContent)});
              }).observe(document.getElementById("cards"), {subtree: true, childList: true, characterData: true});
              document.getElementById("dream-form").requestSubmit();
            };
            const ready = () => document.querySelector("#styles input");
            if (ready()) go(); else new MutationObserver((_, watcher) => {
              if (ready()) { watcher.disconnect(); go(); }
            }).observe(document.getElementById("styles"), {childList: true});
        })""".replace("PHOTO", base64.b64encode(photo).decode()), timeout=120)
        assert shown == {"button": f"added: inputs/{added.name}", "links": ["GIF", "still", "WEBM", "MP4"]}
        assert added.read_bytes() == photo
        browser.settle()
        assert browser.errors() == []
    finally:
        browser.close()
        added.unlink(missing_ok=True)


def test_finished_dreams_are_remembered_up_to_a_bound(tmp_path):
    import asyncio

    from dreamer.gallery.settings import create_settings
    from dreamer.networks import get_style
    from dreamer.serve.dreams import MAX_FINISHED, Changes, DreamQueue
    from dreamer.serve.limits import Limits
    from dreamer.serve.store import Store

    store = Store(tmp_path, 2**30)
    store.open()
    key = "00000000000000aa"
    store.put(key, {"gif": b"GIF89a", "still": b"JPEG"}, FACTS)
    loop = asyncio.new_event_loop()
    queue = DreamQueue(create_settings(), Limits(), store, Changes(loop))
    dreams = [queue.new("me", get_style("vgg16-textures"), "noise:48x48", 48, key) for _ in range(MAX_FINISHED + 5)]
    for one in dreams:
        queue.submit([one])  # answered from the store
    assert {one.status for one in dreams} == {"done"}
    assert len(queue.dreams) == MAX_FINISHED and dreams[-1].id in queue.dreams and dreams[4].id not in queue.dreams
    store.close()
    loop.close()


def test_another_sites_page_gets_no_event_stream(gallery):
    status = dream(gallery.client)
    path = f"/api/dreams/{status['id']}/events"
    assert "Origin" in one_line_error(gallery.client.get(path, headers={"Origin": "https://evil.example"}), 403)
    assert one_line_error(gallery.client.get("/api/events", params={"id": status["id"]},
                                             headers={"Origin": "http://localhost:1"}), 403)
    assert one_line_error(gallery.client.get("/api/preview/events", headers={"Origin": "null"}), 403)
    with gallery.client.stream("GET", path, headers={"Origin": gallery.base}) as own:
        assert own.status_code == 200
    behind_tls = gallery.base.replace("http://", "https://")  # a TLS proxy in front keeps the Host header
    with gallery.client.stream("GET", path, headers={"Origin": behind_tls}) as own:
        assert own.status_code == 200
    until(gallery.client, status["id"], "done", "cancelled")


def test_a_closed_event_stream_cancels_its_dream(gallery):
    status = dream(gallery.client, steps="250")  # 250 steps: cancelled long before its end
    stream = events(gallery.client, f"/api/dreams/{status['id']}/events")
    assert next(data for kind, data in stream if kind == "status" and data["status"] == "running")
    stream.close()  # and so the connection
    cancelled = until(gallery.client, status["id"], *("done", "cancelled", "failed"))
    assert cancelled["status"] == "cancelled" and cancelled["step"] < 250


def test_the_store_evicts_the_least_recently_used_and_nothing_else(tmp_path):
    from dreamer.serve.store import Store

    store = Store(tmp_path, limit=2**30)
    store.open()
    foreign = tmp_path / "0123456789abcdef.txt"
    foreign.write_text("not the store's")
    keys = [f"{n:016x}" for n in range(3)]
    for key in keys[:2]:
        store.put(key, {"gif": bytes(1000), "still": bytes(200)}, FACTS)
        os.utime(tmp_path / f"{key}.json", (1, 1))  # long unused
    store.limit = sum(path.stat().st_size for path in tmp_path.glob(f"{keys[0]}*")) * 5 // 2  # two fit, not three
    assert store.get(keys[0]) is not None  # used now: the other is the least recently used
    store.put(keys[2], {"gif": bytes(1000), "still": bytes(200)}, FACTS)
    assert store.get(keys[1]) is None and not (tmp_path / f"{keys[1]}.gif").exists()
    assert store.get(keys[0]) is not None and store.get(keys[2]) is not None
    assert foreign.read_text() == "not the store's"
    (tmp_path / f"{keys[0]}.jpg").write_bytes(bytes(199))  # damaged: dropped, never served
    assert store.get(keys[0]) is None and not (tmp_path / f"{keys[0]}.json").exists()
    store.close()
