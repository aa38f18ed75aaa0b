"""Clips in: a video (MP4, MOV, MKV, WebM, by PyAV) or an animated GIF or WebP (by Pillow: PyAV's libwebp decodes no
animation) read as a stream of (seconds, uint8 RGB frame), one frame in memory at a time.

Times are the source's own (a variable frame rate is kept), counted from the first frame; phone rotation (the
stream's display matrix, PyAV's `frame.rotation`) is applied. `seconds` cuts a part, `fps` resamples it (each
output time shows the last source frame at or before it). Frames are scaled to `size` on the long side, both sides
even (the videos' yuv420p needs them). Bad input raises InputError: one line naming the file and the fix.
"""

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dreamer.errors import InputError

VIDEO_SUFFIXES = (".mp4", ".m4v", ".mov", ".mkv", ".webm")
ANIMATION_SUFFIXES = (".gif", ".webp")
MAX_SECONDS = 300  # of the part read: a longer clip needs --seconds
MAX_FPS = 120  # what a clip may be resampled to
MAX_FRAME_PIXELS = 40_000_000  # a source frame's (8K UHD is 33 million)
AUDIO_RATE = 48_000  # what the audio is resampled to: Opus's rate, and AAC's too
_FIX = "re-export it as MP4, WebM or an animated GIF"


def is_clip(path) -> bool:
    """Whether `path` is a clip rather than a photo: a video's suffix or header (ISO media `ftyp`, Matroska's EBML),
    or an animated GIF or WebP."""
    path = Path(path)
    if path.suffix.lower() in VIDEO_SUFFIXES:
        return True
    try:
        with open(path, "rb") as f:
            head = f.read(12)
    except OSError:
        return False
    if head[4:8] == b"ftyp" or head[:4] == b"\x1a\x45\xdf\xa3":
        return True
    return _animated(path)


def _animated(path: Path) -> bool:
    from PIL import Image

    try:
        with Image.open(path) as image:
            return image.format in ("GIF", "WEBP") and getattr(image, "n_frames", 1) > 1
    except Exception:  # not an image: Pillow raises many types
        return False


def parse_seconds(text: str) -> tuple[float, float]:
    """`A-B` (or `A-` for the rest) as (A, B) seconds, B infinite for the rest; ValueError (one line) if bad."""
    start, dash, end = text.partition("-")
    try:
        part = (float(start), float(end) if end.strip() else math.inf)
    except ValueError:
        part = None
    if not dash or part is None or not 0 <= part[0] < part[1] or math.isnan(part[0] + part[1]):
        raise ValueError("write the part as A-B in seconds, A before B, such as 2-7.5 (or 2- for the rest)")
    return part


@dataclass
class Clip:
    """A clip to read: `frames()` yields (seconds from the part's start, uint8 H x W x 3), then `end` is the part's
    length; `audio()` yields its sound over the same times. Made by open_clip, which checked it."""

    path: Path
    size: int
    start: float = 0.0  # the part, in seconds from the first frame
    stop: float = math.inf
    fps: float | None = None
    video: bool = True  # a video read by PyAV (else an animation, by Pillow)
    origin: float = 0.0  # the source's time of its first frame, in seconds
    has_audio: bool = False
    frame_count: int | None = None  # an estimate from the header, for a progress bar
    end: float | None = None  # the part's length, once frames() is done

    def frames(self):
        """(t, frame) for the part, t from 0; `end` is set when they are done."""
        source = _video_frames(self) if self.video else _animation_frames(self)
        shown, last = _part(source, self.start, self.stop, self.path)
        yield from (_resampled(shown, self.fps, last) if self.fps else shown)
        length = last[0]
        if length is None:
            raise InputError(self.path, f"has no frame from {self.start:g} s on; choose a part within the clip "
                                        "with --seconds")
        self.end = length

    def audio(self):
        """(t, float32 samples (1 or 2 channels, n) at AUDIO_RATE) of the sound from the part's start, as it is decoded
        (the end is the reader's to cut); nothing for a clip without sound."""
        if not self.has_audio:
            return
        import av

        with _opened(self.path) as container:
            stream = container.streams.audio[0]
            layout = "mono" if stream.codec_context.channels == 1 else "stereo"  # more: mixed down
            resampler = av.AudioResampler(format="fltp", layout=layout, rate=AUDIO_RATE)
            if self.start > 0:
                container.seek(round((self.origin + self.start) / stream.time_base), stream=stream)
            first, done = None, 0  # the first sample's time; samples since (resampled audio has no gaps)
            for frame in _decoded(container, stream, self.path):
                for out in resampler.resample(frame):
                    if first is None:
                        first = (frame.time or 0.0) - self.origin - self.start
                    samples = out.to_ndarray()
                    t = first + done / AUDIO_RATE
                    done += samples.shape[1]
                    skip = max(0, round(-t * AUDIO_RATE))
                    if skip < samples.shape[1]:
                        yield t + skip / AUDIO_RATE, samples[:, skip:]


