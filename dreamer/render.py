"""One photo + one style -> one dreaming GIF (and a still): loads, dreams, encodes."""

import functools
import time
from dataclasses import dataclass, field
from pathlib import Path

import keras

from dreamer import objectives
from dreamer.animate import encode_gif, save_still
from dreamer.engine import Schedule, dream, zoom_dream
from dreamer.gradients import make_stepper
from dreamer.images import load_image, resize_to_long_side
from dreamer.networks import load_network
from dreamer.precision import resolve


@dataclass(frozen=True)
class GifOptions:
    """How frames become a GIF."""

    frame_ms: int = 120
    hold_first_ms: int = 1200
    hold_last_ms: int = 2000
    pingpong: bool = False
    palette: str = "auto"
    dither: bool = False


@dataclass(frozen=True)
class RenderOptions:
    """Everything about a render that is not the style: output size, seed, batching, GIF options."""

    size: int = 512
    seed: int = 0
    batch: int = 1
    zoom: float | None = None  # zoom into the centre by this factor before each frame (the tunnel)
    gif: GifOptions = field(default_factory=GifOptions)


@dataclass(frozen=True)
class RenderResult:
    gif: Path
    still: Path | None
    frames: int
    width: int
    height: int
    seconds: float
    backend: str
    precision: str


def schedule_of(style) -> Schedule:
    """The engine's schedule for a style."""
    return Schedule(octaves=style.octaves, octave_scale=style.octave_scale, steps=style.steps,
                    step_size=style.step_size, every=style.every, tile_size=style.tile_size,
                    keep_colors=style.keep_colors)


@functools.lru_cache(maxsize=8)
def _dreamer_for(network: str, precision: str, layer_items: tuple, channel_items: tuple):
    loaded = load_network(network, precision)
    objective = objectives.from_style_parts(dict(layer_items), dict(channel_items))
    extract = loaded.extractor(sorted(objective.layers))
    return extract, objective, make_stepper(extract, objective)


def prepare(style):
    """(extract, objective, stepper) for a style, built once per network, precision and objective."""
    return _dreamer_for(style.network, resolve(style.precision), tuple(sorted(style.layers.items())),
                        tuple(sorted(style.channels.items())))


def render(input_path, style, out_gif, still=None, options: RenderOptions = RenderOptions(), on_step=None):
    """Dream `input_path` with `style` into the GIF `out_gif` (and the still `still`, if given)."""
    started = time.perf_counter()
    image = resize_to_long_side(load_image(input_path), options.size)
    _, _, stepper = prepare(style)
    if options.zoom:
        frames = list(zoom_dream(stepper, image, schedule_of(style), options.zoom, seed=options.seed,
                                 batch=options.batch, on_step=on_step))
    else:
        frames = list(dream(stepper, image, schedule_of(style), seed=options.seed, batch=options.batch,
                            on_step=on_step))
    gif = options.gif
    info = encode_gif(frames, out_gif, frame_ms=gif.frame_ms, hold_first_ms=gif.hold_first_ms,
                      hold_last_ms=gif.hold_last_ms, pingpong=gif.pingpong, palette=gif.palette, dither=gif.dither)
    if still is not None:
        save_still(frames[-1], still)
    return RenderResult(gif=Path(out_gif), still=Path(still) if still else None, frames=len(frames),
                        width=info.width, height=info.height, seconds=time.perf_counter() - started,
                        backend=keras.backend.backend(), precision=resolve(style.precision))
