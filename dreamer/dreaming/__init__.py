"""Dreaming one photo (or several of one style) into frames and encoding them: a dreaming GIF, a still, videos.
Loads the network and the objective a style needs, dreams with the engine, encodes. Beside it: `clips` (a clip
dreamed frame after frame, coherently) and `export` (a style as a TensorFlow SavedModel). (The public API over
them: dreamer.api.)"""

import dataclasses
import functools
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import keras
import numpy as np

from dreamer.engine import ENGINE_VERSION, objectives
from dreamer.engine.batching import resolve_batch
from dreamer.engine.loop import Schedule, dream, dream_batch, zoom_dream
from dreamer.engine.octaves import octave_shapes
from dreamer.engine.precision import resolve
from dreamer.engine.steppers import make_stepper
from dreamer.engine.visualize import recipe_for, visualize
from dreamer.errors import DreamerError
from dreamer.files.atomic import write_bytes
from dreamer.media.gif import gif_bytes, still_bytes, timeline
from dreamer.media.images import input_image, load_image, noise_shape, resize_to_long_side
from dreamer.media.video import video_bytes
from dreamer.networks import class_names, load_network
from dreamer.options import RenderOptions


@dataclass(frozen=True)
class Made:
    """What a render's files show and what made them."""

    frames: int  # the engine's frames
    gif_frames: int  # the GIF's (equal frames merged, ping-pong played back)
    width: int
    height: int
    seconds: float
    backend: str
    precision: str


@dataclass(frozen=True)
class Encoded(Made):
    """A render's files in memory: their bytes by role ("gif", "still", "webm", "mp4-small", ...)."""

    files: dict


@dataclass(frozen=True)
class RenderResult(Made):
    """A render's files on disk: the GIF, the still (or None) and the videos by name ("webm", "mp4-small", ...)."""

    gif: Path
    still: Path | None
    videos: dict = field(default_factory=dict)


class Prepared(NamedTuple):
    """What the engine needs to dream a style: its network's extractor, the objective, the stepper (None for a
    class style: it renders with the visualisation recipe) and the schedule."""

    extract: object
    objective: object
    stepper: object
    schedule: Schedule


def schedule_of(style) -> Schedule:
    """The engine's schedule for a style: the style's fields of the same names."""
    return Schedule(**{f.name: getattr(style, f.name) for f in dataclasses.fields(Schedule)})


@functools.lru_cache(maxsize=8)
def _dreamer_for(network: str, precision: str, layer_items: tuple, channel_items: tuple, target_class: str,
                 guide: str, objective_text: str, painting: str = "", painting_weight: float = 1.0, size: int = 512):
    loaded = load_network(network, precision)
    layers = dict(layer_items)
    if objective_text:
        objective = objectives.parse(objective_text,
                                     classes=class_names(network) if "class_logit" in objective_text else None)
    elif target_class:
        objective = objectives.class_logit(target_class, classes=class_names(network))
    elif guide:
        guide_image = resize_to_long_side(load_image(guide), 512)
        objective = objectives.from_guide(guide_image, layers, loaded.extractor(sorted(layers)))
    else:
        objective = objectives.from_style_parts(layers, dict(channel_items))
    if painting:
        style_layers = objectives.VGG16_STYLE_LAYERS if network == "vgg16" else tuple(sorted(layers))
        image = resize_to_long_side(load_image(painting), size)
        objective = objective + painting_weight * objectives.style_image(image, style_layers,
                                                                         loaded.extractor(list(style_layers)))
    extract = loaded.extractor(sorted(objective.layers))
    return extract, objective, None if target_class else make_stepper(extract, objective)


def prepare(style, size: int = 512) -> Prepared:
    """Everything the engine needs to dream `style`, the one place a style becomes them; the network and objective
    built once per network, precision and objective (and for a style image, the render size its painting is scaled
    to)."""
    built = _dreamer_for(style.network, resolve(style.precision), tuple(sorted(style.layers.items())),
                         tuple(sorted(style.channels.items())), style.target_class, style.guide, style.objective,
                         style.style_image, float(style.style_weight), size if style.style_image else 0)
    return Prepared(*built, schedule_of(style))


