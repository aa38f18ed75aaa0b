"""The dream queue and its render worker: one thread that dreams the queued dreams one at a time through
dreamer.dream(), keeps each frame (as JPEG) as it comes, and writes the finished dream's GIF and still under its
render key, the key a gallery build gives the same photo, style and options. Event streams wait on Changes."""

import asyncio
import collections
import contextlib
import dataclasses
import hashlib
import io
import secrets
import sys
import threading
import time
import traceback
from pathlib import Path

import numpy as np
from PIL import Image

from dreamer.errors import DreamerError, one_line
from dreamer.gallery.keys import render_key
from dreamer.gallery.settings import Settings
from dreamer.serve.limits import Limits, Refused, retry_after
from dreamer.style import Style

FINISHED = ("done", "failed", "cancelled")


class Cancelled(Exception):
    """Raised inside the worker's dream when its dream was cancelled (or the server stops): ends it between steps."""


@dataclasses.dataclass
class Dream:
    """One photo dreaming in one style, as the API shows it; the worker changes it under the queue's lock."""

    id: str
    client: str
    style: Style
    photo: np.ndarray | str  # the photo's pixels at `size`, or "noise:WxH"
    size: int
    key: str
    status: str = "queued"
    step: int = 0
    total: int = 0
    frames: list = dataclasses.field(default_factory=list)  # (step, JPEG bytes), as the engine makes them
    error: str | None = None
    gif: Path | None = None
    still: Path | None = None
    cancel: threading.Event = dataclasses.field(default_factory=threading.Event)


class Changes:
    """A counter bumped (from any thread) whenever a dream changes; event streams await the next bump."""

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.loop, self.version, self._waiters = loop, 0, []

    def bump(self) -> None:
        with contextlib.suppress(RuntimeError):  # the loop has closed: the server is stopping, no one listens
            self.loop.call_soon_threadsafe(self._wake)

    def _wake(self) -> None:
        self.version += 1
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(None)
        self._waiters.clear()

    async def after(self, version: int) -> None:
        """Return once the counter has passed `version` (at once if it already has)."""
        if self.version == version:
            waiter = self.loop.create_future()
            self._waiters.append(waiter)
            await waiter


def dream_key(photo_sha256: str, style: Style, size: int, settings: Settings) -> str:
    """The render key of this photo (its bytes' sha256) in this style at `size`, as a gallery build computes it."""
    return render_key(photo_sha256, style, settings.render_options() | {"size": size})


def noise_sha256(name: str, seed: int) -> str:
    """What a gallery hashes for a static input (dreamer.gallery.plan)."""
    return hashlib.sha256(f"{name} seed {seed}".encode()).hexdigest()


