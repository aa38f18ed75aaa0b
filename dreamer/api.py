"""Dreamer as a library: `dream()` yields a dream's frames as the engine makes them, `render()` encodes them;
`dream_clip()` and `render_clip()` do the same for a clip.

    from dreamer import dream, dream_clip, render, render_clip, styles, Style, DreamerError

    for frame in dream("photo.jpg", "vgg16-eyes", size=320):   # a path, bytes, an array or "noise:WxH"
        print(frame.step, "of", frame.total, frame.image.shape)  # the photo first (step 0), the dream last
    render("photo.jpg", "vgg16-eyes", "photo.gif", still="photo.jpg", size=320, steps=20)
    for t, frame in dream_clip("clip.mp4", "vgg16-eyes", size=320):  # a clip: (seconds, frame) as each is dreamed
        ...
    render_clip("clip.mp4", "vgg16-eyes", "dream.mp4", size=320)  # with its sound; resumes if killed midway

Keras and its backend load on the first dream, not on import. Bad input raises DreamerError (one line).
"""

import dataclasses
import time
from pathlib import Path

import numpy as np

from dreamer.errors import DreamerError, InputError
from dreamer.networks import all_styles, get_style
from dreamer.options import GifOptions, RenderOptions
from dreamer.style import Style

__all__ = ["DreamerError", "Frame", "Style", "dream", "dream_clip", "render", "render_clip", "styles"]


@dataclasses.dataclass(frozen=True)
class Frame:
    """One frame of a dream: the step of the dream it shows (0: the photo) out of `total`, and its pixels."""

    step: int
    total: int
    image: np.ndarray  # uint8, H x W x 3


def styles() -> dict[str, Style]:
    """Every style by name: the zoo's and those of the networks `dreamer train` saved."""
    return all_styles()


def dream(photo, style="vgg16-eyes", *, size: int = 512, seed: int = 0, batch="auto", on_step=None, **changes):
    """Yield the Frames of dreaming `photo` (a path, an image's bytes, a uint8 H x W x 3 array, or "noise:WxH")
    with `style` (a name from styles() or a Style; `changes` such as steps=20 or octaves=3 change it), the long side
    `size` pixels, as the engine makes them: stop reading and the dream stops. `on_step(done, total, score)` is
    called as steps finish."""
    style = get_style(style, **changes)
    image, static = _image(photo, size, seed)
    options = _options(size, seed, batch)
    steps = style.frame_steps
    for step, pixels in zip(steps, _dreaming().dream_frames(image, style, options, on_step, static=static)):
        yield Frame(step, steps[-1], pixels)


def render(photo, style, gif, *, still=None, size: int = 512, seed: int = 0, batch="auto", gif_options=None,
           video=None, on_step=None, **changes):
    """Dream `photo` (as dream() takes it) with `style` into the GIF file `gif` (the finished dream into `still`,
    if given; WebM / MP4 beside it with `video`, a dreamer.media.video.VideoOptions); returns what was written (a
    dreamer.dreaming.RenderResult)."""
    style = get_style(style, **changes)
    started = time.perf_counter()
    frames = [frame.image for frame in dream(photo, style, size=size, seed=seed, batch=batch, on_step=on_step)]
    dreaming = _dreaming()
    options = dataclasses.replace(_options(size, seed, batch), gif=gif_options or GifOptions(),
                                  **({"video": video} if video is not None else {}))
    return dreaming.save(frames, style, Path(gif), None if still is None else Path(still), options,
                       time.perf_counter() - started)


def dream_clip(clip, style="vgg16-eyes", *, size: int = 512, seconds=None, fps=None, seed: int = 0, **changes):
    """Yield (seconds, uint8 H x W x 3 frame) for each frame of the clip file `clip` (a video, an animated GIF or
    WebP) dreamed coherently with `style` (as dream() takes it), the long side `size`, as the frames are dreamed:
    its part `seconds` ((A, B)), resampled to `fps` if given. Memory does not grow with the clip."""
    style = get_style(style, **changes)
    clips = _dreaming(".clips")
    frames = clips.open_clip(_clip_path(clip), size, seconds, fps).frames()
    yield from clips.dream_clip(frames, style, _options(size, seed, "auto"))


def render_clip(clip, style, out, *, size: int = 512, seconds=None, fps=None, seed: int = 0, on_frame=None,
                **changes):
    """Dream the clip file `clip` as dream_clip() does into `out` (.mp4, .webm or .gif, with the clip's sound);
    `on_frame(done, estimated total)` after each frame. Killed midway, the same call resumes from the frames kept in
    the cache and writes the same bytes. Returns what was written (a dreamer.dreaming.clips.ClipResult)."""
    style = get_style(style, **changes)
    return _dreaming(".clips").render_clip(_clip_path(clip), style, Path(out), _options(size, seed, "auto"),
                                           seconds, fps, on_frame)


def _clip_path(clip) -> Path:
    if not isinstance(clip, (str, Path)):
        raise DreamerError(f"clip must be the path of a video or an animated GIF, not {type(clip).__name__}")
    return Path(clip)


def _image(photo, size: int, seed: int) -> tuple[np.ndarray, bool]:
    """(the uint8 image to dream at `size`, whether it is static) of what dream() takes."""
    from dreamer.media.images import input_image, noise_shape, resize_to_long_side

    if isinstance(photo, np.ndarray):
        if photo.dtype != np.uint8 or photo.ndim != 3 or photo.shape[2] != 3 or min(photo.shape[:2]) < 1:
            raise InputError("the array", f"is {photo.dtype} {photo.shape}; pass uint8 H x W x 3 (RGB)")
        return resize_to_long_side(photo, size), False
    if not isinstance(photo, (str, Path, bytes, bytearray, memoryview)):
        raise DreamerError(f"photo must be a path, bytes, an array or noise:WxH, not {type(photo).__name__}")
    static = isinstance(photo, str) and noise_shape(photo, size) is not None
    if not static and isinstance(photo, (str, Path)) and _is_video(photo):
        raise InputError(photo, "is a clip; dream it with dream_clip() or render_clip()")
    if isinstance(photo, (bytes, bytearray, memoryview)):
        from dreamer.media.images import load_image

        return resize_to_long_side(load_image(bytes(photo)), size), False
    return input_image(photo, size, seed), static


def _is_video(path) -> bool:
    """Whether `path` is a video (an animated GIF or WebP dreams as a photo too: its first frame)."""
    from dreamer.media.clips import ANIMATION_SUFFIXES, is_clip

    return is_clip(path) and Path(path).suffix.lower() not in ANIMATION_SUFFIXES


def _options(size: int, seed: int, batch) -> RenderOptions:
    return RenderOptions(size=size, seed=seed, batch=batch)


def _dreaming(part: str = ""):
    """dreamer.dreaming (or its module `part`, such as ".clips"), with Keras loaded on the chosen backend first."""
    import importlib

    from dreamer.engine.backends import activate

    activate()
    return importlib.import_module("dreamer.dreaming" + part)
