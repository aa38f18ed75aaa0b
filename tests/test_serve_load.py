"""`dreamer serve` under load: 16 clients at once (asyncio, each from its own loopback address), each dreaming its
own small photo and following it on its event stream: all finish with a GIF Pillow reads, no answer is a 5xx, and
a client past its bound (`--max-per-client 1`) gets 429 with Retry-After while the others dream."""

import asyncio
import io
import json

import pytest
from PIL import Image
from test_serve import PHOTO, Server, httpx

CLIENTS = 16
SMALL = {"styles": "vgg16-textures", "size": "64", "steps": "2"}  # 4 octaves of 2 steps


def photo(i: int) -> bytes:
    """Client i's photo: a crop of chelsea of its own, one shape for all (they batch together)."""
    buffer = io.BytesIO()
    Image.open(io.BytesIO(PHOTO)).convert("RGB").crop((8 * i, 0, 8 * i + 300, 200)).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    running = Server(tmp_path_factory.mktemp("load"), "--max-per-client", "1")
    yield running
    running.stop()


async def statuses(client: httpx.AsyncClient, dream_id: str) -> list[str]:
    """The dream's statuses from its event stream, until the server ends it."""
    seen = []
    async with client.stream("GET", f"/api/dreams/{dream_id}/events") as response:
        assert response.status_code == 200
        kind = None
        async for line in response.aiter_lines():
            if line.startswith("event:"):
                kind = line.split(":", 1)[1].strip()
            elif line.startswith("data:") and kind == "status":
                seen.append(json.loads(line.split(":", 1)[1])["status"])
    return seen


def client_at(base: str, address: str, answers: list) -> httpx.AsyncClient:
    """A client whose requests come from `address`, noting every answer's status in `answers`."""
    async def note(response):
        answers.append(response.status_code)

    return httpx.AsyncClient(base_url=base, transport=httpx.AsyncHTTPTransport(local_address=address), timeout=120,
                             event_hooks={"response": [note]})


async def dreamer(base: str, i: int, answers: list) -> tuple[dict, bytes]:
    """Client i: post its photo, follow the dream to its end; its last status and its GIF."""
    async with client_at(base, f"127.0.1.{i + 1}", answers) as client:
        created = await client.post("/api/dreams", data=SMALL, files={"photo": ("photo.png", photo(i))})
        assert created.status_code == 202, created.text
        dream = created.json()["dreams"][0]
        assert (await statuses(client, dream["id"]))[-1] == "done"
        status = (await client.get(f"/api/dreams/{dream['id']}")).json()
        return status, (await client.get(status["gif"])).content


async def greedy(base: str, answers: list) -> httpx.Response:
    """A client that posts a second dream while its first is queued: the second is refused."""
    async with client_at(base, "127.0.2.1", answers) as client:
        first = await client.post("/api/dreams", data={**SMALL, "steps": "250"},
                                  files={"photo": ("a.png", photo(CLIENTS))})
        assert first.status_code == 202, first.text
        second = await client.post("/api/dreams", data=SMALL, files={"photo": ("b.png", photo(CLIENTS + 1))})
        await client.delete(f"/api/dreams/{first.json()['dreams'][0]['id']}")
        return second


async def crowd(base: str, answers: list):
    return await asyncio.gather(greedy(base, answers), *(dreamer(base, i, answers) for i in range(CLIENTS)))


def test_sixteen_clients_at_once_all_finish_and_the_bounds_answer_429(server):
    answers = []
    refused, *dreams = asyncio.run(crowd(server.base, answers))
    assert len(dreams) == CLIENTS
    assert max(status["batch"] for status, _ in dreams) > 1  # those that came while another dreamed, together
    for _, data in dreams:
        gif = Image.open(io.BytesIO(data))
        assert (gif.format, gif.size, gif.n_frames) == ("GIF", (64, 43), 3)  # the photo, step 4, step 8
    assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1
    assert refused.json()["error"].startswith("your queue is full")
    assert not [status for status in answers if status >= 500]
    assert answers.count(202) == CLIENTS + 1
