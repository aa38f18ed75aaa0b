"""`dreamer serve --cluster local:2`: the batches dream on a real local Ray's two actors (one server for the file:
Ray starts slowly). Dreams stream their frames and finish through Ray; an actor killed with -9 mid-dream costs only
that dream's time: it runs again on the other worker, and its GIF decodes; a cancelled dream stops its actor."""

import contextlib
import io
import os
import time

import psutil
import pytest
from PIL import Image
from test_serve import PHOTO, Server, events

pytest.importorskip("httpx")
pytest.importorskip("fastapi")
DREAMING = "ray::Dreamer.dream"  # an actor's process title while it dreams a batch


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    try:
        import ray  # noqa: F401
    except ImportError:
        message = "Ray is not installed: pip install -e '.[cluster]'"
        pytest.fail(message) if os.environ.get("CI") else pytest.skip(message)
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    running = Server(tmp_path_factory.mktemp("cluster"), "--cluster", "local:2", "--max-batch", "1")
    yield running
    running.stop()


def post(server, **fields) -> dict:
    created = server.client.post("/api/dreams", data={"styles": "vgg16-textures", "size": "48", **fields},
                                 files={"photo": ("chelsea.jpg", PHOTO)})
    assert created.status_code == 202, created.text
    return created.json()["dreams"][0]


def dreaming_actors(server) -> list[psutil.Process]:
    """The server's Ray actor processes dreaming a batch now."""
    found = []
    for process in psutil.Process(server.process.pid).children(recursive=True):
        with contextlib.suppress(psutil.Error):
            if " ".join(process.cmdline()).startswith(DREAMING):
                found.append(process)
    return found


def test_dreams_stream_and_finish_through_ray(server):
    assert "dreaming on 2 worker(s) of the cluster local:2" in server.stderr.read_text()
    dream = post(server, steps="3")  # 4 octaves of 3 steps: frames at 0, 4, 8, 12
    steps = [data["step"] for kind, data in events(server.client, f"/api/dreams/{dream['id']}/events")
             if kind == "frame"]
    assert steps == [0, 4, 8, 12]
    status = server.client.get(f"/api/dreams/{dream['id']}").json()
    assert status["status"] == "done" and status["frames"] == 4, status["error"]
    gif = Image.open(io.BytesIO(server.client.get(status["gif"]).content))
    assert (gif.format, gif.n_frames, gif.size) == ("GIF", 4, (48, 32))


def test_a_worker_killed_mid_dream_costs_only_that_dream_which_runs_again(server):
    dream = post(server, steps="30", keep="true")  # 120 steps: long enough to be killed mid-way
    stream = events(server.client, f"/api/dreams/{dream['id']}/events")
    steps = [next(data for kind, data in stream if kind == "frame" and data["step"] > 0)["step"]]
    busy = dreaming_actors(server)
    assert len(busy) == 1, busy
    busy[0].kill()  # SIGKILL: the actor's process dies mid-batch
    seen = list(stream)
    statuses = [data for kind, data in seen if kind == "status"]
    assert statuses[-1]["status"] == "done", statuses[-1]
    steps += [data["step"] for kind, data in seen if kind == "frame"]
    assert steps == list(range(steps[0], 121, 4))  # every frame once: those sent before the kill are not sent again
    gif = Image.open(io.BytesIO(server.client.get(statuses[-1]["gif"]).content))
    assert (gif.format, gif.n_frames) == ("GIF", 31)
    deadline = time.monotonic() + 60  # the dead worker was replaced: two again
    while len([p for p in psutil.Process(server.process.pid).children(recursive=True)
               if _title(p).startswith("ray::Dreamer")]) < 2:
        assert time.monotonic() < deadline, "the dead worker was not replaced"
        time.sleep(0.5)
    assert server.client.get("/api/styles").status_code == 200


def _title(process: psutil.Process) -> str:
    with contextlib.suppress(psutil.Error):
        return " ".join(process.cmdline())
    return ""


def test_a_cancelled_dream_stops_its_worker_at_the_next_step(server):
    dream = post(server, size="128", steps="250")  # 1000 steps at 128 px: a minute or more to its end
    stream = events(server.client, f"/api/dreams/{dream['id']}/events")
    assert next(data for kind, data in stream if kind == "frame" and data["step"] > 0)
    assert len(dreaming_actors(server)) == 1
    server.client.delete(f"/api/dreams/{dream['id']}")
    last = [data for kind, data in stream if kind == "status"][-1]
    assert last["status"] == "cancelled" and last["step"] < 1000
    deadline = time.monotonic() + 20  # the actor stopped dreaming at its next step (Ray cancelled its batch), long
    # before the dream's end
    while dreaming_actors(server):
        assert time.monotonic() < deadline, "the worker still dreams the cancelled batch"
        time.sleep(0.2)
