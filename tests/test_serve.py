"""`dreamer serve` as a process on loopback, real weights, the fastest style at 48 px: dreams through the API
stream their frames, bad input gets one line and a 4xx, the guard holds (Host, token, body size, headers), cancel
works, and schemathesis finds no server error in /openapi.json."""

import base64
import hashlib
import io
import json
import os
import select
import socket
import struct
import subprocess
import sys
import zlib
from urllib.parse import urlsplit

import av
import numpy as np
import pytest
from conftest import REPO
from PIL import Image

httpx = pytest.importorskip("httpx")
pytest.importorskip("fastapi")

PHOTO = (REPO / "inputs" / "chelsea.jpg").read_bytes()
TINY = {"styles": "vgg16-textures", "size": "48", "steps": "3"}  # 4 octaves of 3 steps: frames at 0, 4, 8, 12


class Server:
    """A `dreamer serve --port 0` process keeping its dreams in `folder`/dreams; `url` is the address it printed (its
    token included, if any)."""

    def __init__(self, folder, *args):
        self.stderr = folder / "stderr.txt"
        with open(self.stderr, "w") as err:
            self.process = subprocess.Popen([sys.executable, "-m", "dreamer", "serve", "--port", "0",
                                             "--cache", str(folder / "dreams"), *args],
                                            cwd=folder, env={**os.environ, "PYTHONPATH": str(REPO)},
                                            stdout=subprocess.PIPE, stderr=err, text=True)
        self.url = self.process.stdout.readline().strip()
        assert self.url, f"the server did not start: {self.stderr.read_text()}"
        parts = urlsplit(self.url)
        self.base = f"{parts.scheme}://{parts.netloc}"
        self.token = parts.query.removeprefix("token=") or None
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        self.client = httpx.Client(base_url=self.base, headers=headers, timeout=120)

    def stop(self):
        self.client.close()
        self.process.terminate()
        self.process.wait(timeout=30)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    running = Server(tmp_path_factory.mktemp("serve"))
    yield running
    running.stop()


@pytest.fixture(scope="module")
def guarded(tmp_path_factory):
    """A server on 127.0.0.2 (loopback, but not a name served without a token): one dream a client, 64 px."""
    running = Server(tmp_path_factory.mktemp("guarded"), "--host", "127.0.0.2", "--max-per-client", "1",
                     "--max-size", "64", "--max-steps", "2")
    yield running
    running.stop()


def events(client, path):
    """(event, data) of an event stream, as they come, until the server ends it."""
    with client.stream("GET", path) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        kind = None
        for line in response.iter_lines():
            if line.startswith("event:"):
                kind = line.split(":", 1)[1].strip()
            elif line.startswith("data:"):
                yield kind, json.loads(line.split(":", 1)[1])


def create(client, files=None, **fields):
    data = {**TINY, **fields}
    return client.post("/api/dreams", data=data, files=files or {"photo": ("chelsea.jpg", PHOTO)})


def one_line_error(response, status):
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error and "\n" not in error
    return error


def test_styles_are_listed(server):
    styles = {style["name"]: style for style in server.client.get("/api/styles").json()}
    assert styles["vgg16-textures"]["network"] == "vgg16" and styles["vgg16-eyes"]["total_steps"] == 60