def open_clip(path, size: int, seconds: tuple[float, float] | None = None, fps: float | None = None) -> Clip:
    """A Clip of `path`, checked from its header: a video or animation with pixels and a part within the
    budgets (MAX_FRAME_PIXELS a frame, MAX_SECONDS of clip). InputError names the file and the fix."""
    path = Path(path)
    start, stop = seconds or (0.0, math.inf)
    try:
        length = path.stat().st_size
    except FileNotFoundError:
        raise InputError(path, "file not found; check the path") from None
    except OSError as exc:
        raise InputError(path, f"cannot be read ({exc.strerror}); check its permissions") from None
    if path.is_dir():
        raise InputError(path, "is a folder, not a clip; pass a video file")
    if length == 0:
        raise InputError(path, f"is empty (0 bytes); {_FIX}")
    clip = Clip(path, size, start, stop, fps)
    duration = _probe_video(clip) if not _animated(path) else _probe_animation(clip)
    if duration is not None and start >= duration:
        raise InputError(path, f"lasts {duration:.2f} s: --seconds {start:g}- starts after its end")
    part = min(stop, duration if duration is not None else math.inf) - start
    if part > MAX_SECONDS:
        raise InputError(path, f"{part:.0f} s is over the {MAX_SECONDS}-s limit of a clip; dream a part with "
                               "--seconds A-B")
    if duration is not None and clip.frame_count:
        clip.frame_count = max(1, round(clip.frame_count * part / duration))
    if fps and math.isfinite(part):
        clip.frame_count = max(1, math.ceil(part * fps))
    return clip


def _probe_video(clip: Clip) -> float | None:
    """Check a video's header; fill in what `clip` needs; its duration in seconds if the header says."""
    import av

    with _opened(clip.path) as container:
        if container.format.name == "image2" or container.format.name.endswith("_pipe"):
            raise InputError(clip.path, f"is a still image ({container.format.name.removesuffix('_pipe')}), not a "
                                        "video; give it its image suffix (.jpg, .png) to dream it as a photo")
        if not container.streams.video:
            what = "only sound" if container.streams.audio else "no video stream"
            raise InputError(clip.path, f"has {what}; pass a video with pictures")
        stream = container.streams.video[0]
        width, height = stream.codec_context.width, stream.codec_context.height
        _check_pixels(clip.path, width, height)
        clip.has_audio = bool(container.streams.audio)
        clip.origin = float(stream.start_time * stream.time_base) if stream.start_time is not None else 0.0
        if stream.duration is not None:
            duration = float(stream.duration * stream.time_base)
        elif container.duration is not None:
            duration = container.duration / av.time_base
        else:
            duration = None
        rate = stream.average_rate or stream.guessed_rate
        clip.frame_count = stream.frames or (round(duration * rate) if duration and rate else None)
        return duration


def _probe_animation(clip: Clip) -> float:
    """Check an animated GIF or WebP's header; its duration in seconds."""
    from PIL import Image

    clip.video = False
    with Image.open(clip.path) as image:
        _check_pixels(clip.path, *image.size)
        clip.frame_count = image.n_frames
        total = 0
        for index in range(image.n_frames):
            image.seek(index)  # reads each frame's header and data; only the durations are kept
            total += _shown_ms(image.info.get("duration"))
    return total / 1000


def _shown_ms(duration) -> int:
    """How long a browser shows an animation's frame, in ms: 100 for a delay of 10 ms or less."""
    return int(duration) if duration and duration > 10 else 100


def _check_pixels(path: Path, width: int, height: int) -> None:
    if width * height > MAX_FRAME_PIXELS:
        raise InputError(path, f"frames of {width}x{height} are over the {MAX_FRAME_PIXELS:,}-pixel limit; "
                               "scale it down first")
    if min(width, height) < 1:
        raise InputError(path, f"has frames of {width}x{height}; {_FIX}")


class _opened:
    """av.open(path) as a context manager whose failures are InputErrors naming the file."""

    def __init__(self, path: Path):
        self.path = path

    def __enter__(self):
        import av

        try:
            self.container = av.open(str(self.path), metadata_errors="ignore")
        except av.FFmpegError as exc:
            raise InputError(self.path, f"not a video PyAV can read ({_said(exc)}); {_FIX}") from None
        return self.container

    def __exit__(self, *exc):
        self.container.close()


def _said(exc: Exception) -> str:
    """An FFmpeg error's own words, on one line."""
    return " ".join(str(getattr(exc, "strerror", None) or exc).split())