CLASS_SIDE = 448  # the short side the visualisation recipe was measured at (NOTES: bananas at 448 px)


def _class_frames(image, static: bool, extract, objective, style, options, on_step):
    """Frames of a class dream (from `static`, or from the photo `image`). Smaller outputs are dreamed at
    CLASS_SIDE and scaled down: the recipe's crops (35-100 % of the side, resampled to 224 px) then show the
    network whole objects, where at 320 px they showed close-ups (banana peel rather than bananas)."""
    from PIL import Image

    height, width = image.shape[:2]
    scale = max(1.0, CLASS_SIDE / min(height, width))
    size = (round(height * scale), round(width * scale))
    photo = None if static else resize_to_long_side(image, max(size))
    recipe = recipe_for(style.steps, learning_rate=style.step_size, every=style.every, contrast=style.contrast)
    for frame in visualize(extract, objective, size, photo, recipe, options.seed, on_step):
        yield frame if scale == 1.0 else np.asarray(Image.fromarray(frame).resize((width, height), Image.LANCZOS))


def dream_frames(image, style, options: RenderOptions, on_step=None, static: bool = False):
    """The frames (uint8, `style.frame_steps` of them) of dreaming `image` (uint8 H x W x 3, at its render size;
    seeded static when `static`) with `style`, yielded as the engine makes them."""
    extract, objective, stepper, schedule = prepare(style, options.size)
    if style.target_class:
        return _class_frames(image, static, extract, objective, style, options, on_step)
    batch = resolve_batch(options.batch, stepper, *image.shape[:2], style.tile_size)
    if options.zoom:
        return zoom_dream(stepper, image, schedule, options.zoom, seed=options.seed,
                          batch=batch, on_step=on_step)
    return dream(stepper, image, schedule, seed=options.seed, batch=batch, on_step=on_step)


def _frames(input_name, style, options: RenderOptions, on_step):
    image = input_image(input_name, options.size, options.seed)
    return dream_frames(image, style, options, on_step, static=noise_shape(input_name, options.size) is not None)


def encode(frames, style, options: RenderOptions, seconds: float, still: str | None = ".jpg") -> Encoded:
    """`frames` as a render's files in memory: the GIF (its comment saying what made it), the videos of
    `options.video`, and the last frame as a still in the format of the suffix `still` (None: no still)."""
    made = {"engine": ENGINE_VERSION, "frames": len(frames),  # no time: same seed, same bytes
            "backend": keras.backend.backend(), "precision": resolve(style.precision)}
    encoded = gif_bytes(frames, options.gif, meta=made)
    shown = timeline(len(frames), options.gif)
    files = {"gif": encoded.data}
    for name, (fmt, long_side) in options.video.renditions().items():
        files[name] = video_bytes(frames, shown, fmt, long_side=long_side, meta=made).data
    if still is not None:
        files["still"] = still_bytes(frames[-1], still)
    return Encoded(made["frames"], encoded.frames, encoded.width, encoded.height, seconds, made["backend"],
                   made["precision"], files)


def save(frames, style, out_gif, still, options: RenderOptions, seconds: float) -> RenderResult:
    """Encode `frames` into `out_gif`, its videos beside it and the last frame into `still` (if given), each file
    written atomically."""
    encoded = encode(frames, style, options, seconds, None if still is None else Path(still).suffix)
    videos = {name: path for name, (path, _) in options.video.paths(out_gif).items()}
    for role, data in encoded.files.items():
        write_bytes({"gif": out_gif, "still": still, **videos}[role], data)
    facts = {f.name: getattr(encoded, f.name) for f in dataclasses.fields(Made)}
    return RenderResult(**facts, gif=Path(out_gif), still=Path(still) if still else None, videos=videos)


