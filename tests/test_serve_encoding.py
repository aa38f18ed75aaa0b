"""A dream's files are encoded and stored off the worker's thread (the next batch dreams meanwhile, and a dream is
done only once its files are stored), and a stored file evicted while it is being answered is served whole, or 410
when it went before it was opened, never a 500."""

import asyncio
import threading
import time

import httpx
import pytest
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

from dreamer.serve.store import Store

FACTS = {"style": "s", "size": 64, "frames": 2, "gif_frames": 2, "width": 64, "height": 48, "seconds": 1.0,
         "backend": "tensorflow", "precision": "float32"}


def test_a_file_evicted_after_it_was_opened_is_served_whole_and_one_evicted_before_is_410(tmp_path):
    from dreamer.serve.responses import OpenedFile

    store = Store(tmp_path, 2**30)
    data = bytes(range(256)) * 400
    entry = store.put("00000000000000aa", {"gif": data, "still": b"JPEG"}, FACTS)
    opened = {}

    def gif(request):
        file = store.opened(entry, "gif")
        if file is None:
            return JSONResponse({"error": "gone"}, 410)  # as the app answers it
        opened["file"] = file
        store.drop(entry.key)  # evicted between the check and the answer
        return OpenedFile(file, "image/gif")

    app = Starlette(routes=[Route("/gif", gif)])
    whole = get(app, "/gif")
    assert (whole.status_code, whole.content) == (200, data)
    assert opened["file"].closed and not entry.files["gif"].exists()
    gone = get(app, "/gif")  # the entry went before it was opened
    assert gone.status_code == 410


def test_a_range_of_an_evicted_file_is_served_from_the_open_file(tmp_path):
    from dreamer.serve.responses import OpenedFile

    store = Store(tmp_path, 2**30)
    data = bytes(range(256)) * 40
    entry = store.put("00000000000000ab", {"gif": b"GIF89a", "still": b"JPEG", "webm": data}, FACTS)

    def webm(request):
        file = store.opened(entry, "webm")
        store.drop(entry.key)
        return OpenedFile(file, "video/webm")

    part = get(Starlette(routes=[Route("/webm", webm)]), "/webm", headers={"Range": "bytes=100-199"})
    assert (part.status_code, part.content) == (206, data[100:200])


def get(app, path: str, **options) -> httpx.Response:
    """GET `path` of the ASGI `app`, in this process."""
    async def call():
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://test") as client:
            return await client.get(path, **options)
    return asyncio.run(call())


@pytest.fixture
def queue(tmp_path):
    """A real DreamQueue in this process (its worker dreaming here), whose encoders wait for `queue.gate`."""
    from dreamer.gallery.settings import create_settings
    from dreamer.serve.dreams import Changes, DreamQueue
    from dreamer.serve.limits import Limits
    from dreamer.serve.workers import Here

    gate = threading.Event()

    class Held(Here):
        def dream(self, orders, on_step):
            made = yield from super().dream(orders, on_step)
            return [lambda files=files: gate.wait(120) and files() for files in made]

    store = Store(tmp_path, 2**30)
    store.open()
    loop = asyncio.new_event_loop()
    settings = create_settings()
    dreams = DreamQueue(settings, Limits(max_batch=1), store, Changes(loop), workers=[Held(settings)])
    dreams.gate = gate
    dreams.start()
    yield dreams
    gate.set()
    dreams.stop()
    store.close()
    loop.close()


def test_the_next_dream_starts_while_the_last_one_is_encoded_and_done_means_stored(queue):
    from dreamer.networks import get_style

    style = get_style("vgg16-textures", steps=1, octaves=1)
    first, second = (queue.new("me", style, f"noise:{side}x48", 48, f"{n:016x}")
                     for n, side in ((1, 48), (2, 64)))
    queue.submit([first, second])

    def until(condition):
        deadline = time.monotonic() + 120
        while not condition():
            assert time.monotonic() < deadline
            time.sleep(0.02)

    until(lambda: len(second.frames) == len(style.frame_steps))  # the second dreamed whole...
    assert first.status == second.status == "running"  # ...while the first waits to be encoded: neither is done
    assert queue.store.read(first.key) is None and first.entry is None
    queue.gate.set()
    until(lambda: first.status == second.status == "done")
    for dream in (first, second):
        stored = queue.store.get(dream.key)
        assert stored is not None and dream.entry == stored and set(stored.files) >= {"gif", "still"}