def test_a_dream_streams_its_frames_then_its_gif_and_still_keyed_like_a_gallery_render(server):
    from dreamer.gallery.keys import render_key
    from dreamer.gallery.settings import create_settings
    from dreamer.networks import get_style

    created = create(server.client)
    assert created.status_code == 202
    (dream,) = created.json()["dreams"]
    frames, statuses = [], []
    for kind, data in events(server.client, f"/api/dreams/{dream['id']}/events"):
        if kind == "frame":
            assert data["total"] == 12 and (not frames or data["step"] > frames[-1]["step"])
            frames.append(data)
        else:
            statuses.append(data["status"])
    assert statuses[-1] == "done" and "running" in statuses
    pictures = {base64.b64decode(frame["image"].split(",", 1)[1]) for frame in frames}
    assert [frame["step"] for frame in frames] == [0, 4, 8, 12] and len(pictures) == 4
    status = server.client.get(f"/api/dreams/{dream['id']}").json()
    assert status["status"] == "done" and status["frames"] == 4
    gif = Image.open(io.BytesIO(server.client.get(status["gif"]).content))
    assert (gif.format, gif.n_frames, gif.size) == ("GIF", 4, (48, 32))
    still = Image.open(io.BytesIO(server.client.get(status["still"]).content))
    assert (still.format, still.size) == ("JPEG", (48, 32))
    options = create_settings().render_options() | {"size": 48}
    assert status["key"] == render_key(hashlib.sha256(PHOTO).hexdigest(), get_style("vgg16-textures").replace(steps=3),
                                       options)
    again = create(server.client)  # the same photo, style and options: answered from the finished dream
    (twin,) = again.json()["dreams"]
    assert (twin["status"], twin["key"]) == ("done", status["key"]) and twin["id"] != status["id"]
    assert server.client.get(twin["gif"]).content == server.client.get(status["gif"]).content
    # its frames stream at once, from the stored GIF, at their steps: the studio shows it scrubbable
    replayed = [data for kind, data in events(server.client, f"/api/dreams/{twin['id']}/events") if kind == "frame"]
    assert [frame["step"] for frame in replayed] == [0, 4, 8, 12] and twin["frames"] == 4

    def pixels(frame):
        return np.asarray(Image.open(io.BytesIO(base64.b64decode(frame["image"].split(",", 1)[1]))), dtype=float)

    for made, shown in zip(frames, replayed):  # the same pictures, through the GIF's palette and JPEG
        assert np.abs(pixels(made) - pixels(shown)).mean() < 8


