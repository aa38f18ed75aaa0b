"""Dynamic batching and fair turns in `dreamer serve`, through the real server: dreams of one style posted together
run as one batch, each streaming its own frames and giving the GIF it gives alone; a dream cancelled in a batch
leaves it while the others finish; one client's many dreams do not starve another's one. Clients are told apart
by their address: each test client binds its own address on loopback (Linux routes all of 127/8 to lo)."""

import io
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from conftest import REPO
from PIL import Image
from test_serve import PHOTO, Server, events, httpx

SMALL = {"styles": "vgg16-textures", "size": "48"}  # 4 octaves
BLOCKER = {**SMALL, "steps": "250"}  # another kind (its steps differ): keeps the worker busy until cancelled


def photos(first: int, count: int) -> list[bytes]:
    """`count` different PNG photos of one shape (300 x 200 crops of chelsea), from the `first`th on: each test
    dreams its own, so that none is answered from another's finished dream."""
    cat = Image.open(io.BytesIO(PHOTO)).convert("RGB")
    crops = []
    for i in range(first, first + count):
        buffer = io.BytesIO()
        cat.crop((15 * (i % 8), 12 * (i // 8), 15 * (i % 8) + 300, 12 * (i // 8) + 200)).save(buffer, "PNG")
        crops.append(buffer.getvalue())
    return crops


def client(server: Server, address: str) -> httpx.Client:
    """A client of `server` whose requests come from `address`."""
    return httpx.Client(base_url=server.base, transport=httpx.HTTPTransport(local_address=address), timeout=120)


def post(client: httpx.Client, photo: bytes, **fields) -> dict:
    response = client.post("/api/dreams", data={**SMALL, **fields}, files={"photo": ("photo.png", photo)})
    assert response.status_code == 202, response.text
    return response.json()["dreams"][0]


def wait_until(client: httpx.Client, dream: dict, *statuses: str) -> dict:
    """The dream's status once it is one of `statuses` (polled: an event stream closed early would cancel it)."""
    deadline = time.monotonic() + 120
    while (status := client.get(f"/api/dreams/{dream['id']}").json())["status"] not in statuses:
        assert time.monotonic() < deadline, f"still {status['status']}, not {statuses}"
        time.sleep(0.05)
    return status


def finish_order(client: httpx.Client, dreams: list[dict]) -> list[str]:
    """The ids of `dreams` in the order they finished, from one event stream of them all."""
    query = "&".join(f"id={dream['id']}" for dream in dreams)
    return [data["id"] for kind, data in events(client, f"/api/events?{query}")
            if kind == "status" and data["status"] in ("done", "failed", "cancelled")]


def gif_frames(client: httpx.Client, status: dict) -> list[np.ndarray]:
    gif = Image.open(io.BytesIO(client.get(status["gif"]).content))
    frames = []
    for n in range(gif.n_frames):
        gif.seek(n)
        frames.append(np.asarray(gif.convert("RGB")))
    return frames


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    """Two servers, started side by side: one batching as by default (batch auto: 4 on a CPU; 20 ms), one with
    `--max-batch 1`."""
    with ThreadPoolExecutor(2) as pool:
        running = list(pool.map(lambda args: Server(tmp_path_factory.mktemp(args[0]), *args[1:]),
                                [("batched",), ("alone", "--max-batch", "1")]))
    yield running
    for server in running:
        server.stop()


@pytest.fixture(scope="module")
def batched(servers):
    return servers[0]


@pytest.fixture(scope="module")
def alone(servers):
    return servers[1]


def test_dreams_of_one_style_posted_together_run_as_one_batch_and_each_gives_its_gif_alone(batched, alone):
    pictures = photos(0, 4)
    with client(batched, "127.0.0.1") as me:
        blocker = post(me, pictures[0], **BLOCKER)
        wait_until(me, blocker, "running")
        dreams = [post(me, picture, steps="3") for picture in pictures]  # all wait behind the blocker
        me.delete(f"/api/dreams/{blocker['id']}")
        finish_order(me, dreams)
        together = [me.get(f"/api/dreams/{dream['id']}").json() for dream in dreams]
        assert [(s["status"], s["batch"], s["frames"]) for s in together] == [("done", 4, 4)] * 4
        batched_frames = [gif_frames(me, status) for status in together]
    with client(alone, "127.0.0.1") as me:
        dreams = [post(me, picture, steps="3") for picture in pictures]
        finish_order(me, dreams)
        for dream, frames in zip(dreams, batched_frames):
            status = me.get(f"/api/dreams/{dream['id']}").json()
            assert (status["status"], status["batch"]) == ("done", 1)
            # bit for bit: on TensorFlow a photo's tiles take the same arithmetic in a batch as alone
            assert all(np.array_equal(a, b) for a, b in zip(gif_frames(me, status), frames, strict=True))


def test_a_dream_cancelled_in_a_batch_leaves_it_and_the_others_finish(batched):
    pictures = photos(4, 3)
    with client(batched, "127.0.0.1") as me:
        blocker = post(me, pictures[0], **BLOCKER)
        wait_until(me, blocker, "running")
        dreams = [post(me, picture, steps="20") for picture in pictures]  # 80 steps
        me.delete(f"/api/dreams/{blocker['id']}")
        running = wait_until(me, dreams[1], "running")
        assert running["batch"] == 3
        me.delete(f"/api/dreams/{dreams[1]['id']}")
        finish_order(me, dreams)
        first, cancelled, last = (me.get(f"/api/dreams/{dream['id']}").json() for dream in dreams)
        assert cancelled["status"] == "cancelled" and cancelled["step"] < cancelled["total"] and not cancelled["gif"]
        for status in (first, last):
            assert (status["status"], status["batch"], status["step"]) == ("done", 3, 80)
            assert status["frames"] == 21 and len(gif_frames(me, status)) == 21  # the photo, every 4 steps


def test_one_clients_many_dreams_do_not_starve_another_clients_one(batched):
    pictures = photos(7, 2)  # a's dreams differ in their steps: each is a kind of its own, no two batch together
    with client(batched, "127.0.0.4") as other, client(batched, "127.0.0.2") as a, \
            client(batched, "127.0.0.3") as b:
        blocker = post(other, pictures[0], **BLOCKER)
        wait_until(other, blocker, "running")
        many = [post(a, pictures[1], steps=str(steps)) for steps in range(2, 8)]  # six dreams, first come first
        one = post(b, pictures[1], steps="8")
        assert [a.get(f"/api/dreams/{dream['id']}").json()["place"] for dream in many] == [1, 3, 4, 5, 6, 7]
        assert b.get(f"/api/dreams/{one['id']}").json()["place"] == 2  # b's turn comes after a's first
        other.delete(f"/api/dreams/{blocker['id']}")
        finished = finish_order(a, [*many, one])
    assert finished == [many[0]["id"], one["id"], *(dream["id"] for dream in many[1:])]


def test_a_bad_max_batch_is_one_line(tmp_path):
    refused = subprocess.run([sys.executable, "-m", "dreamer", "serve", "--max-batch", "lots"], cwd=tmp_path,
                             env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True, timeout=60,
                             check=False)
    error = refused.stderr.strip().splitlines()[-1]
    assert refused.returncode == 2 and "--max-batch" in error and "'lots'" in error and "auto" in error
