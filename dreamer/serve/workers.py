"""Where the server's batches dream: here (Here, the library in this process) or on a Ray cluster
(dreamer.serve.remote). A worker's `dream(batch, on_step)` is a generator of (step, a JPEG a dream) as the engine
makes the frames, returning a callable a dream that gives its files, encoded (a Rendered, or its one-line error):
the queue calls those on its encoders, so the next batch dreams meanwhile. A worker that dies raises WorkerLost;
its `replace()` then starts another in its place (False: none could start)."""

import dataclasses
import io
import time

import numpy as np
from PIL import Image

from dreamer.errors import DreamerError
from dreamer.style import Style


class WorkerLost(DreamerError):
    """The worker died under its batch (its process or node): the batch's dreams may run again elsewhere."""


@dataclasses.dataclass(frozen=True)
class Order:
    """What a worker needs of a dream: its photo's pixels at `size` (or "noise:WxH"), its style, size and key.
    Plain values: they travel to a cluster's workers."""

    photo: np.ndarray | str
    style: Style
    size: int
    key: str


def batch_frames(orders: list[Order], settings, on_step):
    """(step, a frame a dream) as the engine makes them: one dream through dreamer.dream(), the library call;
    several through the engine's batched path (dreamer.engine.loop.dream_batch, as a gallery build dreams photos of
    one style together), each with its own seed's frames, those it would have alone."""
    from dreamer.api import _image, dream

    first, seed, tiles = orders[0], settings.seed, settings.batch
    if len(orders) == 1:
        for frame in dream(first.photo, first.style, size=first.size, seed=seed, batch=tiles, on_step=on_step):
            yield frame.step, [frame.image]
        return
    from dreamer.dreaming import canvas, prepare
    from dreamer.engine.batching import resolve_batch
    from dreamer.engine.loop import dream_batch

    images = [_image(order.photo, order.size, seed)[0] for order in orders]  # as dreamer.dream() reads them
    _, _, stepper, schedule = prepare(first.style, first.size)
    tiles = resolve_batch(tiles, stepper, *canvas(images[0].shape[:2], stepper, schedule), schedule.tile_size)
    seeds = [seed] * len(images)
    yield from zip(first.style.frame_steps, dream_batch(stepper, images, schedule, seeds, tiles, on_step))


def encoder(frames: list, order: Order, settings, seconds: float):
    """A callable giving the dream's files as a gallery build encodes them for its key (the gallery's [video]
    settings): a Rendered, or the one-line error."""
    from dreamer.gallery.execute import encoded, render_options

    return lambda: encoded(frames, order.style, render_options(dataclasses.replace(settings, size=order.size)),
                           seconds)


class Here:
    """Dreams in this process, through the library."""

    def __init__(self, settings):
        self.settings = settings

    def dream(self, orders: list[Order], on_step):
        images, started = [[] for _ in orders], time.perf_counter()
        for step, frames in batch_frames(orders, self.settings, on_step):
            for kept, frame in zip(images, frames):
                kept.append(frame)
            yield step, [jpeg(frame) for frame in frames]
        seconds = (time.perf_counter() - started) / len(orders)
        return [encoder(kept, order, self.settings, seconds) for kept, order in zip(images, orders)]

    def replace(self) -> bool:
        """This process cannot be replaced (a failure here fails its dreams, it never raises WorkerLost)."""
        return False


def jpeg(image: np.ndarray) -> bytes:
    """A frame as JPEG bytes, for the event stream."""
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, "JPEG", quality=85)
    return buffer.getvalue()
