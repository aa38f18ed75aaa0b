"""Dreaming a clip coherently: the first frame dreams as a photo does; each next one starts from the detail dreamed
into the one before, moved along the optical flow of the source frames and kept where that flow is reliable
(dreamer.engine.coherence), then takes a few ascent steps at full size. Frames stream from the reader
(dreamer.media.clips) through the engine to the writer (dreamer.media.clip_writer): one frame in memory at a time.
Several clips of one style dream together (dream_clips: frame i of each in one batch, as photos dream together),
each streaming to its own writer (dream_into).
"""

import contextlib
import glob
import time
from dataclasses import dataclass
from pathlib import Path

import keras

from dreamer.dreaming import dream_many
from dreamer.dreaming.clip_checkpoints import Checkpoint
from dreamer.engine import ENGINE_VERSION
from dreamer.engine.coherence import carried
from dreamer.engine.precision import resolve
from dreamer.errors import DreamerError
from dreamer.files.atomic import temp_target
from dreamer.media.clip_writer import ClipWriter
from dreamer.media.clips import open_clip
from dreamer.options import RenderOptions
from dreamer.style import clip_carry, clip_steps


@dataclass(frozen=True)
class ClipResult:
    """What render_clip wrote: the file, its frames, size, length in seconds, and how long it took."""

    path: Path
    frames: int
    width: int
    height: int
    length: float
    seconds: float
    audio: bool


def made_by(style) -> dict:
    """What made a dreamed clip, as its files' mark says (dreamer.media.marks)."""
    return {"engine": ENGINE_VERSION, "backend": keras.backend.backend(), "precision": resolve(style.precision),
            "clip_steps": clip_steps(style), "clip_carry": clip_carry(style)}


def dream_clip(frames, style, options: RenderOptions = RenderOptions(), independent: bool = False, finished=()):
    """Yield (t, dreamed frame) for each (t, source frame) of `frames` (uint8 H x W x 3, one size). Each frame after
    the first starts from the one before, moved by the flow of the sources (`independent`: dreams each frame as a
    photo, the flicker a coherent dream is measured against). `finished`: the dreams of the first frames, from a
    render that stopped (dreamer.dreaming.clip_checkpoints), yielded as they are; dreaming goes on from the last."""
    for _, t, dreamed in dream_clips([(frames, finished)], style, options, independent):
        yield t, dreamed


def dream_clips(clips: list, style, options: RenderOptions = RenderOptions(), independent: bool = False):
    """Dream several clips with one style together, each as dream_clip dreams it alone: `clips` [(frames,
    finished)] as dream_clip takes them. Frame i of every clip dreams in the same calls (dreamer.dreaming.dream_many:
    those of one size in one batch), the first frames as photos, the next ones each from its own carried start; a
    clip that ends leaves the batch. Yields (k, t, dreamed frame): frame i of each clip k still going, in the order
    of `clips`, then frame i + 1."""
    if style.target_class:
        raise DreamerError(f"style {style.name!r} dreams toward a class from static: a clip needs a style with layers")
    following = style.replace(octaves=1, steps=clip_steps(style), every=clip_steps(style))
    going = {k: (iter(frames), iter(finished)) for k, (frames, finished) in enumerate(clips)}
    previous = {}  # k -> (source, dream) of its frame before
    while going:
        sources, dreamed = {}, {}  # k -> (t, source frame), its dream
        for k, (frames, finished) in list(going.items()):
            shown = next(frames, None)
            if shown is None:
                del going[k]
                continue
            sources[k] = shown
            kept = next(finished, None)
            if kept is not None:
                dreamed[k] = kept
        photos = {k: (source, False) for k, (_, source) in sources.items()
                  if k not in dreamed and (k not in previous or independent)}
        starts = {k: (carried(previous[k][1], previous[k][0], source, clip_carry(style)), False)
                  for k, (_, source) in sources.items() if k not in dreamed and k not in photos}
        for images, dreaming in ((photos, style), (starts, following)):
            for k, frames, _ in dream_many(images, dreaming, options):
                if isinstance(frames, Exception):
                    raise frames
                dreamed[k] = frames[-1]  # the finished dream
        for k, (t, source) in sources.items():
            previous[k] = (source, dreamed[k])
            yield k, t, dreamed[k]


def opened(path, style, options: RenderOptions, seconds=None, fps=None, independent: bool = False):
    """(the clip at `path` opened to dream (dreamer.media.clips.open_clip: its part `seconds`, (A, B), resampled to
    `fps`, `options.size` on the long side), the Checkpoint its render keeps its dreamed frames in)."""
    clip = open_clip(path, options.size, seconds, fps)
    return clip, Checkpoint.of(path, style, options.size, options.seed, seconds, fps, independent, clip_steps(style),
                               clip_carry(style))


