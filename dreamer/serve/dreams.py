"""The dream queue and its render workers: a thread a worker (this process, or each actor of a Ray cluster:
dreamer.serve.workers) dreams the queued dreams in the batches the scheduler chooses (dreamer.serve.scheduler),
keeping each dream's frames (as JPEG) as they come; encoder threads then keep each finished dream's files (its GIF,
still and videos) under its render key, the key a gallery build gives the same photo, style and options, in the
store (dreamer.serve.store), which also journals the dreams in flight, while the worker dreams its next batch. A
dream is done once its files are stored. Event streams wait on Changes."""

import asyncio
import collections
import contextlib
import dataclasses
import hashlib
import secrets
import sys
import threading
import time
import traceback
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from PIL import Image

from dreamer.errors import DreamerError, one_line
from dreamer.gallery.execute import ENCODERS, MAX_WAITING
from dreamer.gallery.keys import render_key
from dreamer.gallery.settings import Settings
from dreamer.serve.limits import Limits, Refused, retry_after
from dreamer.serve.scheduler import Scheduler
from dreamer.serve.store import Entry, Store
from dreamer.serve.workers import Here, Order, WorkerLost, jpeg
from dreamer.style import Style

FINISHED = ("done", "failed", "cancelled", "interrupted")
INTERRUPTED = "the server stopped during this dream; ask again"
MAX_FINISHED = 256  # finished dreams remembered by id (their files stay in the store)
RETRIES = 2  # times a dream runs again after its worker died under it
NO_WORKER = "no worker of the cluster is left; restart the server"


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
    tries: int = 0  # times its worker died under it


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
    """The queued and running dreams, bounded overall and per client, the threads of `workers` (default: one here)
    that dream them and the encoders that store their files."""

    def __init__(self, settings: Settings, limits: Limits, store: Store, changes: Changes, interrupted=(),
                 workers=None):
        self.settings, self.limits, self.store, self.changes = settings, limits, store, changes
        self.dreams: dict[str, Dream] = {}
        self.finished: collections.deque[str] = collections.deque()  # ids of finished dreams, oldest first
        self.waiting: collections.deque[Dream] = collections.deque()
        self.lock = threading.Condition()
        self.seconds = 10.0  # a dream's running mean duration, for Retry-After
        self.stopping = False
        self.workers = list(workers or [Here(settings)])
        self.threads = [threading.Thread(target=self._work, args=(worker,), name=f"dreamer-worker-{n}", daemon=True)
                        for n, worker in enumerate(self.workers)]
        self.encoders = ThreadPoolExecutor(ENCODERS, thread_name_prefix="dreamer-encode")
        self.waiting_encodes = threading.BoundedSemaphore(MAX_WAITING)
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
        for thread in self.threads:
            thread.start()

    def stop(self) -> None:
        """Stop the workers: the running dreams end at their next step; those waiting to be encoded stay in the
        journal (the next server reports them interrupted)."""
        with self.lock:
            self.stopping = True
            self.lock.notify_all()
        self.encoders.shutdown(wait=False, cancel_futures=True)

    def new(self, client: str, style: Style, photo, size: int, key: str, **more) -> Dream:
        """A dream; `more`: the photo as sent (upload, suffix) and keep."""
        return Dream(secrets.token_urlsafe(16), client, style, photo, size, key, total=style.total_steps, **more)

    def submit(self, dreams: list[Dream]) -> None:
        """Queue `dreams` (one client's) in the journal, or answer one whose files the store keeps at once; Refused
        (429) when they would take the queue or the client past its bound. Reads files: not on the event loop."""
        stored = {dream.key: self.store.get(dream.key) for dream in dreams}
        replayed = {dream.key: stored_frames(self.store, stored[dream.key], dream.style,
                                                bool(self.settings.gif.get("pingpong")))
                    for dream in dreams if stored[dream.key] is not None}
        with self.lock:
            fresh = [dream for dream in dreams if stored[dream.key] is None]
            if fresh and not self.workers:
                raise Refused(503, NO_WORKER)
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
                    dream.frames = list(replayed[dream.key])
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

    def _work(self, worker) -> None:
        """Dream the batches the scheduler gives on `worker` until the queue stops (or the worker is lost and cannot
        be replaced)."""
        while (batch := self.scheduler.next_batch()) is not None:
            self.changes.bump()
            started = time.perf_counter()
            try:
                outcomes = self._dream(batch, worker)
            except WorkerLost as exc:
                self._lost(batch, one_line(exc))
                if self.stopping:  # the cluster is closing: its dreams stay in the journal, interrupted
                    return
                if not worker.replace():
                    self._gone(worker)
                    return
                continue
            with self.lock:
                for dream, status, error in outcomes:
                    dream.status, dream.error = status, error
                    self._finish(dream)
                if len(outcomes) < len(batch):  # a dream's share of the batch's dreaming time
                    self.seconds = 0.8 * self.seconds + 0.2 * (time.perf_counter() - started) / len(batch)
            self.changes.bump()

    def _dream(self, dreams: list[Dream], worker) -> list[tuple[Dream, str, str | None]]:
        """Dream `dreams` (one, or several that dream together) on `worker`, keeping each one's frames as they come,
        then hand each one's files to the encoders (which store them and make it done): (dream, status, one-line
        error) of those that ended otherwise. A dream cancelled in a batch is dropped at the next step: it is
        cancelled there and then, its frames no longer kept, while the others go on (its pixels ride along to the
        batch's end, the price of not re-batching mid-dream); the batch stops when none is left, or when the
        server stops. WorkerLost if the worker died under the batch."""
        live = {dream.id: dream for dream in dreams}

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

        run = worker.dream([Order(d.photo, d.style, d.size, d.key) for d in dreams], on_step)
        try:
            while True:
                try:
                    step, shown = next(run)
                except StopIteration as end:
                    made = end.value
                    break
                drop_cancelled()
                with self.lock:
                    for dream, data in zip(dreams, shown):
                        if dream.id in live and (not dream.frames or step > dream.frames[-1][0]):  # a retried
                            dream.frames.append((step, data))  # dream keeps the frames it sent before
                            dream.step = step
                self.changes.bump()
        except Cancelled:
            run.close()
            return [(dream, "cancelled", None) for dream in live.values()]
        except WorkerLost:
            raise
        except Exception as exc:  # the dreams fail on one line, the server goes on
            failed = failure(exc)
            return [(dream, *failed) for dream in live.values()]
        for dream, files in zip(dreams, made):
            if dream.id in live:
                self.waiting_encodes.acquire()  # at most MAX_WAITING dreams' frames wait to be encoded
                self.encoders.submit(self._keep, dream, files)
        return []

    def _keep(self, dream: Dream, files) -> None:
        """On an encoder: the dream's files (a worker's `files()`) into the store, with the photo as sent; it is
        then done (or failed on one line)."""
        try:
            rendered = files()
            if isinstance(rendered, str):
                status, error = "failed", rendered
            else:
                self._store(dream, rendered)
                status, error = "done", None
        except WorkerLost as exc:
            self._lost([dream], one_line(exc))
            return
        except Exception as exc:  # this one fails, the others are kept
            status, error = failure(exc)
        finally:
            self.waiting_encodes.release()
        with self.lock:
            dream.status, dream.error = status, error
            self._finish(dream)
        self.changes.bump()

    def _store(self, dream: Dream, rendered) -> None:
        """Keep the files, with the photo as sent, in the store under the dream's key."""
        files = dict(rendered.files)
        if dream.upload is not None:
            files[f"photo.{dream.suffix}"] = dream.upload
        entry = self.store.put(dream.key, files, {
            "style": dream.style.name, "size": dream.size, "frames": rendered.frames,
            "gif_frames": rendered.gif_frames, "width": rendered.width, "height": rendered.height,
            "seconds": round(rendered.seconds, 2), "backend": rendered.backend, "precision": rendered.precision})
        with self.lock:
            dream.entry, dream.upload = entry, None

    def _lost(self, dreams: list[Dream], line: str) -> None:
        """The worker of `dreams` died: those still running go back to the head of the queue, to run again on
        another worker, at most RETRIES times; then they fail on one line."""
        with self.lock:
            for dream in reversed(dreams):
                if dream.status != "running":
                    continue
                dream.tries += 1
                if dream.cancel.is_set():
                    dream.status = "cancelled"
                elif dream.tries > RETRIES:
                    dream.status, dream.error = "failed", f"lost with {dream.tries} workers of the cluster ({line})"
                else:
                    dream.status, dream.batch = "queued", 0
                    self.waiting.appendleft(dream)
                    continue
                self._finish(dream)
            self.lock.notify_all()
        self.changes.bump()

    def _gone(self, worker) -> None:
        """`worker` is lost for good; when it was the last, the waiting dreams fail on one line."""
        with self.lock:
            self.workers.remove(worker)
            if self.workers:
                return
            for dream in list(self.waiting):
                self.waiting.remove(dream)
                dream.status, dream.error = "failed", NO_WORKER
                self._finish(dream)
        self.changes.bump()


