"""Clips out: timed frames (and a clip's sound) written as MP4 (H.264 + AAC), WebM (VP9 + Opus) or an animated GIF,
chosen by the file's suffix. Frames keep their times (a variable frame rate stays variable) and the last one lasts
until `end`, so the file lasts as long as the part of the source it was made from. Video and sound go through PyAV,
interleaved as the frames come, so memory does not grow with the clip; a GIF keeps its palette frames (a byte a
pixel) until the end, as Pillow writes them at once. Atomic: a temp file, then a rename. Videos carry Dreamer's
mark in their comment tag, a GIF in its comment. `write_clip` takes the frames from an iterable; a `ClipWriter` is
handed them one at a time, so that one thread can write several clips side by side.
"""

import contextlib
from fractions import Fraction
from pathlib import Path

import numpy as np

from dreamer.files.atomic import atomic_path
from dreamer.media.clips import AUDIO_RATE
from dreamer.media.marks import gif_comment

CLIP_FORMATS = (".mp4", ".webm", ".gif")
_TICK = Fraction(1, 1000)  # the frames' time base: milliseconds
_GIF_TICK_MS = 10  # a GIF stores centiseconds
# codec, its options, the sound's codec and bit rate, the muxer's options. No B-frames in H.264: MP4 keeps
# durations in decoding order, so with frames reordered a variable frame rate's durations and the end come out wrong.
_VIDEO = {
    ".mp4": ("libx264", {"crf": "20", "preset": "medium", "bf": "0"}, "aac", 160_000, {"movflags": "+faststart"}),
    ".webm": ("libvpx-vp9", {"crf": "32", "b": "0", "row-mt": "1", "deadline": "good", "cpu-used": "4"},
              "libopus", 128_000, {}),
}


def write_clip(path, frames, end, audio=(), meta=None) -> int:
    """Write `frames` ((seconds, uint8 H x W x 3), times rising, all one even size) to `path`; `end()` is called
    after the last frame for the time it lasts until; `audio` ((seconds, float32 (1 or 2 channels, n) samples at
    clips.AUDIO_RATE)) is cut at that end (a GIF has none). Returns the number of frames written."""
    with ClipWriter(path, audio, meta) as writer:
        for t, image in frames:
            writer.add(t, image)
        return writer.finish(end())


class ClipWriter:
    """A clip written to `path` as write_clip writes it, a frame at a time: `add(t, image)` for each, then
    `finish(end)`, the number of frames written. A context manager: a writer left unfinished leaves no file."""

    def __init__(self, path, audio=(), meta=None):
        path = Path(path)
        if path.suffix.lower() not in CLIP_FORMATS:
            raise ValueError(f"{path}: a dreamed clip is written as {', '.join(CLIP_FORMATS)}")
        self._stack = contextlib.ExitStack()
        tmp = self._stack.enter_context(atomic_path(path))
        comment = gif_comment(**(meta or {}))
        try:
            self._file = (_GifFile(tmp, comment) if path.suffix.lower() == ".gif"
                          else _VideoFile(tmp, path.suffix.lower(), audio, comment))
        except BaseException as exc:
            self._stack.__exit__(type(exc), exc, exc.__traceback__)
            raise
        self._stack.callback(self._file.close)
        self._finished = False

    def __enter__(self):
        return self

    def __exit__(self, kind, error, trace):
        if not self._finished:  # no rename: the temp file goes
            self._stack.__exit__(*((kind, error, trace) if kind else (_Unfinished, _Unfinished(), None)))

    def add(self, t: float, image: np.ndarray) -> None:
        self._file.add(t, image)

    def finish(self, end: float) -> int:
        count = self._file.finish(end)
        self._finished = True
        self._stack.close()  # the file closed, then renamed onto `path`
        return count


class _Unfinished(Exception):
    """A ClipWriter left before finish()."""


class _VideoFile:
    """An MP4 or WebM being written: the video, and the sound interleaved with it as the frames come."""

    def __init__(self, tmp: Path, suffix: str, audio, comment: str):
        import av

        self.codec, self.options, audio_codec, audio_rate, muxer = _VIDEO[suffix]
        # bitexact: no random container IDs or version tags, so that the same frames give the same bytes
        self.container = av.open(str(tmp), "w", format=suffix[1:], options={**muxer, "fflags": "+bitexact"})
        self.container.metadata["comment"] = comment
        self.sound = _Sound(self.container, audio, audio_codec, audio_rate)
        self.count, self.shown, self.video = 0, None, None  # shown: (pts, image) waiting for the next frame's time

    def add(self, t: float, image: np.ndarray) -> None:
        if self.shown is None:
            self.video = _Video(self.container, self.codec, self.options, image.shape)
            self.sound.start()
        else:
            self.video.add(*self.shown, round(t / _TICK) - self.shown[0])
        self.shown, self.count = (round(t / _TICK), image), self.count + 1
        self.sound.until(t)

    def finish(self, end: float) -> int:
        if self.shown is None:
            raise ValueError("no frames to write")
        self.video.add(*self.shown, max(1, round(end / _TICK) - self.shown[0]))
        self.video.close()
        self.sound.until(end, cut=True)
        self.sound.close()
        return self.count

    def close(self) -> None:
        self.container.close()


