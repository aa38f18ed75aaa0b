"""Writing a build's results into the site: a finished render's bytes and its manifest entry, the photos
resized for the pages (a clip's: its poster and videos at the gallery size). Every write goes through SiteFiles (atomic, recorded as Dreamer's)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from dreamer.engine import ENGINE_VERSION
from dreamer.errors import DreamerError, one_line
from dreamer.gallery.files import SiteFiles
from dreamer.gallery.keys import style_definition
from dreamer.gallery.settings import Settings
from dreamer.media.video import frame_times

if TYPE_CHECKING:
    from dreamer.gallery.execute import Rendered
    from dreamer.gallery.plan import Job, Photo


def record(job: Job, result: Rendered, settings: Settings, files: SiteFiles) -> None:
    """Write a finished render's files at its job's names (atomic, recorded as Dreamer's) and its manifest entry."""
    names = job.roles(settings)
    for role, data in result.files.items():
        files.write(names[role], data)
    files.manifest.renders[job.key] = render_entry(
        job, settings, frames=result.frames, gif_frames=result.gif_frames, width=result.width, height=result.height,
        seconds=round(result.seconds, 2), backend=result.backend, precision=result.precision, files=files,
        clip=getattr(result, "clip", None))  # a ClipRendered's


def prepare_photo(photo: Photo, settings: Settings, files: SiteFiles) -> None:
    """Write the photo resized to the gallery size as site/photos/<key>.jpg (a clip: its poster there and its
    videos beside it), unless it is there intact; an unusable photo gets `photo.error` (one line naming the file)."""
    names = [photo.file, *photo.videos.values()]
    if photo.error or (photo.key in files.manifest.photos and all(files.intact(name) for name in names)):
        return
    if photo.clip:
        from dreamer.gallery.clips import source_files

        try:
            made, clip = source_files(photo.path, settings.size, settings.clip_options())
        except Exception as exc:  # a clip that cannot be read fails its row only (PyAV raises many types)
            photo.error = one_line(exc)
            return
        for role, name in {"file": photo.file, **photo.videos}.items():
            files.write(name, made[role])
        files.manifest.photos[photo.key] = photo_entry(photo, files, clip)
        return
    from dreamer.files.atomic import write_bytes
    from dreamer.media.gif import still_bytes
    from dreamer.media.images import input_image

    try:
        image = input_image(photo.path, settings.size, settings.seed)
    except DreamerError as exc:
        photo.error = one_line(exc)
        return
    write_bytes(settings.output / photo.file, still_bytes(image))
    files.adopt(photo.file)
    files.manifest.photos[photo.key] = photo_entry(photo, files)


def photo_entry(photo: Photo, files: SiteFiles, clip: dict | None = None) -> dict:
    """The manifest's entry of a photo resized for the pages, recorded in `files` (a clip's with its videos and
    `clip`, its length and sound)."""
    from PIL import Image

    with Image.open(files.output / photo.file) as image:
        width, height = image.size
    entry = {"input": photo.name, "sha256": photo.sha256, "file": photo.file, "width": width, "height": height,
             "bytes": files.names[photo.file]["bytes"]}
    return {**entry, "videos": photo.videos, "clip": clip} if photo.clip else entry


def render_entry(job: Job, settings: Settings, *, frames, gif_frames, width, height, seconds, backend, precision,
                 files: SiteFiles, clip: dict | None = None) -> dict:
    """The manifest's entry of a render whose files are recorded in `files`. `steps` and `times` say, for each of
    the engine's frames, the dream's step it shows and when it shows in the videos ([start, end] seconds, on its
    first showing): what a slider needs to put every style's video at the same step. A clip's entry has `clip`
    (its length and sound) instead, and a GIF only where its job has one."""
    entry = {"input": job.photo.name, "input_sha256": job.photo.sha256, "style": job.style.name,
             "definition": style_definition(job.style), "options": settings.render_options(),
             "precision": precision, "backend": backend, "engine": ENGINE_VERSION, "frames": frames,
             "gif_frames": gif_frames, "seconds": seconds, "width": width, "height": height,
             "bytes": files.names[job.gif]["bytes"] if job.gif in files.names else None,
             "still_bytes": files.names[job.still]["bytes"], "gif": job.gif, "still": job.still,
             "videos": job.videos(settings)}
    if job.photo.clip:
        entry |= {"options": {**entry["options"], "clip": settings.clip_options()}, "clip": clip}
        if "gif" not in job.roles(settings):
            for field in ("gif", "bytes", "gif_frames"):
                del entry[field]
        return entry
    steps = job.style.frame_steps
    if entry["videos"] and len(steps) == frames:
        entry["steps"], entry["times"] = steps, _frame_times(frames, settings.gif)
    return entry


def _frame_times(frames: int, gif: dict) -> list[list[float]]:
    """[start, end] in seconds of each of `frames` frames' first showing in a video with the GIF's timings."""
    from dreamer.media.gif import timeline
    from dreamer.options import GifOptions

    durations = [ms for _, ms in timeline(frames, GifOptions(**gif))]
    bounds = frame_times([*durations, 0])  # and the end of the loop
    return [[round(bounds[i], 3), round(bounds[i + 1], 3)] for i in range(frames)]