def stored_frames(store: Store, entry: Entry, style: Style, pingpong: bool) -> list[tuple[int, bytes]]:
    """A stored dream's frames as (step, JPEG bytes), decoded from its GIF, whose first frames are the dream's in
    order (with `pingpong`, the rest play them back); where the GIF merged frames equal after quantisation, only
    its first and last, whose steps are sure. [] if the GIF is gone or does not decode."""
    steps = style.frame_steps
    whole = len(steps) if not pingpong or len(steps) == 1 else 2 * len(steps) - 2
    file = store.opened(entry, "gif")
    if file is None:
        return []
    frames = []
    try:
        with file, Image.open(file) as gif:
            shown = list(enumerate(steps)) if gif.n_frames == whole else [(0, 0), (gif.n_frames - 1, steps[-1])]
            if pingpong and gif.n_frames != whole:
                shown = shown[:1]  # its last frame is not the dream's
            for index, step in shown:
                gif.seek(index)
                frames.append((step, jpeg(np.asarray(gif.convert("RGB")))))
    except (OSError, EOFError, ValueError, SyntaxError):  # what Pillow raises on a GIF it cannot read
        return []
    return frames


def failure(exc: Exception) -> tuple[str, str]:
    """("failed", the one line) for what ended a dream: a DreamerError (the input, the style), or the engine's own
    bug, whose traceback goes to stderr."""
    if not isinstance(exc, DreamerError):
        traceback.print_exc(file=sys.stderr)
    return "failed", one_line(exc)