def dream_into(clips: list, style, options: RenderOptions, independent: bool = False, on_resume=None) -> None:
    """Dream the opened clips [(clip, checkpoint, add)] together (dream_clips), each from the frames its checkpoint
    kept on (`on_resume(k, kept, estimated total)` told of clip k), each frame dreamed kept there, and hand each
    clip's frames to its `add(t, frame)` (its writer: a dreamer.media.clip_writer.ClipWriter's) as they come."""
    for k, (clip, checkpoint, _) in enumerate(clips):
        if checkpoint.count and on_resume:
            on_resume(k, checkpoint.count, clip.frame_count)
    dreamed = dream_clips([(clip.frames(), checkpoint.frames()) for clip, checkpoint, _ in clips], style, options,
                          independent)
    done = [0] * len(clips)
    for k, t, frame in dreamed:
        _, checkpoint, add = clips[k]
        if done[k] >= checkpoint.count:
            checkpoint.save(done[k], frame)
        done[k] += 1
        add(t, frame)


def resuming(kept: int, total: int | None) -> str:
    """What a render that goes on after `kept` frames (of an estimated `total`) says."""
    return f"resuming at frame {kept + 1} of {max(total or 0, kept + 1)}"


def render_clip(path, style, out, options: RenderOptions = RenderOptions(), seconds=None, fps=None,
                on_frame=None, independent: bool = False, on_resume=None) -> ClipResult:
    """Dream the clip at `path` (its part `seconds`, (A, B), resampled to `fps`, `options.size` on the long side)
    with `style` into `out` (.mp4, .webm or .gif), with the clip's sound; `on_frame(done, estimated total)` after
    each frame. Finished frames are kept in the cache (dream_into): a render killed midway resumes after them,
    `on_resume(kept, estimated total)` told, and writes the same bytes. InputError (one line, nothing written) for a
    clip that cannot be read."""
    (result,) = render_clips([path], style, [out], options, seconds, fps, on_frame, independent,
                             on_resume and (lambda k, kept, total: on_resume(kept, total)))
    return result


def render_clips(paths: list, style, outs: list, options: RenderOptions = RenderOptions(), seconds=None, fps=None,
                 on_frame=None, independent: bool = False, on_resume=None) -> list[ClipResult]:
    """render_clip for several clips with one style, dreamed together (dream_clips: frame i of those of one size in
    one batch), each into its `outs[k]`: the same bytes as each rendered alone. `on_frame(done, estimated total)`
    counts the frames of all; `on_resume(k, kept, estimated total)` for clip k resuming. Every clip is opened before
    anything is dreamed: one that cannot be read stops them all (InputError, nothing written)."""
    started = time.perf_counter()
    clips = [opened(path, style, options, seconds, fps, independent) for path in paths]
    total = sum(clip.frame_count or 0 for clip, _ in clips) or None
    shapes, done = [None] * len(clips), [0]

    def adder(k, writer):
        def add(t, frame):
            writer.add(t, frame)
            shapes[k], done[0] = frame.shape[:2], done[0] + 1
            if on_frame:
                on_frame(done[0], total)
        return add

    with contextlib.ExitStack() as writing:
        writers = []
        for out, (clip, _) in zip(outs, clips):
            _remove_killed_writes(Path(out))
            writers.append(writing.enter_context(ClipWriter(out, clip.audio(), made_by(style))))
        dream_into([(clip, checkpoint, adder(k, writer)) for k, ((clip, checkpoint), writer)
                    in enumerate(zip(clips, writers))], style, options, independent, on_resume)
        counts = [writer.finish(clip.end) for writer, (clip, _) in zip(writers, clips)]
    seconds_taken = time.perf_counter() - started
    results = []
    for out, (clip, checkpoint), count, shape in zip(outs, clips, counts, shapes):
        checkpoint.remove()
        results.append(ClipResult(Path(out), count, shape[1], shape[0], clip.end, seconds_taken,
                                  clip.has_audio and Path(out).suffix.lower() != ".gif"))
    return results


def _remove_killed_writes(out: Path) -> None:
    """Delete the temp files that renders into `out` killed midway left beside it (dreamer.files.atomic)."""
    for path in out.parent.glob(f".{glob.escape(out.name)}.*"):
        if temp_target(path.name) == out.name:
            path.unlink(missing_ok=True)