def render(input_name, style, out_gif, still=None, options: RenderOptions = RenderOptions(), on_step=None):
    """Dream `input_name` (a photo, or `noise[:WxH]`) with `style` into the GIF `out_gif` (and the still
    `still`, if given). A class style dreams toward its class with the visualisation recipe (from
    static with the spectrum decay, from a photo without); the others with the DeepDream engine."""
    started = time.perf_counter()
    frames = list(_frames(input_name, style, options, on_step))
    return save(frames, style, out_gif, still, options, time.perf_counter() - started)


def canvas(shape: tuple, stepper, schedule: Schedule) -> tuple:
    """What an image of `shape` (H, W) dreams on: its shape, or the stepper's canvas where the stepper pads the
    octaves of a render to one. Images of one canvas can dream together."""
    octaves = octave_shapes(*shape, schedule.octaves, schedule.octave_scale)
    return stepper.canvas(octaves, schedule.tile_size) or tuple(shape)


def _together(images: dict, stepper, schedule: Schedule) -> list[tuple[tuple, list]]:
    """(the images' canvas, and their keys) for the images that can dream together."""
    groups = {}
    for i, image in images.items():
        groups.setdefault(canvas(image.shape[:2], stepper, schedule), []).append(i)
    return list(groups.items())


def render_many(inputs, style, outputs, options: RenderOptions = RenderOptions(), on_step=None) -> list:
    """Render several inputs (photos, or `noise[:WxH]`) with one style into `outputs` [(gif, still)], dreaming as
    dream_many does. Returns a RenderResult, or the DreamerError or OSError that stopped it, per input."""
    results, images = {}, {}
    for i, name in enumerate(inputs):
        try:
            images[i] = (input_image(name, options.size, options.seed),
                         noise_shape(name, options.size) is not None)
        except DreamerError as exc:
            results[i] = exc
    for i, frames, seconds in dream_many(images, style, options, on_step):
        results[i] = frames if isinstance(frames, Exception) else _attempt(save, frames, style, *outputs[i],
                                                                           options, seconds)
    return [results[i] for i in range(len(inputs))]


def dream_many(images: dict, style, options: RenderOptions = RenderOptions(), on_step=None):
    """Dream several images with one style; `images` {key: (uint8 H x W x 3 at its render size, whether it is
    static)}. Yields (key, frames, seconds) as each dream ends, or (key, the DreamerError or OSError that stopped
    it, 0.0). Images of the same size (or, on an accelerator, of the same canvas) dream together, their tiles in
    the same network calls (`options.batch` tiles per call, and so at most that many images at once); class styles
    and zooms dream one by one."""
    if style.target_class or options.zoom or len(images) == 1:
        for key, (image, static) in images.items():
            started = time.perf_counter()
            try:
                frames = list(dream_frames(image, style, options, on_step, static=static))
            except (DreamerError, OSError) as exc:
                yield key, exc, 0.0
                continue
            yield key, frames, time.perf_counter() - started
        return
    _, _, stepper, schedule = prepare(style, options.size)
    for shape, same in _together({key: image for key, (image, _) in images.items()}, stepper, schedule):
        batch = resolve_batch(options.batch, stepper, *shape, schedule.tile_size)
        for group in (same[k:k + batch] for k in range(0, len(same), batch)):
            started = time.perf_counter()
            frames = list(dream_batch(stepper, [images[key][0] for key in group], schedule,
                                      [options.seed] * len(group), batch=batch, on_step=on_step))
            seconds = (time.perf_counter() - started) / len(group)
            for k, key in enumerate(group):
                yield key, [f[k] for f in frames], seconds


def _attempt(function, *args):
    """`function(*args)`, or the DreamerError or OSError (an output that cannot be written) it raised."""
    try:
        return function(*args)
    except (DreamerError, OSError) as exc:
        return exc