def _png(width, height, cut=None):
    """A black 1-bit PNG of any size (zlib keeps huge ones tiny), cut to `cut` bytes if given."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    compressor = zlib.compressobj(9)
    row = bytes(1 + (width + 7) // 8)
    idat = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    data = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0))
            + chunk(b"IDAT", idat) + chunk(b"IEND", b""))
    return data[:cut]


def test_bad_uploads_and_options_get_a_4xx_of_one_line_and_the_server_goes_on(server):
    photo = io.BytesIO()
    Image.new("RGB", (64, 48), "red").save(photo, "PNG")
    truncated = photo.getvalue()[: len(photo.getvalue()) - 30]
    bad_photos = {"empty": (b"", 422), "text named .png": (b"just words, not a picture\n", 422),
                  "truncated": (truncated, 422), "bomb": (_png(8000, 8000), 413),  # 64 MP: over the 50 MP limit
                  "100000x1": (_png(100_000, 1), 422)}
    for name, (data, status) in bad_photos.items():
        error = one_line_error(create(server.client, files={"photo": ("../../etc/x.png", data)}), status)
        assert error.startswith("photo:"), (name, error)
    for fields, field in [({"size": "100000"}, "size"), ({"steps": "0"}, "steps"),
                          ({"styles": "vgg16-eyess"}, "styles"), ({"styles": ["vgg16-eyes", "vgg16-eyes"]}, "styles")]:
        assert one_line_error(create(server.client, **fields), 422).startswith(field)
    assert "did you mean vgg16-eyes" in one_line_error(create(server.client, styles="vgg16-eyess"), 422)
    assert one_line_error(server.client.post("/api/dreams", data={**TINY, "noise": "10x10"}), 422).startswith("noise")
    assert one_line_error(server.client.post("/api/dreams", data=TINY), 422).startswith("photo")
    both = create(server.client, noise="48x48")
    assert one_line_error(both, 422).startswith("photo")
    assert server.client.get("/api/styles").status_code == 200


def _raw(server, request: bytes, body_chunks=()):
    """Send `request` (then `body_chunks`, until the server answers) on a fresh connection without finishing the
    body; the answer, read until the server closes the connection. The answer is read as soon as it comes: a server
    that closes with our bytes unread resets the connection, and a reset drops what we had not read."""
    address = urlsplit(server.base)
    answer = b""
    with socket.create_connection((address.hostname, address.port), timeout=60) as conn:
        try:
            conn.sendall(request)
            for chunk in body_chunks:
                if select.select([conn], [], [], 0)[0]:
                    break
                conn.sendall(chunk)
            for data in iter(lambda: conn.recv(65536), b""):
                answer += data
        except (ConnectionResetError, BrokenPipeError):
            pass  # after the answer: the server closed on the body it would not read
    return answer.decode("latin-1")


def test_a_body_over_the_limit_is_refused_before_the_rest_arrives(server):
    host = urlsplit(server.base).netloc
    declared = _raw(server, f"POST /api/dreams HTTP/1.1\r\nHost: {host}\r\nContent-Type: multipart/form-data; "
                            f"boundary=x\r\nContent-Length: {200 * 2**20}\r\n\r\n".encode())
    assert declared.startswith("HTTP/1.1 413") and '{"error": "the request is over' in declared
    part = b'--x\r\nContent-Disposition: form-data; name="photo"; filename="a.png"\r\n\r\n'
    over = [part] + [bytes(2**20)] * 20 + [bytes(2**16)]  # just over 20 MiB, and the body never ends
    chunks = [b"%x\r\n%s\r\n" % (len(data), data) for data in over]
    streamed = _raw(server, f"POST /api/dreams HTTP/1.1\r\nHost: {host}\r\nContent-Type: multipart/form-data; "
                            "boundary=x\r\nTransfer-Encoding: chunked\r\n\r\n".encode(), chunks)
    assert streamed.startswith("HTTP/1.1 413")
    assert server.client.get("/api/styles").status_code == 200


def test_security_headers_no_cors_and_a_page_without_inline_script(server):
    for path in ("/studio", "/api/styles", "/api/dreams/nothing", "/studio/studio.js"):
        response = server.client.get(path, headers={"Origin": "https://evil.example"})
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["x-frame-options"] == "DENY"
        assert "script-src 'self'" in response.headers["content-security-policy"]
        assert "unsafe-inline" not in response.headers["content-security-policy"]
        assert not any(name.startswith("access-control-") for name in response.headers)
    page = server.client.get("/studio").text
    assert '<script src="/studio/studio.js" defer></script>' in page and page.count("<script") == 1


def test_a_foreign_host_is_refused(server):
    assert one_line_error(server.client.get("/api/styles", headers={"Host": "evil.example"}), 400)
    assert one_line_error(server.client.get("/api/styles", headers={"Host": "127.0.0.1.evil.example:80"}), 400)
    assert server.client.get("/api/styles", headers={"Host": "localhost"}).status_code == 200


def test_unknown_and_traversal_ids_are_404(server):
    for path in ("/api/dreams/nope", "/api/dreams/nope/gif", "/api/dreams/..%2F..%2Fetc%2Fpasswd",
                 "/api/dreams/%2e%2e/gif", "/api/events?id=nope", "/studio/..%2Fapp.py", "/studio/app.py"):
        assert server.client.get(path).status_code == 404, path
    assert server.client.delete("/api/dreams/nope").status_code == 404


def test_cancel_a_running_dream_between_steps_and_a_queued_one_at_once(server):
    first = create(server.client, steps="250").json()["dreams"][0]  # 1000 steps: cancelled long before its end
    second = create(server.client, steps="249").json()["dreams"][0]
    stream = events(server.client, f"/api/dreams/{first['id']}/events")
    assert next(data for kind, data in stream if kind == "status" and data["status"] == "running")
    assert server.client.get(f"/api/dreams/{second['id']}").json()["place"] == 1
    assert server.client.delete(f"/api/dreams/{second['id']}").json()["status"] == "cancelled"
    server.client.delete(f"/api/dreams/{first['id']}")
    last = [data for kind, data in stream if kind == "status"][-1]
    assert last["status"] == "cancelled" and last["step"] < 1000
    assert one_line_error(server.client.get(f"/api/dreams/{first['id']}/gif"), 409)


def test_a_server_on_another_address_needs_its_token(guarded):
    assert guarded.token and guarded.url.startswith("http://127.0.0.2:")
    bare = httpx.Client(base_url=guarded.base)
    assert one_line_error(bare.get("/api/styles"), 401)
    assert one_line_error(bare.get("/studio"), 401)
    assert bare.get("/api/styles", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert guarded.client.get("/api/styles").status_code == 200
    entry = bare.get(f"/studio?token={guarded.token}")
    assert entry.status_code == 303 and entry.headers["location"] == "/studio"
    cookie = entry.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert bare.get("/studio").status_code == 200 and bare.get("/api/styles").status_code == 200  # the cookie
    too_many = guarded.client.post("/api/dreams", data={"noise": "48x48", "styles": ["vgg16-eyes", "vgg16-deep"]})
    assert one_line_error(too_many, 429).startswith("your queue is full")
    assert int(too_many.headers["retry-after"]) >= 1


def test_another_address_without_a_token_refuses_to_start(tmp_path):
    refused = subprocess.run([sys.executable, "-m", "dreamer", "serve", "--host", "127.0.0.2", "--no-token"],
                             cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True,
                             text=True, timeout=60)
    assert refused.returncode == 2 and refused.stdout == ""
    assert refused.stderr.count("\n") == 1 and "without a token" in refused.stderr


def test_schemathesis_finds_no_server_error_and_nothing_outside_the_schema(guarded, tmp_path):
    # every check but positive_data_acceptance: a schema cannot say which bytes are a photo, so random "binary"
    # photos are rightly refused
    checked = subprocess.run([os.path.join(os.path.dirname(sys.executable), "st"), "run",
                              f"{guarded.base}/openapi.json", "--checks", "all", "--max-examples", "15",
                              "--exclude-checks", "positive_data_acceptance",
                              "-H", f"Authorization: Bearer {guarded.token}", "--seed", "1"],
                             cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert checked.returncode == 0, checked.stdout[-4000:]


def test_the_studio_streams_a_photo_through_two_styles_and_its_slider_and_downloads_work(server):
    """A photo given to the studio's file input (as a drop does) through two styles: each card shows at least three
    distinct frames as they stream; then the page's slider puts every card at its photo (0) and its dream (the end);
    each card's GIF, still, WebM and MP4 decode with Pillow and PyAV."""
    from test_site_browser import CHROMIUM, Chromium

    if CHROMIUM is None:
        message = "chromium is not installed: apt-get install -y chromium"
        pytest.fail(message) if os.environ.get("CI") else pytest.skip(message)
    browser = Chromium()
    try:
        browser.open(server.url)
        seen = browser.evaluate("""new Promise(resolve => {
            const ready = () => document.querySelector("#styles input[value=hed-edges]");
            const shown = new Map();  // card title -> the distinct images it showed
            const cards = () => [...document.querySelectorAll(".card")];
            const scrubbed = value => {
              const moment = document.getElementById("moment");
              moment.value = value;
              moment.dispatchEvent(new Event("input"));
              return cards().map(card => card.querySelector("img").getAttribute("src"));
            };
            const go = async () => {
              const canvas = document.createElement("canvas");
              [canvas.width, canvas.height] = [64, 48];
              const paint = canvas.getContext("2d");
              paint.fillStyle = "#c84"; paint.fillRect(0, 0, 64, 48);
              paint.fillStyle = "#248"; paint.beginPath(); paint.arc(30, 24, 14, 0, 7); paint.fill();
              const photo = new File([await new Promise(done => canvas.toBlob(done, "image/png"))], "drop.png",
                                     {type: "image/png"});
              const dropped = new DataTransfer();
              dropped.items.add(photo);
              document.getElementById("photo").files = dropped.files;
              document.querySelector("input[value=vgg16-textures]").checked = true;
              document.querySelector("input[value=hed-edges]").checked = true;
              document.getElementById("size").value = "48";
              document.getElementById("steps").value = "3";
              new MutationObserver((_, watcher) => {
                for (const card of cards()) {
                  const title = card.querySelector("h2").textContent;
                  const image = card.querySelector("img").getAttribute("src");
                  if (!shown.has(title)) shown.set(title, new Set());
                  if (image && image.startsWith("data:")) shown.get(title).add(image);
                }
                const done = cards().filter(card => card.querySelector("a[download]"));
                if (done.length === 2 && !document.getElementById("moment").disabled) {
                  watcher.disconnect();
                  const last = cards().map(card => card.querySelector("img").getAttribute("src"));
                  resolve({frames: Object.fromEntries([...shown].map(([title, images]) => [title, images.size])),
                           last, start: scrubbed(0), end: scrubbed(1000),
                           captions: cards().map(card => card.querySelector("p").textContent),
                           links: cards().map(card => [...card.querySelectorAll("a[download]")].map(a => a.href))});
                }
              }).observe(document.getElementById("cards"), {subtree: true, childList: true, attributes: true,
                                                             characterData: true});
              document.getElementById("dream-form").requestSubmit();
            };
            if (ready()) go(); else new MutationObserver((_, watcher) => {
              if (ready()) { watcher.disconnect(); go(); }
            }).observe(document.getElementById("styles"), {childList: true});
        })""", timeout=180)
        assert sorted(seen["frames"]) == ["hed-edges", "vgg16-textures"]
        assert min(seen["frames"].values()) >= 3, seen["frames"]  # of the frames at steps 0, 4, 8 and 12
        assert seen["end"] == seen["last"] and all(a != b for a, b in zip(seen["start"], seen["end"]))
        assert seen["captions"] == ["step 12 of 12"] * 2
        for links in seen["links"]:
            files = {href.rsplit("/", 1)[-1]: server.client.get(href).content for href in links}
            assert sorted(files) == ["gif", "mp4", "still", "webm"]
            with Image.open(io.BytesIO(files["gif"])) as gif:
                assert gif.n_frames >= 3 and max(gif.size) == 48
            with Image.open(io.BytesIO(files["still"])) as still:
                assert still.format == "JPEG" and max(still.size) == 48
            for kind in ("webm", "mp4"):
                with av.open(io.BytesIO(files[kind])) as video:
                    assert len(list(video.decode(video=0))) >= 3
        browser.settle()
        assert browser.errors() == []
    finally:
        browser.close()


def test_the_docs_page_shows_every_operation_of_the_openapi_document_and_is_valid_html(server, tmp_path):
    from test_site_meta import vnu_jar

    page = server.client.get("/docs")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in page.headers["content-security-policy"] and "<script" not in page.text
    spec = server.client.get("/openapi.json").json()
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            assert f'id="{operation["operationId"]}"' in page.text and f"{method.upper()} {path}" in page.text
    assert "<td><code>styles</code></td><td>multipart/form-data</td><td>yes</td>" in page.text
    jar = vnu_jar()
    if jar is None:
        message = "the Nu HTML checker needs java and npm's vnu-jar (.ci/run installs both)"
        pytest.fail(message) if os.environ.get("CI") else pytest.skip(message)
    (tmp_path / "docs.html").write_text(page.text)
    checked = subprocess.run(["java", "-jar", str(jar), "--errors-only", str(tmp_path / "docs.html")],
                             capture_output=True, text=True, timeout=300)
    assert checked.returncode == 0 and checked.stderr == "", checked.stderr
