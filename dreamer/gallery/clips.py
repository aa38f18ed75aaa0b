"""A gallery's clip rows: the source clip at the gallery size (its MP4, WebM and poster) and a style's dreamed clip
(MP4, WebM, its poster, and a GIF where the source is an animation: there a GIF stays small), as bytes.

Frames stream from the reader through the engine into the MP4 (dreamer.dreaming.clips); the WebM and GIF are
made from that MP4 afterwards, so memory does not grow with the clip. The sound goes into both videos. Written in
a temporary folder, read back as bytes: the site gets them through SiteFiles, as a photo's renders. Dreamed frames
are kept in the cache as `dreamer render`'s are (dreamer.dreaming.clip_checkpoints): a build killed midway through
a clip resumes after them.
"""

import contextlib
import tempfile
import time
from pathlib import Path

from dreamer.engine import ENGINE_VERSION
from dreamer.media.clip_writer import ClipWriter, write_clip
from dreamer.media.clips import open_clip
from dreamer.media.gif import still_bytes

_REST = float("inf")  # the end of a part [A, None]: the rest of the clip


def source_files(path, size: int, clip: dict) -> tuple[dict, dict]:
    """The clip at `path` for its row's first cell: ({"file": poster JPEG, "webm", "mp4"} bytes, {length, frames,
    audio}), its `clip` options (seconds, fps) applied, `size` on the long side. InputError (one line) if it cannot
    be read."""
    opened = open_clip(path, size, *_cut(clip))
    with tempfile.TemporaryDirectory(prefix="dreamer-clip-") as folder:
        encoding = _Encoding(opened, Path(folder), {"engine": ENGINE_VERSION, "source": True}, False)
        with encoding.writer:
            for t, frame in opened.frames():
                encoding.add(t, frame)
            files, counts = encoding.done()
    files["file"] = files.pop("still")
    return files, {"length": round(opened.end, 3), "frames": counts["frames"], "audio": opened.has_audio}


def dreamed_files(paths: list, style, options, clip: dict, gifs: list, on_resume=None) -> list:
    """The clips at `paths` dreamed together with `style` (dreamer.dreaming.clips.dream_into: a build killed midway
    resumes after the frames it kept, `on_resume(k, kept, estimated total)` told of clip k), each into a render's
    files: {files (bytes by role: still (the poster), webm, mp4, and gif where `gifs` says), frames, gif_frames,
    width, height, seconds, backend, precision, clip {length, frames, audio}}, or the exception that stopped it (a
    clip that cannot be read fails alone)."""
    from dreamer.dreaming.clips import dream_into, made_by, opened

    started = time.perf_counter()
    results, ready = [None] * len(paths), []  # ready: (k, the opened clip, its checkpoint)
    for k, path in enumerate(paths):
        try:
            ready.append((k, *opened(path, style, options, *_cut(clip))))
        except Exception as exc:  # a clip that cannot be read fails its row only (PyAV raises many types)
            results[k] = exc
    made = made_by(style)
    with tempfile.TemporaryDirectory(prefix="dreamer-clip-") as folder, contextlib.ExitStack() as writing:
        encodings = []
        for k, source, _ in ready:
            encodings.append(_Encoding(source, Path(folder) / str(k), made, gifs[k]))
            writing.enter_context(encodings[-1].writer)
        dream_into([(source, checkpoint, encoding.add) for (_, source, checkpoint), encoding in zip(ready, encodings)],
                   style, options, on_resume=on_resume and (lambda i, kept, total: on_resume(ready[i][0], kept, total)))
        encoded = [encoding.done() for encoding in encodings]
    seconds = (time.perf_counter() - started) / max(1, len(ready))
    for (k, source, checkpoint), (files, counts) in zip(ready, encoded):
        checkpoint.remove()
        results[k] = {"files": files, **counts, "seconds": seconds, "backend": made["backend"],
                      "precision": made["precision"],
                      "clip": {"length": round(source.end, 3), "frames": counts["frames"], "audio": source.has_audio}}
    return results


def frame_size(path, size: int, clip: dict) -> tuple[int, int] | None:
    """The (height, width) of the frames that the clip at `path` dreams at `size` with its `clip` options (its first
    frame read); None if it cannot be read."""
    try:
        _, first = next(open_clip(path, size, *_cut(clip)).frames())
    except Exception:  # a clip that cannot be read fails when it renders, on one line (PyAV raises many types)
        return None
    return first.shape[:2]


def _cut(clip: dict) -> tuple:
    """(the part, (A, B) seconds or None, and the frame rate or None) that a clip's `clip` options name (a part [A,
    None]: to the end)."""
    part = clip.get("seconds")
    return (part[0], _REST if part[1] is None else part[1]) if part else None, clip.get("fps") or None


class _Encoding:
    """A clip's files being made in `folder` (made here) as its frames come (`add(t, frame)`, of `opened`'s part):
    its MP4 with the sound, written as they come (`writer`, a ClipWriter), then at `done()` the WebM and the GIF (if
    `gif`) from it and the first frame as the poster: (bytes by role, {frames, gif_frames, width, height})."""

    def __init__(self, opened, folder: Path, made: dict, gif: bool):
        folder.mkdir(exist_ok=True)
        self.opened, self.folder, self.made, self.gif, self.first = opened, folder, made, gif, None
        self.writer = ClipWriter(folder / "clip.mp4", opened.audio(), made)

    def add(self, t: float, frame) -> None:
        if self.first is None:
            self.first = frame
        self.writer.add(t, frame)

    def done(self) -> tuple[dict, dict]:
        opened, folder, made = self.opened, self.folder, self.made
        count = self.writer.finish(opened.end)
        height, width = self.first.shape[:2]
        files = {"mp4": (folder / "clip.mp4").read_bytes(), "still": still_bytes(self.first)}
        again = open_clip(folder / "clip.mp4", max(width, height))  # the same size: no scaling
        files["webm"] = _rewritten(again, folder / "clip.webm", opened.end, opened.audio(), made)[1]
        gif_frames = count
        if self.gif:
            gif_frames, files["gif"] = _rewritten(again, folder / "clip.gif", opened.end, (), made)
        return files, {"frames": count, "gif_frames": gif_frames, "width": width, "height": height}


def _rewritten(opened, out: Path, end: float, audio, made: dict) -> tuple[int, bytes]:
    """The frames of the clip `opened` written to `out` (its format by the suffix), lasting until `end`: (frames,
    bytes)."""
    count = write_clip(out, opened.frames(), lambda: end, audio, made)
    return count, out.read_bytes()