class _Video:
    """A video stream being encoded: frames with their durations, in milliseconds."""

    def __init__(self, container, codec: str, options: dict, shape):
        self.container, self.durations = container, {}  # pts -> duration of the frames in the encoder
        self.stream = container.add_stream(codec, options=options)
        self.stream.height, self.stream.width = shape[:2]
        self.stream.pix_fmt, self.stream.codec_context.time_base = "yuv420p", _TICK

    def add(self, pts: int, image: np.ndarray, duration: int) -> None:
        import av

        frame = av.VideoFrame.from_ndarray(image, format="rgb24")
        frame.pts, frame.time_base = pts, _TICK
        self.durations[pts] = duration
        self._mux(self.stream.encode(frame))

    def close(self) -> None:
        self._mux(self.stream.encode())

    def _mux(self, packets) -> None:
        for packet in packets:  # the encoder knows no durations: the last frame's would be lost
            packet.duration = self.durations.pop(packet.pts)
            self.container.mux(packet)


class _Sound:
    """The clip's sound, encoded as the frames go by (interleaved with them): `until(t)` takes in what starts
    before `t`; nothing for a clip without sound."""

    def __init__(self, container, audio, codec: str, bit_rate: int):
        self.container, self.codec, self.bit_rate = container, codec, bit_rate
        self.audio = iter(audio)
        self.pending, self.stream = next(self.audio, None), None

    def start(self) -> None:
        """Add the stream (after the video's, so that the video is the first stream)."""
        if self.pending is not None:
            self.stream = self.container.add_stream(self.codec, rate=AUDIO_RATE)
            self.stream.layout, self.stream.bit_rate = _layout(self.pending[1]), self.bit_rate

    def until(self, time: float, cut: bool = False) -> None:
        """Encode the samples that start before `time`; with `cut`, none after it."""
        import av

        while self.stream is not None and self.pending is not None and self.pending[0] < time:
            t, samples = self.pending
            if cut:
                samples = samples[:, :round((time - t) * AUDIO_RATE)]
            if samples.shape[1]:
                frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(samples), format="fltp",
                                                   layout=self.stream.layout.name)
                frame.sample_rate, frame.time_base, frame.pts = AUDIO_RATE, Fraction(1, AUDIO_RATE), round(
                    t * AUDIO_RATE)
                self.container.mux(self.stream.encode(frame))
            self.pending = next(self.audio, None)

    def close(self) -> None:
        if self.stream is not None:
            self.container.mux(self.stream.encode())


def _layout(samples: np.ndarray) -> str:
    """The channel layout of (1 or 2 channels, n) samples."""
    return "mono" if len(samples) == 1 else "stereo"


class _GifFile:
    """An animated GIF: each frame shown until the next one's time (rounded to the GIF's centiseconds without
    drift); frames that round to no time at all are left out. Pillow writes it at once, at the end."""

    def __init__(self, tmp: Path, comment: str):
        self.tmp, self.comment, self.images, self.starts = tmp, comment, [], []

    def add(self, t: float, image: np.ndarray) -> None:
        from PIL import Image

        start = round(t * 1000 / _GIF_TICK_MS)
        if not self.starts or start > self.starts[-1]:
            self.images.append(Image.fromarray(image).quantize(255, method=Image.Quantize.FASTOCTREE))
            self.starts.append(start)

    def finish(self, end: float) -> int:
        images, starts = self.images, self.starts
        if not images:
            raise ValueError("no frames to write")
        stops = [*starts[1:], max(starts[-1] + 1, round(end * 1000 / _GIF_TICK_MS))]
        durations = [(b - a) * _GIF_TICK_MS for a, b in zip(starts, stops)]
        images[0].save(self.tmp, "GIF", save_all=True, append_images=images[1:], duration=durations, loop=0,
                       comment=self.comment, disposal=1)
        return len(images)

    def close(self) -> None:
        pass
