"""The dream loop: octaves, random rolls, tiled gradient ascent and frames. No file I/O.

Images are float32 RGB in [-1, 1]; frames come out as uint8 arrays at the input's size.
"""

import math
from dataclasses import dataclass

import numpy as np
from keras import ops

from dreamer.engine.objectives import evaluate
from dreamer.engine.octaves import octave_shapes
from dreamer.engine.steppers import fused
from dreamer.media.images import to_unit_range


@dataclass(frozen=True)
class Schedule:
    """The numbers of one dream; a Style carries them."""

    octaves: int
    octave_scale: float
    steps: int
    step_size: float
    every: int
    tile_size: int = 512
    keep_colors: bool = False
    lapnorm: bool = False  # Laplacian-pyramid gradient normalisation instead of one standard deviation

    @property
    def total_steps(self) -> int:
        return self.octaves * self.steps

    @property
    def frame_count(self) -> int:
        """The original, a frame every `every` steps, and the finished dream."""
        return math.ceil(self.total_steps / self.every) + 1


def _resize(image, shape):
    """Resize (H, W, C) or (B, H, W, C) images to `shape` (H, W)."""
    if tuple(image.shape[-3:-1]) == tuple(shape):
        return image
    return ops.image.resize(image, shape, interpolation="bilinear", antialias=True)


def _uint8(images):
    """[-1, 1] float images to uint8, on the device that holds them."""
    return ops.cast(ops.clip(ops.round((images + 1.0) * 127.5), 0, 255), "uint8")


def _octave_start(base, shape, previous):
    """An octave's original (`base` resized to `shape`) and its first image: that original plus the detail
    dreamed at the octave before (`previous` = its (image, original), or None at the first), resized."""
    base_octave = _resize(base, shape)
    if previous is None:
        return base_octave, base_octave
    image, original = previous
    return base_octave, base_octave + _resize(image - original, shape)


def _frames(base, kept, base_octave):
    """The uint8 frames (K, B, H, W, 3) of an octave's `kept` images (K, B, h, w, 3): the full-size original
    `base` plus the detail dreamed into each (the difference from the octave's original `base_octave`), upscaled."""
    count, batch, height, width = kept.shape[:4]
    detail = ops.reshape(kept - base_octave, (count * batch, height, width, 3))
    detail = ops.reshape(_resize(detail, tuple(base.shape[1:3])), (count, *base.shape))
    return _uint8(ops.clip(base + detail, -1.0, 1.0))


def _fetch_later(tensor):
    """Start copying `tensor` to the host now, so that reading it later waits for nothing queued after it
    (JAX arrays copy asynchronously; other backends' tensors are left as they are)."""
    start = getattr(tensor, "copy_to_host_async", None)
    if start is not None:
        start()
    return tensor


def to_uint8(image) -> np.ndarray:
    """[-1, 1] float image to a uint8 numpy array."""
    return ops.convert_to_numpy(_uint8(image))


def keep_colors(dreamed: np.ndarray, original: np.ndarray) -> np.ndarray:
    """The dream's luminance with the original's chroma (YCbCr), both uint8 RGB."""
    from PIL import Image

    y = Image.fromarray(dreamed).convert("YCbCr").split()[0]
    _, cb, cr = Image.fromarray(original).convert("YCbCr").split()
    return np.asarray(Image.merge("YCbCr", (y, cb, cr)).convert("RGB"))


def _chunks(first_step: int, steps: int, every: int, total: int) -> list[int]:
    """Split an octave's steps (global numbers first_step+1 ..) at the frame boundaries."""
    cuts = [n for n in range(first_step + 1, first_step + steps + 1) if n % every == 0 or n == total]
    if not cuts or cuts[-1] != first_step + steps:
        cuts.append(first_step + steps)
    return [b - a for a, b in zip([first_step] + cuts[:-1], cuts)]


def _rolls(rng, shape, count: int) -> np.ndarray:
    """`count` random (dy, dx) roll offsets for an image of `shape` (H, W), shape (count, 2)."""
    return np.stack([rng.integers(shape[0], size=count), rng.integers(shape[1], size=count)], axis=1)


def dream(stepper, image: np.ndarray, schedule: Schedule, seed: int = 0, batch: int = 1, on_step=None):
    """Dream `image` (uint8 H x W x 3) with a backend's `stepper`; yield `schedule.frame_count` uint8 frames.

    The first frame is the original, then one every `schedule.every` steps, the last the finished dream.
    Lower octaves are shown as the full-size original plus their upscaled detail, so the animation
    stays sharp. The steps between two frames go to the stepper in one call, with their random rolls (an
    octave's steps in one call, keeping the images its frames show, for a stepper that takes `whole_octaves`).
    `on_step(done, total, score)` is called after each call.
    """
    for frames in dream_batch(stepper, [image], schedule, [seed], batch, on_step):
        yield frames[0]


def _by_size(images: list) -> list[list[int]]:
    """The indices of `images` grouped by size, in the order sizes first appear."""
    groups = {}
    for i, image in enumerate(images):
        groups.setdefault(image.shape[:2], []).append(i)
    return list(groups.values())


