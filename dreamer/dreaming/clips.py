"""Dreaming a clip coherently: the first frame dreams as a photo does; each next one starts from the detail dreamed
into the one before, moved along the optical flow of the source frames and kept where that flow is reliable
(dreamer.engine.coherence), then takes a few ascent steps at full size. Frames stream from the reader
(dreamer.media.clips) through the engine to the writer (dreamer.media.clip_writer): one frame in memory at a time.
"""

import glob
import time
from dataclasses import dataclass
from pathlib import Path

import keras

from dreamer.dreaming import dream_frames
from dreamer.dreaming.clip_checkpoints import Checkpoint
from dreamer.engine import ENGINE_VERSION
from dreamer.engine.coherence import carried
from dreamer.engine.precision import resolve
from dreamer.errors import DreamerError
from dreamer.files.atomic import temp_target
from dreamer.media.clip_writer import write_clip
from dreamer.media.clips import open_clip
from dreamer.options import RenderOptions
from dreamer.style import CLIP_CARRY, CLIP_STEPS_SHARE


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


def clip_steps(style) -> int:
    """The ascent steps a frame after the first takes: the style's, else CLIP_STEPS_SHARE of its steps."""
    return style.clip_steps or max(1, round(style.steps * CLIP_STEPS_SHARE))


def clip_carry(style) -> float:
    """How much of the moved detail a frame starts from: the style's, else CLIP_CARRY."""
    return CLIP_CARRY if style.clip_carry is None else style.clip_carry


def dream_clip(frames, style, options: RenderOptions = RenderOptions(), independent: bool = False, finished=()):
    """Yield (t, dreamed frame) for each (t, source frame) of `frames` (uint8 H x W x 3, one size). Each frame after
    the first starts from the one before, moved by the flow of the sources (`independent`: dreams each frame as a
    photo, the flicker a coherent dream is measured against). `finished`: the dreams of the first frames, from a
    render that stopped (dreamer.dreaming.clip_checkpoints), yielded as they are; dreaming goes on from the last."""
    if style.target_class:
        raise DreamerError(f"style {style.name!r} dreams toward a class from static: a clip needs a style with layers")
    following = style.replace(octaves=1, steps=clip_steps(style), every=clip_steps(style))
    finished = iter(finished)
    previous = None  # (source, dream) of the frame before
    for t, source in frames:
        dreamed = next(finished, None)
        if dreamed is None and (previous is None or independent):
            dreamed = _last(dream_frames(source, style, options))
        elif dreamed is None:
            start = carried(previous[1], previous[0], source, clip_carry(style))
            dreamed = _last(dream_frames(start, following, options))
        previous = (source, dreamed)
        yield t, dreamed


def _last(frames):
    """The last of the engine's frames: the finished dream."""
    for frame in frames:
        pass
    return frame


def render_clip(path, style, out, options: RenderOptions = RenderOptions(), seconds=None, fps=None,
                on_frame=None, independent: bool = False, on_resume=None) -> ClipResult:
    """Dream the clip at `path` (its part `seconds`, (A, B), resampled to `fps`, `options.size` on the long side)
    with `style` into `out` (.mp4, .webm or .gif), with the clip's sound; `on_frame(done, estimated total)` after
    each frame. Finished frames are kept in the cache (dreamer.dreaming.clip_checkpoints): a render killed midway
    resumes after them, `on_resume(kept, estimated total)` told, and writes the same bytes. InputError (one line,
    nothing written) for a clip that cannot be read."""
    started = time.perf_counter()
    clip = open_clip(path, options.size, seconds, fps)
    checkpoint = Checkpoint.of(path, style, options.size, options.seed, seconds, fps, independent,
                               clip_steps(style), clip_carry(style))
    if checkpoint.count and on_resume:
        on_resume(checkpoint.count, clip.frame_count)
    shape = []

    def dreamed():
        frames = dream_clip(clip.frames(), style, options, independent, checkpoint.frames())
        for done, (t, frame) in enumerate(frames, 1):
            if done > checkpoint.count:
                checkpoint.save(done - 1, frame)
            shape[:] = frame.shape[:2]
            yield t, frame
            if on_frame:
                on_frame(done, clip.frame_count)

    made = {"engine": ENGINE_VERSION, "backend": keras.backend.backend(), "precision": resolve(style.precision),
            "clip_steps": clip_steps(style), "clip_carry": clip_carry(style)}
    _remove_killed_writes(Path(out))
    count = write_clip(out, dreamed(), lambda: clip.end, clip.audio(), made)
    checkpoint.remove()
    return ClipResult(Path(out), count, shape[1], shape[0], clip.end, time.perf_counter() - started,
                      clip.has_audio and Path(out).suffix.lower() != ".gif")


def _remove_killed_writes(out: Path) -> None:
    """Delete the temp files that renders into `out` killed midway left beside it (dreamer.files.atomic)."""
    for path in out.parent.glob(f".{glob.escape(out.name)}.*"):
        if temp_target(path.name) == out.name:
            path.unlink(missing_ok=True)
