"""The dream queue and its render worker: one thread that dreams the queued dreams in the batches the scheduler
chooses (dreamer.serve.scheduler; a batch of one through dreamer.dream()), keeps each dream's frames (as JPEG) as
they come, and writes each finished dream's GIF and still under its render key, the key a gallery build gives the
same photo, style and options, into the store (dreamer.serve.store), which also journals the dreams in flight.
Event streams wait on Changes."""

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

import numpy as np
from PIL import Image

from dreamer.errors import DreamerError, one_line
from dreamer.gallery.keys import render_key
from dreamer.gallery.settings import Settings
from dreamer.serve.limits import Limits, Refused, retry_after
from dreamer.serve.scheduler import Scheduler
from dreamer.serve.store import Entry, Store
from dreamer.style import Style

FINISHED = ("done", "failed", "cancelled", "interrupted")
INTERRUPTED = "the server stopped during this dream; ask again"
MAX_FINISHED = 256  # finished dreams remembered by id (their files stay in the store)


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
    entry: Entry | None = None  # its files in the store, once done
    upload: bytes | None = None  # the photo as sent, until the store keeps it
    suffix: str = ""  # the photo's type as a file suffix ("jpg", "png", ...)
    keep: bool = False  # asked to keep: not cancelled when its event streams close
    watchers: int = 0  # event streams open on it
    cancel: threading.Event = dataclasses.field(default_factory=threading.Event)
    arrived: float = dataclasses.field(default_factory=time.monotonic)
    batch: int = 0  # how many dreams ran together in its batch (it among them), once it runs


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

    def __init__(self, settings: Settings, limits: Limits, store: Store, changes: Changes, interrupted=()):
        self.settings, self.limits, self.store, self.changes = settings, limits, store, changes
        self.dreams: dict[str, Dream] = {}
        self.finished: collections.deque[str] = collections.deque()  # ids of finished dreams, oldest first
        self.waiting: collections.deque[Dream] = collections.deque()
        self.lock = threading.Condition()
        self.seconds = 10.0  # a dream's running mean duration, for Retry-After
        self.stopping = False
        self.worker = threading.Thread(target=self._work, name="dreamer-worker", daemon=True)
        self.scheduler = Scheduler(self, limits.max_batch, limits.max_wait_ms)
        for data in interrupted:  # what Store.open() found in the journal of a server that stopped
            self._interrupted(data)

    def _interrupted(self, data: dict) -> None:
        """Remember a dream a stopped server had in flight (as submit() journalled it) as interrupted."""
        try:
            style = Style.from_dict(data["style"])
            dream = Dream(data["id"], "", style, "", int(data["size"]), str(data["key"]), "interrupted",
                          total=style.total_steps, error=INTERRUPTED)
        except (DreamerError, KeyError, TypeError, ValueError):
            return  # not a journal entry of ours
        with self.lock:
            self.dreams[dream.id] = dream
            self._finish(dream)

    def start(self) -> None:
        self.worker.start()

    def stop(self) -> None:
        """Stop the worker: the running dream ends at its next step."""
        with self.lock:
            self.stopping = True
            self.lock.notify_all()

    def new(self, client: str, style: Style, photo, size: int, key: str, **more) -> Dream:
        """A dream; `more`: the photo as sent (upload, suffix) and keep."""
        return Dream(secrets.token_urlsafe(16), client, style, photo, size, key, total=style.total_steps, **more)

    def submit(self, dreams: list[Dream]) -> None:
        """Queue `dreams` (one client's) in the journal, or answer one whose files the store keeps at once; Refused
        (429) when they would take the queue or the client past its bound. Reads files: not on the event loop."""
        stored = {dream.key: self.store.get(dream.key) for dream in dreams}
        with self.lock:
            fresh = [dream for dream in dreams if stored[dream.key] is None]
            active = [d for d in self.dreams.values() if d.status in ("queued", "running")]
            mine = sum(d.client == dreams[0].client for d in active) if dreams else 0
            if fresh and (len(active) + len(fresh) > self.limits.max_queue
                          or mine + len(fresh) > self.limits.max_per_client):
                whose = "the server's" if len(active) + len(fresh) > self.limits.max_queue else "your"
                raise Refused(429, f"{whose} queue is full: {len(fresh)} more dream(s) do not fit; try again later",
                              retry_after(self.seconds))
            for dream in dreams:
                self.dreams[dream.id] = dream
                if stored[dream.key] is not None:
                    dream.status, dream.step, dream.entry, dream.upload = "done", dream.total, stored[dream.key], None
                    self._finish(dream)
                else:
                    self.store.begin(dream.id, {"style": dream.style.to_dict(), "size": dream.size, "key": dream.key})
                    self.waiting.append(dream)
            self.lock.notify_all()
        self.changes.bump()

    def place(self, dream: Dream) -> int | None:
        """The dream's place in the queue (1: next, in the clients' turns), or None when it is not waiting."""
        with self.lock:
            return self.scheduler.place(dream)

    def cancel(self, dream: Dream) -> None:
        """Cancel a queued dream now, a running one at its next step; a finished one stays as it is."""
        with self.lock:
            if dream.status == "queued":
                self.waiting.remove(dream)
                dream.status = "cancelled"
                self._finish(dream)
            dream.cancel.set()
        self.changes.bump()

    def _finish(self, dream: Dream) -> None:
        """A dream has finished (under the lock): out of the journal; the oldest finished ids past MAX_FINISHED
        forgotten (their files stay in the store: the same photo and style asked again is answered from it)."""
        self.store.end(dream.id)
        self.finished.append(dream.id)
        while len(self.finished) > MAX_FINISHED:
            self.dreams.pop(self.finished.popleft(), None)

    def _work(self) -> None:
        while (batch := self.scheduler.next_batch()) is not None:
            self.changes.bump()
            started = time.perf_counter()
            outcomes = self._dream(batch)
            with self.lock:
                for dream, status, error in outcomes:
                    dream.status, dream.error = status, error
                    self._finish(dream)
                if any(status == "done" for _, status, _ in outcomes):  # a dream's share of the batch's time
                    self.seconds = 0.8 * self.seconds + 0.2 * (time.perf_counter() - started) / len(batch)
            self.changes.bump()

    def _dream(self, dreams: list[Dream]) -> list[tuple[Dream, str, str | None]]:
        """Dream `dreams` (one, or several that dream together), keeping each one's frames as they come, then write
        each one's files: (dream, status, one-line error) of those that had not finished before. A dream
        cancelled in a batch is dropped at the next step: it is cancelled there and then, its frames no longer
        kept, while the others go on (its pixels ride along to the batch's end, the price of not re-batching
        mid-dream); the batch stops when none is left, or when the server stops."""
        live, images, outcomes = {dream.id: dream for dream in dreams}, {dream.id: [] for dream in dreams}, []

        def drop_cancelled():
            with self.lock:
                for dream in [dream for dream in live.values() if dream.cancel.is_set()]:
                    del live[dream.id]
                    dream.status = "cancelled"
                    self._finish(dream)
            if not live or self.stopping:
                raise Cancelled

        def on_step(done, total, score):
            drop_cancelled()
            with self.lock:
                for dream in live.values():
                    dream.step, dream.total = done, total
            self.changes.bump()

        started = time.perf_counter()
        try:
            for step, frames in self._frames(dreams, on_step):
                drop_cancelled()
                shown = [(dream, frame, jpeg(frame)) for dream, frame in zip(dreams, frames) if dream.id in live]
                with self.lock:
                    for dream, frame, data in shown:
                        images[dream.id].append(frame)
                        dream.frames.append((step, data))
                        dream.step = step
                self.changes.bump()
        except Cancelled:
            return [(dream, "cancelled", None) for dream in live.values()]
        except Exception as exc:  # the dreams fail on one line, the server goes on
            failed = failure(exc)
            return [(dream, *failed) for dream in live.values()]
        seconds = (time.perf_counter() - started) / len(dreams)
        for dream in live.values():
            try:
                self._save(dream, images[dream.id], seconds)
                outcomes.append((dream, "done", None))
            except Exception as exc:  # this one fails, the others are kept
                outcomes.append((dream, *failure(exc)))
        return outcomes

    def _frames(self, dreams: list[Dream], on_step):
        """(step, a frame a dream) as the engine makes them: one dream through dreamer.dream(), the library call;
        several through the engine's batched path (dreamer.engine.loop.dream_batch, as a gallery build dreams
        photos of one style together), each with its own seed's frames, those it would have alone."""
        from dreamer.api import _image, dream

        first, seed, tiles = dreams[0], self.settings.seed, self.settings.batch
        if len(dreams) == 1:
            for frame in dream(first.photo, first.style, size=first.size, seed=seed, batch=tiles, on_step=on_step):
                yield frame.step, [frame.image]
            return
        from dreamer.dreaming import canvas, prepare
        from dreamer.engine.batching import resolve_batch
        from dreamer.engine.loop import dream_batch

        images = [_image(d.photo, d.size, seed)[0] for d in dreams]  # as dreamer.dream() reads them
        _, _, stepper, schedule = prepare(first.style, first.size)
        tiles = resolve_batch(tiles, stepper, *canvas(images[0].shape[:2], stepper, schedule), schedule.tile_size)
        yield from zip(first.style.frame_steps,
                       dream_batch(stepper, images, schedule, [seed] * len(images), tiles, on_step))

    def _save(self, dream: Dream, images: list, seconds: float) -> None:
        """Encode the GIF, the still and the videos as a gallery build does for this key (the gallery's [video]
        settings) and keep them, with the photo as sent, in the store under the key."""
        from dreamer.dreaming import encode
        from dreamer.gallery.execute import render_options

        made = encode(images, dream.style, render_options(dataclasses.replace(self.settings, size=dream.size)), seconds)
        files = dict(made.files)
        if dream.upload is not None:
            files[f"photo.{dream.suffix}"] = dream.upload
        entry = self.store.put(dream.key, files, {
            "style": dream.style.name, "size": dream.size, "frames": made.frames, "gif_frames": made.gif_frames,
            "width": made.width, "height": made.height, "seconds": round(seconds, 2), "backend": made.backend,
            "precision": made.precision})
        with self.lock:
            dream.entry, dream.upload = entry, None


def failure(exc: Exception) -> tuple[str, str]:
    """("failed", the one line) for what ended a dream: a DreamerError (the input, the style), or the engine's own
    bug, whose traceback goes to stderr."""
    if not isinstance(exc, DreamerError):
        traceback.print_exc(file=sys.stderr)
    return "failed", one_line(exc)


def jpeg(image: np.ndarray) -> bytes:
    """A frame as JPEG bytes, for the event stream."""
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, "JPEG", quality=85)
    return buffer.getvalue()