class DreamQueue:
    """The queued and running dreams, bounded overall and per client, and the worker thread that dreams them."""

    def __init__(self, settings: Settings, limits: Limits, folder: Path, changes: Changes):
        self.settings, self.limits, self.folder, self.changes = settings, limits, folder, changes
        self.dreams: dict[str, Dream] = {}
        self.done: dict[str, Dream] = {}  # render key -> a finished dream with its files
        self.waiting: collections.deque[Dream] = collections.deque()
        self.lock = threading.Condition()
        self.seconds = 10.0  # a dream's running mean duration, for Retry-After
        self.stopping = False
        self.worker = threading.Thread(target=self._work, name="dreamer-worker", daemon=True)

    def start(self) -> None:
        self.worker.start()

    def stop(self) -> None:
        """Stop the worker: the running dream ends at its next step."""
        with self.lock:
            self.stopping = True
            self.lock.notify_all()

    def new(self, client: str, style: Style, photo, size: int, key: str) -> Dream:
        return Dream(secrets.token_urlsafe(16), client, style, photo, size, key, total=style.total_steps)

    def submit(self, dreams: list[Dream]) -> None:
        """Queue `dreams` (one client's), or answer a finished one's twin at once from the cache; Refused (429)
        when they would take the queue or the client past its bound."""
        with self.lock:
            fresh = [dream for dream in dreams if dream.key not in self.done]
            active = [d for d in self.dreams.values() if d.status in ("queued", "running")]
            mine = sum(d.client == dreams[0].client for d in active) if dreams else 0
            if fresh and (len(active) + len(fresh) > self.limits.max_queue
                          or mine + len(fresh) > self.limits.max_per_client):
                whose = "the server's" if len(active) + len(fresh) > self.limits.max_queue else "your"
                raise Refused(429, f"{whose} queue is full: {len(fresh)} more dream(s) do not fit; try again later",
                              retry_after(self.seconds))
            for dream in dreams:
                self.dreams[dream.id] = dream
                twin = self.done.get(dream.key)
                if twin is not None:
                    dream.status, dream.step, dream.total = "done", twin.total, twin.total
                    dream.frames, dream.gif, dream.still = twin.frames, twin.gif, twin.still
                else:
                    self.waiting.append(dream)
            self.lock.notify_all()
        self.changes.bump()

    def place(self, dream: Dream) -> int | None:
        """The dream's place in the queue (1: next), or None when it is not waiting."""
        with self.lock:
            return next((n for n, d in enumerate(self.waiting, 1) if d is dream), None)

    def cancel(self, dream: Dream) -> None:
        """Cancel a queued dream now, a running one at its next step; a finished one stays as it is."""
        with self.lock:
            if dream.status == "queued":
                self.waiting.remove(dream)
                dream.status = "cancelled"
            dream.cancel.set()
        self.changes.bump()

    def _work(self) -> None:
        while True:
            with self.lock:
                while not self.waiting and not self.stopping:
                    self.lock.wait()
                if self.stopping:
                    return
                dream = self.waiting.popleft()
                dream.status = "running"
            self.changes.bump()
            started = time.perf_counter()
            status, error = self._dream(dream)
            with self.lock:
                dream.status, dream.error = status, error
                if status == "done":
                    self.done[dream.key] = dream
                    self.seconds = 0.8 * self.seconds + 0.2 * (time.perf_counter() - started)
            self.changes.bump()

    def _dream(self, dream: Dream) -> tuple[str, str | None]:
        """Dream `dream`, keeping its frames as they come, then write its files: (status, one-line error)."""
        from dreamer.api import dream as dreaming

        def on_step(done, total, score):
            if dream.cancel.is_set() or self.stopping:
                raise Cancelled
            with self.lock:
                dream.step, dream.total = done, total
            self.changes.bump()

        started, images = time.perf_counter(), []
        try:
            for frame in dreaming(dream.photo, dream.style, size=dream.size, seed=self.settings.seed,
                                  batch=self.settings.batch, on_step=on_step):
                if dream.cancel.is_set() or self.stopping:
                    raise Cancelled
                images.append(frame.image)
                with self.lock:
                    dream.frames.append((frame.step, jpeg(frame.image)))
                    dream.step, dream.total = frame.step, frame.total
                self.changes.bump()
            self._save(dream, images, time.perf_counter() - started)
        except Cancelled:
            return "cancelled", None
        except DreamerError as exc:
            return "failed", one_line(exc)
        except Exception as exc:  # the engine's own bug: the dream fails on one line, the server goes on
            traceback.print_exc(file=sys.stderr)
            return "failed", one_line(exc)
        return "done", None

    def _save(self, dream: Dream, images: list, seconds: float) -> None:
        """The GIF and the still, encoded as a gallery build encodes them (no videos yet), named by the key."""
        from dreamer.dreaming import save
        from dreamer.gallery.execute import render_options
        from dreamer.media.video import VideoOptions

        options = dataclasses.replace(render_options(dataclasses.replace(self.settings, size=dream.size)),
                                      video=VideoOptions())
        gif, still = self.folder / f"{dream.key}.gif", self.folder / f"{dream.key}.jpg"
        save(images, dream.style, gif, still, options, seconds)
        dream.gif, dream.still = gif, still


def jpeg(image: np.ndarray) -> bytes:
    """A frame as JPEG bytes, for the event stream."""
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, "JPEG", quality=85)
    return buffer.getvalue()
