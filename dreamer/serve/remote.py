"""`dreamer serve --cluster ADDRESS`: the server's batches dream on Ray actors, one a GPU (else a CPU) of the
cluster, each keeping its networks loaded. The connection, the workers' start, their kind (backend and precision:
the server plans its keys with theirs), the token and the loopback-only `local` Ray are a cluster build's
(dreamer.gallery.cluster).

A batch is an actor's generator task (a Ray streaming generator): each frame comes back as JPEG bytes as soon as the
engine makes it, in order, over Ray's own channel, and the actor dying surfaces as an error on the next frame asked
for (nothing to poll, no queue actor that could die too). Its last item is each dream's files as bytes, checked as a
build checks a worker's result before the server stores them; the actor encodes them while its next batch dreams.
A cancelled batch is cancelled on Ray: the actor stops at its next step."""

import threading
import time
from dataclasses import replace

from dreamer.errors import DreamerError, one_line
from dreamer.gallery.cluster import Cluster, _checked, _last_line, _node
from dreamer.serve.workers import Order, WorkerLost, batch_frames, jpeg


class Stopped(Exception):
    """Raised in an actor's dream when the server cancelled its batch."""


def _dreamer_class(ray):
    @ray.remote
    class Dreamer:
        """A worker process: dreams the server's batches, one at a time, and encodes their files (IN_FLIGHT
        batches at once on its threads: one is encoded while the next dreams)."""

        def __init__(self):
            self.dreaming = threading.Lock()

        def describe(self) -> dict:
            from dreamer.gallery.cluster import describe_worker

            return describe_worker(ray)

        def dream(self, orders: list, settings):
            """Yield (step, [a JPEG a dream]) as the frames come, then [each dream's files and facts (a build
            worker's result) or its one-line error]."""
            from dataclasses import asdict

            from dreamer.gallery.execute import encoded, render_options

            context = ray.get_runtime_context()

            def on_step(done, total, score):
                if context.is_canceled():
                    raise Stopped

            images, started = [[] for _ in orders], time.perf_counter()
            with self.dreaming:
                try:
                    for step, frames in batch_frames(orders, settings, on_step):
                        for kept, frame in zip(images, frames):
                            kept.append(frame)
                        yield step, [jpeg(frame) for frame in frames]
                except Stopped:
                    return
                except Exception as exc:  # the batch fails on one line, the worker goes on
                    yield [one_line(exc)] * len(orders)
                    return
            seconds = (time.perf_counter() - started) / len(orders)
            results = [encoded(kept, order.style, render_options(replace(settings, size=order.size)), seconds)
                       for kept, order in zip(images, orders)]
            yield [result if isinstance(result, str) else asdict(result) | {"key": order.key, "node": _node(ray)}
                   for result, order in zip(results, orders)]

    return Dreamer


class ServeCluster(Cluster):
    """A cluster build's connection and workers, the workers being Dreamers."""

    worker_class = staticmethod(_dreamer_class)

    def __init__(self, address: str):
        super().__init__(address)
        self.lock = threading.Lock()

    def workers(self, settings) -> list:
        return [OnRay(self, actor, settings) for actor in self.actors]


class OnRay:
    """One of the cluster's actors as a worker of the queue (dreamer.serve.workers)."""

    def __init__(self, cluster: ServeCluster, actor, settings):
        self.cluster, self.actor, self.settings = cluster, actor, settings

    def dream(self, orders: list[Order], on_step):
        ray = self.cluster.ray
        run = self.actor.dream.remote(orders, self.settings)
        try:
            for _ in orders[0].style.frame_steps:
                item = self._next(run)
                if isinstance(item, list):  # the batch failed: each dream's error line
                    return self._made(lambda: item, orders)
                if not _frames(item, len(orders)):
                    raise DreamerError("the cluster sent back something else than this batch's frames")
                yield item
        except GeneratorExit:  # the server dropped the batch (every dream cancelled, or it stops)
            ray.cancel(run)
            raise
        return self._made(_once(lambda: self._next(run)), orders)

    def _made(self, results, orders: list[Order]) -> list:
        """A callable a dream giving its Rendered (or error line) from the batch's `results()`, checked."""
        kind = self.cluster.kind

        def made(i: int, order: Order):
            def rendered():
                sent = results()
                if not isinstance(sent, list) or len(sent) != len(orders):
                    return "the cluster sent back something else than this batch's dreams; nothing kept"
                return _checked(sent[i], order.key, _roles(self.settings, order.size), kind)
            return rendered

        return [made(i, order) for i, order in enumerate(orders)]

    def _next(self, run):
        """The batch's next item from the actor; WorkerLost if it died."""
        ray = self.cluster.ray
        try:
            return ray.get(next(run))
        except StopIteration:
            raise WorkerLost("the cluster's worker ended the batch early") from None
        except ray.exceptions.RayActorError as exc:
            raise WorkerLost(f"a worker of the cluster died ({_last_line(exc)})") from None
        except ray.exceptions.RayError as exc:
            raise WorkerLost(f"lost on the cluster ({_last_line(exc)})") from None

    def replace(self) -> bool:
        """Start another actor in place of this dead one, if the cluster has room for it (False if not)."""
        cluster = self.cluster
        with cluster.lock:
            before = set(cluster.actors)
            if self.actor in before:
                cluster._replace(self.actor, {actor: 0 for actor in before})
            new = set(cluster.actors) - (before - {self.actor})
        if not new:
            return False
        (self.actor,) = new
        return True


def _once(make):
    """`make` called once, its value kept, whichever thread asks first."""
    lock, kept = threading.Lock(), []

    def value():
        with lock:
            if not kept:
                kept.append(make())
            return kept[0]
    return value


def _frames(item, count: int) -> bool:
    """Whether `item` is (step, a JPEG a dream) for `count` dreams."""
    return (isinstance(item, tuple) and len(item) == 2 and type(item[0]) is int and isinstance(item[1], list)
            and len(item[1]) == count and all(type(data) is bytes for data in item[1]))


def _roles(settings, size: int) -> set[str]:
    """The roles of a dream's files at `size`: the GIF, the still and the videos the gallery's [video] settings
    make at that size."""
    from dreamer.gallery.settings import video_options

    return {"gif", "still", *video_options(replace(settings, size=size)).renditions()}
