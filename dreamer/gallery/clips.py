"""A gallery's clip rows: the source clip at the gallery size (its MP4, WebM and poster) and a style's dreamed clip
(MP4, WebM, its poster, and a GIF where the source is an animation: there a GIF stays small), as bytes.

Frames stream from the reader through the engine into the MP4 (dreamer.dreaming.clips); the WebM and GIF are
made from that MP4 afterwards, so memory does not grow with the clip. The sound goes into both videos. Written in
a temporary folder, read back as bytes: the site gets them through SiteFiles, as a photo's renders.
"""

import tempfile
import time
from pathlib import Path

from dreamer.engine import ENGINE_VERSION
from dreamer.media.clip_writer import write_clip
from dreamer.media.clips import open_clip
from dreamer.media.gif import still_bytes

_REST = float("inf")  # the end of a part [A, None]: the rest of the clip


def source_files(path, size: int, clip: dict) -> tuple[dict, dict]:
    """The clip at `path` for its row's first cell: ({"file": poster JPEG, "webm", "mp4"} bytes, {length, frames,
    audio}), its `clip` options (seconds, fps) applied, `size` on the long side. InputError (one line) if it cannot
    be read."""
    opened = _open(path, size, clip)
    with tempfile.TemporaryDirectory(prefix="dreamer-clip-") as folder:
        files, counts = _encoded(opened, opened.frames(), Path(folder), {"engine": ENGINE_VERSION, "source": True},
                                 False)
    files["file"] = files.pop("still")
    return files, {"length": round(opened.end, 3), "frames": counts["frames"], "audio": opened.has_audio}


def dreamed_files(path, style, options, clip: dict, gif: bool) -> dict:
    """The clip at `path` dreamed with `style` (dreamer.dreaming.clips.dream_clip) into a render's files: {files
    (bytes by role: still (the poster), webm, mp4, and gif if `gif`), frames, gif_frames, width, height, seconds,
    backend, precision, clip {length, frames, audio}}. InputError (one line) for a clip that cannot be read."""
    import keras

    from dreamer.dreaming.clips import clip_carry, clip_steps, dream_clip
    from dreamer.engine.precision import resolve

    started = time.perf_counter()
    opened = _open(path, options.size, clip)
    made = {"engine": ENGINE_VERSION, "backend": keras.backend.backend(), "precision": resolve(style.precision),
            "clip_steps": clip_steps(style), "clip_carry": clip_carry(style)}
    with tempfile.TemporaryDirectory(prefix="dreamer-clip-") as folder:
        files, counts = _encoded(opened, dream_clip(opened.frames(), style, options), Path(folder), made, gif)
    return {"files": files, **counts,
            "seconds": time.perf_counter() - started, "backend": made["backend"], "precision": made["precision"],
            "clip": {"length": round(opened.end, 3), "frames": counts["frames"], "audio": opened.has_audio}}


def _open(path, size: int, clip: dict):
    part = clip.get("seconds")
    return open_clip(path, size, (part[0], _REST if part[1] is None else part[1]) if part else None,
                     clip.get("fps") or None)


def _encoded(opened, frames, folder: Path, made: dict, gif: bool) -> tuple[dict, dict]:
    """`frames` ((t, frame) of `opened`'s part) as the MP4 (with the sound), then the WebM and the GIF (if `gif`)
    from it, and the first frame as the poster: (bytes by role, {frames, gif_frames, width, height})."""
    first = []

    def noted():
        for t, frame in frames:
            if not first:
                first.append(frame)
            yield t, frame

    mp4 = folder / "clip.mp4"
    count = write_clip(mp4, noted(), lambda: opened.end, opened.audio(), made)
    height, width = first[0].shape[:2]
    files = {"mp4": mp4.read_bytes(), "still": still_bytes(first[0])}
    again = open_clip(mp4, max(width, height))  # the same size: no scaling
    files["webm"] = _rewritten(again, folder / "clip.webm", opened.end, opened.audio(), made)[1]
    gif_frames = count
    if gif:
        gif_frames, files["gif"] = _rewritten(again, folder / "clip.gif", opened.end, (), made)
    return files, {"frames": count, "gif_frames": gif_frames, "width": width, "height": height}


def _rewritten(opened, out: Path, end: float, audio, made: dict) -> tuple[int, bytes]:
    """The frames of the clip `opened` written to `out` (its format by the suffix), lasting until `end`: (frames,
    bytes)."""
    count = write_clip(out, opened.frames(), lambda: end, audio, made)
    return count, out.read_bytes()
