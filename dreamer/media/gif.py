"""Animated GIFs of a dream (frames in, a looping GIF's bytes out) and the final dream as a still."""

import io
import shutil
import subprocess
import sys
from dataclasses import dataclass

import numpy as np
from PIL import Image

from dreamer.media.marks import gif_comment, still_exif
from dreamer.options import PALETTES, GifOptions

# What palette="auto" means. Measured with bench/bench_gif.py (30 frames of 512 px fading
# skimage's astronaut into a strongly recoloured, rippled version of it, no dithering):
#   per-frame FASTOCTREE palettes:          3.92 MB, mean PSNR 27.0 dB
#   per-frame FASTOCTREE, 128 colours:      3.14 MB, mean PSNR 25.7 dB (one-off run, to match sizes)
#   one shared MEDIANCUT + k-means palette: 2.27 MB, mean PSNR 28.6 dB
# The shared palette looks better at a smaller size, so it is the default.
AUTO_PALETTE = "shared"
# 255 colours leave a free index, which Pillow uses to make unchanged pixels transparent.
_COLOURS = 255
# Pixels drawn, evenly over all frames, to compute the shared palette (k-means is costly).
_SAMPLE_PIXELS = 1 << 14
_STILL_FORMATS = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".webp": "WEBP"}
# gifsicle's options after the input (`--lossy=N` follows when asked for); its result must keep the comment, the
# frames and their size (checked: gifsicle - -O3 --lossy=40, the GIF on its stdin, the result on its stdout).
GIFSICLE_OPTIONS = ("-O3",)


@dataclass(frozen=True)
class Gif:
    """An encoded GIF: its bytes, its frame count and size in pixels."""

    data: bytes
    frames: int
    width: int
    height: int


def gif_bytes(frames, options: GifOptions = GifOptions(), meta=None) -> Gif:
    """Encode `frames` (uint8 H x W x 3 arrays, all one size) as a GIF that loops forever.

    `options` (dreamer.options.GifOptions) give the timings (the first and last frames held; GIF stores
    centiseconds; ping-pong without showing the end frames twice in a row), the palette ("per-frame": an adaptive
    palette each, "shared": one from a sample of all frames, "auto": AUTO_PALETTE), dithering and gifsicle's
    --lossy (e.g. 40: about 15 % smaller, 37 dB from the lossless GIF). Frames that are equal after quantisation are
    merged into one with the summed duration. The GIF's comment marks it as
    Dreamer's, with `meta` (a dict: what made it). It is optimised with `gifsicle -O3` when gifsicle is on
    PATH; its result replaces Pillow's only if gifsicle succeeded and the result decodes with the same frames, size
    and comment, else the GIF stays as Pillow wrote it and one warning line (on stderr) says why.
    """
    palette = options.palette
    if palette not in PALETTES:
        raise ValueError(f"unknown palette {palette!r}; use one of {', '.join(PALETTES)}")
    frames = _checked(frames)
    height, width = frames[0].shape[:2]
    quantised = _quantise(frames, AUTO_PALETTE if palette == "auto" else palette, options.dither)
    images, times, previous = [], [], None
    for i, ms in timeline(len(frames), options):
        pixels = quantised[i].convert("RGB").tobytes()
        if pixels == previous:
            times[-1] += ms
        else:
            images.append(quantised[i])
            times.append(ms)
        previous = pixels

    comment, pillows = gif_comment(**(meta or {})), io.BytesIO()
    images[0].save(pillows, "GIF", save_all=True, append_images=images[1:], duration=times, loop=0, comment=comment)
    data = _gifsicle(pillows.getvalue(), options.lossy, (len(images), width, height), comment)
    return Gif(data, len(images), width, height)


def timeline(count, options: GifOptions = GifOptions()) -> list[tuple[int, int]]:
    """One loop of the animation of `count` frames as [(frame index, milliseconds)]: the first and last frames
    held, the others `options.frame_ms`; ping-pong plays back too, without showing the end frames twice in a row."""
    order = list(range(count))
    if options.pingpong:
        order += order[-2:0:-1]
    durations = [options.frame_ms] * count
    durations[-1] = options.hold_last_ms
    durations[0] = options.hold_first_ms
    return [(i, durations[i]) for i in order]


def still_bytes(frame, suffix=".jpg", quality=90) -> bytes:
    """One uint8 H x W x 3 frame as JPEG, PNG or WebP, chosen by a file's suffix `suffix`, marked as Dreamer's in
    its EXIF."""
    fmt = _STILL_FORMATS.get(suffix.lower())
    if fmt is None:
        raise ValueError(f"{suffix or 'no suffix'}: cannot tell the image format; use .jpg, .png or .webp")
    (frame,) = _checked([frame])
    options = {"PNG": {}, "JPEG": {"quality": quality, "optimize": True}}.get(fmt, {"quality": quality})
    encoded = io.BytesIO()
    Image.fromarray(frame).save(encoded, fmt, exif=still_exif(), **options)
    return encoded.getvalue()


