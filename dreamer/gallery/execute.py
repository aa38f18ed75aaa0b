"""Executing a build's renders: which go together and in what order, a group's dreams and a render's files as
bytes (`dreams` and `encoded`, put together by `render_group` on a cluster's workers) and the serial executor, which
encodes a render's files on ENCODERS threads while the next group dreams. Clips render here, streaming
(`clip_rendered`: those of one style and frame size together): their files are encoded as they dream.

An executor's `run(groups)` yields (jobs, results) as groups finish, in order: a result is a Rendered (the files as
bytes and what made them) or a one-line error. It writes nothing into the site: dreamer.gallery.write does.
A render that `dreamer serve` finished and keeps in its store is taken from there instead (`served`).
"""

from __future__ import annotations

import collections
import contextlib
import hashlib
import itertools
import socket
import sys
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import TYPE_CHECKING

from dreamer.engine.backends import activate
from dreamer.errors import DreamerError, InputError, one_line

if TYPE_CHECKING:
    from dreamer.gallery.plan import Job
    from dreamer.gallery.settings import Settings

# Threads encoding finished dreams (GIF, videos, still) while the next group dreams: ffmpeg and gifsicle run as
# processes, Pillow's quantiser and codecs outside Python's lock. 0: encode each dream before the next starts.
ENCODERS = 1
# Renders whose frames may wait to be encoded: the next group dreams only when at most this many are left.
MAX_WAITING = 4


@dataclass
class Rendered:
    """A finished render: its files' bytes by role ("gif", "still", "webm", "mp4-small", ...), what made it,
    and the machine it was made on."""

    files: dict
    frames: int
    gif_frames: int
    width: int
    height: int
    seconds: float
    backend: str
    precision: str
    node: str


@dataclass
class ClipRendered(Rendered):
    """A finished clip render (never a cluster's): a Rendered with the clip's {length, frames, audio}."""

    clip: dict


def render_group(sources: list, style, options, dreaming=contextlib.nullcontext()) -> list:
    """Render photos of one style together, in memory: a Rendered or the one-line error of each. `sources` as
    dreams() takes them; `dreaming` (a lock) is held while they dream, not while they are encoded."""
    with dreaming:
        dreamt = list(dreams(sources, style, options))
    results = [None] * len(sources)
    for i, frames, seconds in dreamt:
        results[i] = frames if isinstance(frames, str) else encoded(frames, style, options, seconds)
    return results


def dreams(sources: list, style, options, on_step=None):
    """Dream photos of one style together (dreamer.dreaming.dream_many), yielding (index, frames, seconds) as each
    dream ends, or (index, its one-line error, 0.0). `sources`: [(name, data)]: `data` the photo's bytes, or None
    to read `name` itself (a path on this machine, or noise:WxH). Errors name `name`."""
    activate()
    from dreamer import dreaming  # TensorFlow loads here, and only when something renders

    images, ended = {}, set()
    for i, (name, data) in enumerate(sources):
        try:
            images[i] = _image(name, data, options)
        except DreamerError as exc:
            yield i, one_line(exc), 0.0
    try:
        for i, frames, seconds in dreaming.dream_many(images, style, options, on_step):
            ended.add(i)
            yield i, one_line(frames) if isinstance(frames, Exception) else frames, seconds
    except Exception as exc:  # one group's failure must not stop the gallery
        yield from ((i, one_line(exc), 0.0) for i in images if i not in ended)


def _image(name: str, data: bytes | None, options) -> tuple:
    """(the uint8 image to dream at the render size, whether it is static) of a source; InputError naming `name`."""
    from dreamer.media.images import input_image, load_image, noise_shape, resize_to_long_side

    if data is None:
        return input_image(name, options.size, options.seed), noise_shape(name, options.size) is not None
    try:
        return resize_to_long_side(load_image(data), options.size), False
    except InputError as exc:
        raise InputError(name, str(exc).removeprefix(f"{exc.path}: ")) from None


def encoded(frames, style, options, seconds: float) -> Rendered | str:
    """A dream's frames encoded as its files' bytes (dreamer.dreaming.encode): a Rendered, or its one-line error."""
    from dreamer import dreaming

    try:
        return Rendered(**vars(dreaming.encode(frames, style, options, seconds)), node=socket.gethostname())
    except Exception as exc:  # one render's failure must not stop the gallery
        return one_line(exc)


def served(key: str, roles) -> Rendered | None:
    """The render of `key` that `dreamer serve` keeps in its store (dreamer.serve.store.default_folder), as if it
    had rendered here: a file in each of `roles` ("gif", "still", "webm", ...), every one's bytes the sha256 its
    record names; else None."""
    from dreamer.serve.store import Store, default_folder

    entry = Store(default_folder(), 0).read(key)
    if entry is None or not set(roles) <= set(entry.files):
        return None
    files = {}
    for role in roles:
        try:
            files[role] = entry.files[role].read_bytes()
        except OSError:
            return None
        if hashlib.sha256(files[role]).hexdigest() != entry.record["files"][role]["sha256"]:
            return None
    facts = entry.record
    return Rendered(files, facts["frames"], facts["gif_frames"], facts["width"], facts["height"], facts["seconds"],
                    facts["backend"], facts["precision"], socket.gethostname())