def _decoded(container, stream, path: Path, ends=None):
    """The frames of `stream`, decoded; truncated or damaged data raises InputError. `ends`, a list, gets the
    largest packet end (pts + duration, in seconds) as packets go by: where the stream stops."""
    import av

    try:
        for packet in container.demux(stream):
            if ends is not None and packet.pts is not None and packet.duration:
                end = float((packet.pts + packet.duration) * packet.time_base)
                ends[0] = max(ends[0], end)
            yield from packet.decode()
    except av.FFmpegError as exc:
        raise InputError(path, f"truncated or damaged ({_said(exc)}); {_FIX}") from None


def _video_frames(clip: Clip):
    """(source seconds from the first frame, RGB frame) of a video, from just before `clip.start`; at the end
    yields (end, None): the stream's end."""
    with _opened(clip.path) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        if clip.start > 0:
            container.seek(round((clip.origin + clip.start) / stream.time_base), stream=stream)
        ends, previous, step = [-math.inf], None, None
        for frame in _decoded(container, stream, clip.path, ends):
            t = frame.time - clip.origin if frame.time is not None else None
            if t is None:
                t = previous + (step or 1 / float(stream.guessed_rate or 25)) if previous is not None else 0.0
            if previous is not None and t > previous:
                step = t - previous
            previous = t
            yield t, _picture(frame, clip.size)
        if previous is None:
            yield 0.0, None
            return
        known = ends[0] - clip.origin  # else the last frame lasts as long as the one before it
        yield known if known > previous else previous + (step or 1 / float(stream.guessed_rate or 25)), None


def _picture(frame, size: int) -> np.ndarray:
    """A decoded video frame as uint8 RGB, upright (its rotation applied), `size` on the long side."""
    turns = round(frame.rotation / 90) % 4  # counterclockwise quarter turns, as ffmpeg shows it
    width, height = (frame.height, frame.width) if turns % 2 else (frame.width, frame.height)
    out_width, out_height = scaled(width, height, size)
    if turns % 2:
        out_width, out_height = out_height, out_width
    rgb = frame.reformat(width=out_width, height=out_height, format="rgb24", interpolation="AREA").to_ndarray()
    return np.ascontiguousarray(np.rot90(rgb, turns)) if turns else rgb


def scaled(width: int, height: int, size: int) -> tuple[int, int]:
    """(width, height) with the long side `size`, the aspect kept, both even and at least 2."""
    scale = size / max(width, height)
    return max(2, round(width * scale / 2) * 2), max(2, round(height * scale / 2) * 2)


def _animation_frames(clip: Clip):
    """(seconds, RGB frame) of an animated GIF or WebP, as a browser shows it; at the end (end, None)."""
    from PIL import Image

    with Image.open(clip.path) as image:
        t = 0.0
        try:
            for index in range(image.n_frames):
                image.seek(index)
                rgba = image.convert("RGBA")
                flat = Image.alpha_composite(Image.new("RGBA", rgba.size, "white"), rgba).convert("RGB")
                yield t, np.asarray(flat.resize(scaled(*flat.size, clip.size), Image.Resampling.LANCZOS))
                t += _shown_ms(image.info.get("duration")) / 1000
        except (OSError, ValueError, EOFError) as exc:
            raise InputError(clip.path, f"truncated or damaged ({_said(exc)}); {_FIX}") from None
    yield t, None


def _part(source, start: float, stop: float, path: Path):
    """The frames of `source` ((t, frame), then (end, None)) within [start, stop), t counted from `start`: the
    frame showing at `start` comes first, at 0 (as does a first frame later than `start`); frames that do not move
    time on are dropped. Returns the
    generator and a one-item list that gets the part's length once it is done."""
    last = [None]

    def frames():
        held, previous = None, -math.inf
        for t, frame in source:
            if frame is None:  # the end
                if held is not None and t > start:
                    yield 0.0, held
                    previous = start
                if previous > -math.inf:
                    last[0] = min(t, stop) - start
                return
            if t <= start:
                held = frame
                continue
            if held is not None:
                yield 0.0, held
                held, previous = None, start
            if t >= stop:
                last[0] = stop - start
                return
            if t - start > MAX_SECONDS:
                raise InputError(path, f"is over the {MAX_SECONDS}-s limit of a clip; dream a part with "
                                       "--seconds A-B")
            if t > previous:
                yield (t - start if previous > -math.inf else 0.0), frame  # the first at 0, whatever its time
                previous = t

    return frames(), last


def _resampled(frames, fps: float, last: list):
    """`frames` shown at `fps`: at each k / fps the last frame at or before it, up to the part's end."""
    shown, k = None, 0
    for t, frame in frames:
        while shown is not None and k / fps < t:
            yield k / fps, shown
            k += 1
        shown = frame
    while shown is not None and last[0] is not None and k / fps < last[0] - 1e-9:
        yield k / fps, shown
        k += 1