def _checked(frames) -> list:
    """The frames as arrays; ValueError (one line) unless they are uint8 H x W x 3, all one size."""
    if len(frames) == 0:
        raise ValueError("no frames to encode")
    arrays = [np.asarray(f) for f in frames]
    first = arrays[0].shape
    for i, a in enumerate(arrays):
        if a.dtype != np.uint8 or a.ndim != 3 or a.shape[2] != 3:
            raise ValueError(f"frame {i} is {a.dtype} {a.shape}; expected uint8 H x W x 3")
        if a.shape != first:
            raise ValueError(
                f"frame {i} is {a.shape[1]}x{a.shape[0]} but frame 0 is {first[1]}x{first[0]};"
                " all frames must be the same size"
            )
    return arrays


def _quantise(frames, palette, dither) -> list:
    """Each frame as a "P" image: one shared palette, or an adaptive palette per frame."""
    mode = Image.Dither.FLOYDSTEINBERG if dither else Image.Dither.NONE
    images = [Image.fromarray(f) for f in frames]
    if palette == "shared":
        rng = np.random.default_rng(0)
        per_frame = -(-_SAMPLE_PIXELS // len(frames))
        pixels = [f.reshape(-1, 3) for f in frames]
        sample = np.concatenate([p[rng.integers(0, len(p), per_frame)] for p in pixels])[:, None]
        shared = Image.fromarray(sample).quantize(_COLOURS, method=Image.Quantize.MEDIANCUT, kmeans=1)
        return [im.quantize(palette=shared, dither=mode) for im in images]
    adaptive = [im.quantize(_COLOURS, method=Image.Quantize.FASTOCTREE) for im in images]
    if not dither:
        return adaptive
    return [im.quantize(palette=p, dither=mode) for im, p in zip(images, adaptive)]


def _gifsicle(gif: bytes, lossy: int, shape: tuple[int, int, int], comment: str) -> bytes:
    """`gif` optimised by gifsicle (GIFSICLE_OPTIONS, and --lossy=`lossy`) if it is installed. Its result is taken
    only if gifsicle succeeded and it decodes as `shape` (frames, width, height) with `comment`, the mark; otherwise
    `gif` comes back as it is and one line on stderr says why."""
    exe = shutil.which("gifsicle")
    if exe is None:
        return gif
    options = [*GIFSICLE_OPTIONS, *([f"--lossy={lossy}"] if lossy else [])]
    optimised, problem = _run_gifsicle([exe, "-", *options], gif)
    problem = problem or _wrong_gif(optimised, shape, comment)
    if problem is None:
        return optimised
    problem = " ".join(problem.split())
    print(f"warning: gifsicle {' '.join(options)} failed: {problem}; kept the GIF unoptimised", file=sys.stderr)
    return gif


def _run_gifsicle(command: list[str], gif: bytes) -> tuple[bytes, str | None]:
    """Run gifsicle on `gif` (its stdin): (its stdout, None) if it succeeded, else (b"", why not: its first line of
    errors)."""
    try:
        done = subprocess.run(command, input=gif, capture_output=True, timeout=300)
    except (OSError, subprocess.SubprocessError) as exc:
        return b"", f"could not run it ({exc})"
    if done.returncode == 0:
        return done.stdout, None
    said = done.stderr.decode("utf-8", "replace").strip().splitlines()
    return b"", f"exit {done.returncode}" + (f" ({said[0].strip()})" if said else "")


def _wrong_gif(gif: bytes, shape: tuple[int, int, int], comment: str) -> str | None:
    """What is wrong with gifsicle's result `gif`: None if it decodes as `shape` with `comment`."""
    try:
        found = decode_gif(io.BytesIO(gif))
        with Image.open(io.BytesIO(gif)) as image:
            kept = image.info.get("comment", b"").decode("utf-8", "replace")
    except Exception as exc:  # Pillow raises many types on bad data
        return f"its result does not decode as a GIF ({type(exc).__name__}: {exc})"
    if found != shape:
        return f"its result has {found[0]} frames of {found[1]}x{found[2]}, not {shape[0]} of {shape[1]}x{shape[2]}"
    if kept != comment:
        return "its result lost the GIF's comment (Dreamer's mark)"
    return None


def decode_gif(path) -> tuple[int, int, int]:
    """(frames, width, height) of a GIF (a path or a binary file), every frame decoded; raises (ValueError, or what
    Pillow raises) unless it is a whole GIF."""
    with Image.open(path) as gif:
        if gif.format != "GIF":
            raise ValueError(f"is {gif.format}, not a GIF")
        for i in range(gif.n_frames):  # a torn or garbled file fails here
            gif.seek(i)
            gif.load()
        return gif.n_frames, *gif.size