def clip_rendered(jobs: list[Job], options, settings: Settings) -> list:
    """The clips of `jobs` (one style) dreamed together into their renders' files (dreamer.gallery.clips; a render
    killed before resumes after the frames it kept, and says so): a ClipRendered or the one-line error that stopped
    it, for each (a clip that cannot be read fails its row only)."""
    activate()
    from tqdm import tqdm

    from dreamer.dreaming.clips import resuming
    from dreamer.gallery.clips import dreamed_files

    def on_resume(k, kept, total):
        tqdm.write(f"{jobs[k].label}: {resuming(kept, total)}", file=sys.stderr)

    try:
        made = dreamed_files([job.photo.path for job in jobs], jobs[0].style, options, settings.clip_options(),
                             ["gif" in job.roles(settings) for job in jobs], on_resume)
    except Exception as exc:  # one group's failure must not stop the gallery
        return [one_line(exc)] * len(jobs)
    return [one_line(result) if isinstance(result, Exception) else ClipRendered(**result, node=socket.gethostname())
            for result in made]


def render_options(settings):
    """The engine's RenderOptions for a gallery's settings."""
    from dreamer.gallery.settings import video_options
    from dreamer.options import GifOptions, RenderOptions

    return RenderOptions(size=settings.size, seed=settings.seed, batch=settings.batch,
                         gif=GifOptions(**settings.gif), video=video_options(settings))


class Serial:
    """Dreams the groups here, one after another, with a progress bar of each group's steps; `encoders` threads
    encode finished dreams meanwhile (0: each before the next dream)."""

    names_nodes = False  # all on this machine

    def __init__(self, encoders: int = ENCODERS):
        self.pool = ThreadPoolExecutor(encoders, thread_name_prefix="dreamer-encode") if encoders else None

    @staticmethod
    def photos_together(batch) -> int:
        return photos_together(batch)

    def run(self, groups, settings):
        from tqdm import tqdm

        options, waiting = render_options(settings), collections.deque()  # (jobs, [Rendered, line or Future])
        for jobs in groups:
            yield from _encoded_groups(waiting, MAX_WAITING)
            if jobs[0].photo.clip:  # clips only in its group (`groups`), encoded as they dream
                waiting.append((jobs, clip_rendered(jobs, options, settings)))
                continue
            style = jobs[0].style
            label = jobs[0].label if len(jobs) == 1 else f"{len(jobs)} photos · {style.name}"
            results = [None] * len(jobs)
            with tqdm(total=style.total_steps, desc=label, unit="step", position=1, leave=False,
                      dynamic_ncols=True, disable=None) as bar:
                for i, frames, seconds in dreams([(str(job.photo.path), None) for job in jobs], style, options,
                                                 on_step=_stepper(bar)):
                    results[i] = frames if isinstance(frames, str) else self._encode(frames, style, options, seconds)
            waiting.append((jobs, results))
        yield from _encoded_groups(waiting, 0)

    def _encode(self, *dream) -> Future | Rendered | str:
        """encoded(*dream) on the pool, or here without one."""
        return self.pool.submit(encoded, *dream) if self.pool else encoded(*dream)

    def close(self):
        """Stop encoding: what is queued is dropped, what runs ends on its own (a build stopped mid-way resumes)."""
        if self.pool:
            self.pool.shutdown(wait=False, cancel_futures=True)


def _encoded_groups(waiting: collections.deque, most: int):
    """Pop and yield (jobs, results) of the groups at the head of `waiting` whose renders are all encoded, after
    waiting until at most `most` renders of all are left to encode."""
    while True:
        left = [r for _, results in waiting for r in results if isinstance(r, Future) and not r.done()]
        if len(left) > most:
            wait(left, return_when=FIRST_COMPLETED)
            continue
        if not waiting or any(isinstance(r, Future) and not r.done() for r in waiting[0][1]):
            return
        jobs, results = waiting.popleft()
        yield jobs, [r.result() if isinstance(r, Future) else r for r in results]


def in_render_order(jobs: list[Job], settings: Settings) -> list[Job]:
    """Jobs grouped by network (each loads once), then by style (photos of one style can dream together)."""
    networks = [s.network for s in settings.styles]
    styles = [s.name for s in settings.styles]
    return sorted(jobs, key=lambda j: (networks.index(j.style.network), styles.index(j.style.name)))


def photos_together(batch) -> int:
    """How many photos of one style a build hands to the renderer at once: `batch`, or for 'auto' up to
    MAX_AUTO_BATCH on an accelerator and CPU_AUTO_BATCH on a CPU (the renderer splits them to fit)."""
    if batch != "auto":
        return batch
    activate()
    from dreamer.engine.batching import CPU_AUTO_BATCH, MAX_AUTO_BATCH, free_accelerator_bytes

    return CPU_AUTO_BATCH if free_accelerator_bytes() is None else MAX_AUTO_BATCH


def groups(jobs: list[Job], size: int, settings: Settings):
    """Jobs of one style (consecutive in `jobs`) that dream together, at most `size` at a time: its photos, and its
    clips whose frames are of one size (dreamer.gallery.clips.frame_size)."""
    from dreamer.gallery.clips import frame_size

    sizes = {}  # a clip's path -> its frame size, read once for all its styles
    for _, same_style in itertools.groupby(jobs, key=lambda job: job.style):
        kinds = {}  # "photos", or a clip's frame size
        for job in same_style:
            if job.photo.clip and job.photo.path not in sizes:
                sizes[job.photo.path] = frame_size(job.photo.path, settings.size, settings.clip_options())
            kinds.setdefault(sizes[job.photo.path] if job.photo.clip else "photos", []).append(job)
        for same in kinds.values():
            yield from (same[i:i + size] for i in range(0, len(same), size))


def _stepper(bar):
    def on_step(done, total, score):
        bar.set_postfix(score=f"{score:.3g}", refresh=False)
        bar.update(done - bar.n)  # the engine reports once per call: a frame's steps (TF), an octave's (JAX)
    return on_step


