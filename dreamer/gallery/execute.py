"""Executing a build's renders: which go together and in what order, the render of one group as bytes
(`render_group`, the same code here and on a cluster's workers) and the serial executor.

An executor's `run(groups)` yields (jobs, results) as groups finish: a result is a Rendered (the files as
bytes and what made them) or a one-line error. It writes nothing into the site: dreamer.gallery.write does.
A render that `dreamer serve` finished and keeps in its store is taken from there instead (`served`).
"""

from __future__ import annotations

import hashlib
import socket
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from dreamer.engine.backends import activate
from dreamer.errors import one_line

if TYPE_CHECKING:
    from dreamer.gallery.plan import Job
    from dreamer.gallery.settings import Settings


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


def render_group(sources: list, style, options, on_step=None) -> list:
    """Render photos of one style together (dreamer.dreaming.render_many) in a temporary folder; a Rendered or the
    one-line error of each. `sources`: [(name, data)]: `data` the photo's bytes, or None to read `name` itself
    (a path on this machine, or noise:WxH). Errors name `name`, never the temporary copy."""
    activate()
    from dreamer import dreaming  # TensorFlow loads here, and only when something renders

    with tempfile.TemporaryDirectory(prefix="dreamer-render-") as tmp:
        inputs, copies = [], {}
        for i, (name, data) in enumerate(sources):
            if data is None:
                inputs.append(name)
                continue
            copy = Path(tmp) / f"in{i}" / Path(name).name
            copy.parent.mkdir()
            copy.write_bytes(data)
            inputs.append(copy)
            copies[str(copy)] = name
        outputs = [(Path(tmp) / f"out{i}.gif", Path(tmp) / f"out{i}.jpg") for i in range(len(sources))]
        try:
            results = dreaming.render_many(inputs, style, outputs, options, on_step=on_step)
        except Exception as exc:  # one render's failure must not stop the gallery
            results = [exc] * len(sources)
        return [_as_bytes(result, copies) for result in results]


def _as_bytes(result, copies: dict):
    if isinstance(result, Exception):
        message = one_line(result)
        for copy, name in copies.items():
            message = message.replace(copy, name)
        return message
    files = {"gif": result.gif.read_bytes(), "still": result.still.read_bytes()}
    files |= {role: path.read_bytes() for role, path in result.videos.items()}
    return Rendered(files, result.frames, result.gif_frames, result.width, result.height, result.seconds,
                    result.backend, result.precision, socket.gethostname())


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


def render_options(settings):
    """The engine's RenderOptions for a gallery's settings."""
    from dreamer import dreaming
    from dreamer.gallery.settings import video_options

    return dreaming.RenderOptions(size=settings.size, seed=settings.seed, batch=settings.batch,
                                  gif=dreaming.GifOptions(**settings.gif), video=video_options(settings))


class Serial:
    """Renders the groups here, one after another, with a progress bar of each group's steps."""

    names_nodes = False  # all on this machine

    @staticmethod
    def photos_together(batch) -> int:
        return photos_together(batch)

    def run(self, groups, settings):
        from tqdm import tqdm

        for jobs in groups:
            label = jobs[0].label if len(jobs) == 1 else f"{len(jobs)} photos · {jobs[0].style.name}"
            with tqdm(total=jobs[0].style.total_steps, desc=label, unit="step", position=1, leave=False,
                      dynamic_ncols=True, disable=None) as bar:
                results = render_group([(str(job.photo.path), None) for job in jobs], jobs[0].style,
                                       render_options(settings), on_step=_stepper(bar))
            yield jobs, results

    def close(self):
        pass


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


def groups(jobs: list[Job], size: int):
    """Consecutive jobs of the same style, at most `size` at a time."""
    group = []
    for job in jobs:
        if group and (len(group) == size or job.style != group[0].style):
            yield group
            group = []
        group.append(job)
    if group:
        yield group


def _stepper(bar):
    def on_step(done, total, score):
        bar.set_postfix(score=f"{score:.3g}", refresh=False)
        bar.update(done - bar.n)  # the engine reports once per call: a frame's steps (TF), an octave's (JAX)
    return on_step