def dream_batch(stepper, images: list, schedule: Schedule, seeds: list, batch: int = 1, on_step=None):
    """Dream several images together, their tiles going through the network in the same calls; yield a list
    of frames (one per image, in order) each time `dream` would yield one. Each image keeps its own seed,
    rolls and octaves, so its frames are the ones `dream` makes of it alone. Images of different sizes share
    network calls where the stepper pads them into one buffer (JAX's); TensorFlow's takes their steps in turn.

    The host reads a frame (and the score for `on_step`) only after the next steps are queued, and their
    copy to the host starts as soon as they are computed, so an accelerator does not wait for the host to
    fetch and hand out frames."""
    groups = _by_size(images)
    rngs = [np.random.default_rng(seeds[i]) for group in groups for i in group]
    group_of = [g for g, group in enumerate(groups) for _ in group]  # of each rng
    bases = [ops.convert_to_tensor(to_unit_range(np.stack([images[i] for i in group]))) for group in groups]
    shapes = [octave_shapes(*images[group[0]].shape[:2], schedule.octaves, schedule.octave_scale) for group in groups]
    every_shape = [shape for octaves in shapes for shape in octaves]
    start_octave, frames_of = fused(_octave_start, (1,)), fused(_frames)  # one program per shape, not per op
    yield list(images)
    previous = [None] * len(groups)  # per group (image, original) at the end of the last octave
    done = 0
    waiting = None  # (steps done, mean score or None, per group uint8 frames on the device, or None) of the last call

    def hand_out(steps_done, score, frames):
        if on_step:
            on_step(steps_done, schedule.total_steps, float(score))
        if frames is None:
            return
        frames = [ops.convert_to_numpy(group_frames) for group_frames in frames]
        for k in range(len(frames[0])):
            ordered = [None] * len(images)
            for group, group_frames in zip(groups, frames):
                for i, frame in zip(group, group_frames[k]):
                    ordered[i] = keep_colors(frame, images[i]) if schedule.keep_colors else frame
            yield ordered

    for octave in range(schedule.octaves):
        starts = [start_octave(base, octaves[octave], last) for base, octaves, last in zip(bases, shapes, previous)]
        base_octaves, current = [start[0] for start in starts], [start[1] for start in starts]
        chunks = _chunks(done, schedule.steps, schedule.every, schedule.total_steps)
        for counts in [chunks] if stepper.whole_octaves else [[count] for count in chunks]:
            shifts = np.stack([np.concatenate([_rolls(rng, shapes[g][octave], n) for n in counts])
                               for rng, g in zip(rngs, group_of)], axis=1)
            ends = done + np.cumsum(counts)  # each chunk ends at a frame or at the octave's end
            shows = [end - done for end in ends if end % schedule.every == 0 or end == schedule.total_steps]
            current, scores, kept = stepper.advance(current, shifts, schedule.step_size, schedule.tile_size, batch,
                                                    schedule.lapnorm, keep=shows, octaves=every_shape)
            frames = [_fetch_later(frames_of(*parts)) for parts in zip(bases, kept, base_octaves)] if shows else None
            done = int(ends[-1])
            if waiting:
                yield from hand_out(*waiting)
            waiting = (done, _fetch_later(ops.mean(scores)) if on_step else None, frames)
        previous = list(zip(current, base_octaves))
    if waiting:
        yield from hand_out(*waiting)


def zoom_into(image, factor: float):
    """Crop the centre 1/`factor` of `image` (H, W, 3) and scale it back to full size."""
    height, width = image.shape[0], image.shape[1]
    crop_h, crop_w = max(1, round(height / factor)), max(1, round(width / factor))
    top, left = (height - crop_h) // 2, (width - crop_w) // 2
    return _resize(image[top:top + crop_h, left:left + crop_w], (height, width))


def zoom_dream(stepper, image: np.ndarray, schedule: Schedule, factor: float, seed: int = 0, batch: int = 1,
               on_step=None):
    """The endless-tunnel animation: before each frame, zoom into the centre by `factor` and dream
    `schedule.every` steps at full size. Yields `schedule.frame_count` frames, the first the original."""
    rng = np.random.default_rng(seed)
    current = ops.convert_to_tensor(to_unit_range(image))
    height, width = image.shape[:2]
    yield image
    for done in range(0, schedule.total_steps, schedule.every):
        count = min(schedule.every, schedule.total_steps - done)
        shifts = _rolls(rng, (height, width), count)
        current, scores, _ = stepper.advance([zoom_into(current, factor)[None]], shifts[:, None],
                                             schedule.step_size, schedule.tile_size, batch, schedule.lapnorm)
        current = current[0][0]
        if on_step:
            on_step(done + count, schedule.total_steps, float(scores[0]))
        frame = to_uint8(current)
        yield keep_colors(frame, image) if schedule.keep_colors else frame


def objective_value(extract, objective, image: np.ndarray) -> float:
    """The objective of a whole uint8 image, in one pass (no tiles): what a dream should raise."""
    batch = ops.convert_to_tensor(to_unit_range(image[None]))
    return float(ops.sum(evaluate(objective, extract, batch)))
