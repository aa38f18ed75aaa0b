"""MP4 (H.264) and WebM (VP9) of a dream's frames, with the GIF's timings, by imageio-ffmpeg's own ffmpeg.

Video has one frame rate, the GIF a duration per frame: each frame is repeated for its duration in ticks
of the largest common step of all durations (25 frames a second for 120, 1200 and 2000 ms), no finer than
MIN_TICK_MS. Repeated frames cost the encoders almost nothing. yuv420p needs even sides: an odd last row or
column is dropped. The file's comment tag carries Dreamer's mark, as a GIF's comment does; the same frames
give the same bytes. ffmpeg writes into a file in memory (Linux's memfd; elsewhere a temporary file), read back as
bytes: an MP4's index goes at the front once the rest is written, so ffmpeg needs a file it can seek, not a pipe.
"""

import contextlib
import math
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dreamer.media.marks import gif_comment

MIN_TICK_MS = 20  # 50 frames a second at most
SMALL_CRF_STEP = 4  # a smaller rendition is seen smaller: a coarser quantiser (crf) for it
FORMATS = ("webm", "mp4")  # in the order a page offers them: the smaller first
# H.264 for every browser (yuv420p, the index at the front for playback before the download ends); VP9 smaller.
_CODECS = {
    "mp4": ("libx264", ["-crf", "26", "-preset", "slow", "-profile:v", "high", "-movflags", "+faststart"]),
    "webm": ("libvpx-vp9", ["-crf", "38", "-b:v", "0", "-deadline", "good", "-cpu-used", "2", "-row-mt", "1"]),
}


@dataclass(frozen=True)
class VideoOptions:
    """Which videos a render writes beside its GIF: `formats` (of FORMATS), each also at `small` px on the long
    side when `small` is set (the index grid's rendition on phones; at full size if the render is smaller)."""

    formats: tuple = ()
    small: int = 0

    def renditions(self) -> dict[str, tuple[str, int | None]]:
        """{name: (format, long side or None)} of the videos, named "webm", "mp4", "webm-small", "mp4-small"."""
        videos = {fmt: (fmt, None) for fmt in self.formats}
        if self.small:
            videos |= {f"{fmt}-small": (fmt, self.small) for fmt in self.formats}
        return videos

    def paths(self, gif) -> dict[str, tuple[Path, int | None]]:
        """{name: (path, long side or None)} of the videos beside `gif` (x.gif: x.webm, x-small.webm, ...)."""
        gif = Path(gif)
        return {name: (gif.with_name(f"{gif.stem}{name.removeprefix(fmt)}.{fmt}"), side)
                for name, (fmt, side) in self.renditions().items()}


@dataclass(frozen=True)
class Video:
    """An encoded video: its bytes, its size in pixels, its frame rate and length."""

    data: bytes
    width: int
    height: int
    fps: float
    seconds: float


def tick_ms(durations) -> int:
    """The frame period that shows every duration (ms) as whole frames: their gcd, at least MIN_TICK_MS."""
    return max(MIN_TICK_MS, math.gcd(*(int(d) for d in durations)))


def frame_times(durations) -> list[float]:
    """When each shown frame starts in the video, in seconds, for shown durations `durations` (ms)."""
    tick = tick_ms(durations)
    starts, t = [], 0
    for d in durations:
        starts.append(t * tick / 1000)
        t += max(1, round(d / tick))
    return starts


def video_bytes(frames, shown, fmt, long_side=None, meta=None) -> Video:
    """Encode `frames` (uint8 H x W x 3) as an MP4 or a WebM (`fmt`, "mp4" or "webm"): `shown` is the GIF's
    [(frame index, milliseconds)] in play order (dreamer.media.gif.timeline). `long_side` scales the frames down
    first (a smaller rendition, encoded SMALL_CRF_STEP coarser)."""
    import imageio_ffmpeg
    from PIL import Image

    if fmt not in _CODECS:
        raise ValueError(f"{fmt}: a video is mp4 or webm")
    height, width = frames[0].shape[:2]
    if long_side and long_side < max(height, width):
        scale = long_side / max(height, width)
        size = (max(2, round(width * scale)), max(2, round(height * scale)))
        frames = [np.asarray(Image.fromarray(f).resize(size, Image.LANCZOS)) for f in frames]
        height, width = frames[0].shape[:2]
    even = (width // 2 * 2, height // 2 * 2)
    tick = tick_ms([ms for _, ms in shown])
    codec, params = _CODECS[fmt]
    if long_side:
        crf = params.index("-crf") + 1
        params = [*params[:crf], str(int(params[crf]) + SMALL_CRF_STEP), *params[crf + 1:]]
    # bitexact: no random container IDs or version tags, so that the same frames give the same bytes
    params = [*params, "-fflags", "+bitexact", "-metadata", f"comment={gif_comment(**(meta or {}))}", "-f", fmt]
    with _memory_file() as (file, name):
        writer = imageio_ffmpeg.write_frames(name, even, fps=1000 / tick, codec=codec, quality=None,
                                             macro_block_size=2, ffmpeg_log_level="error", output_params=params)
        writer.send(None)
        ticks = 0
        for index, ms in shown:
            frame = np.ascontiguousarray(frames[index][:even[1], :even[0]])
            for _ in range(max(1, round(ms / tick))):
                writer.send(frame)
                ticks += 1
        writer.close()
        file.seek(0)
        data = file.read()
    return Video(data, even[0], even[1], 1000 / tick, ticks * tick / 1000)


@contextlib.contextmanager
def _memory_file():
    """(a file open for reading, the name ffmpeg writes it by): a memfd where the system has one (ffmpeg opens it
    through /proc), else a temporary file."""
    if hasattr(os, "memfd_create") and os.path.isdir(f"/proc/{os.getpid()}/fd"):
        with os.fdopen(os.memfd_create("dreamer-video"), "rb") as file:
            yield file, f"/proc/{os.getpid()}/fd/{file.fileno()}"
        return
    with tempfile.NamedTemporaryFile(prefix="dreamer-", suffix=".video") as file:
        yield file, file.name
