"""Planning a build: the photos, every (photo, style) job and what it will do (render, reuse, skip), the
files to delete. Reads only the inputs' bytes and the site's manifest (never TensorFlow); writes nothing.
A lost, garbled or version-1 manifest is rebuilt here from the files on disk, in memory."""

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from dreamer.files.safety import Inputs, UnsafeWrite
from dreamer.gallery import recover
from dreamer.gallery.execute import Rendered, served
from dreamer.gallery.files import MANIFEST, PHOTOS, RENDERS, STATE, SiteFiles
from dreamer.files.digest import file_sha256
from dreamer.gallery.keys import photo_key, render_key
from dreamer.gallery.manifest import CLIP_VIDEOS, Manifest, photo_files
from dreamer.gallery.settings import ConfigError, Settings, video_options
from dreamer.gallery.site import slug
from dreamer.gallery.write import photo_entry, render_entry
from dreamer.media.clips import ANIMATION_SUFFIXES, VIDEO_SUFFIXES, is_clip
from dreamer.media.marks import read_mark
from dreamer.style import Style

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".gif", ".webp", ".tif", ".tiff", ".bmp"}
INPUT_SUFFIXES = IMAGE_SUFFIXES | set(VIDEO_SUFFIXES)


@dataclass
class Photo:
    """One input file. `key` names its resized copy in site/photos; `error` is set if it is unusable. `clip`:
    "video" or "animation" for a clip (its row dreams it frame after frame), "" for a photo."""

    name: str
    path: Path
    sha256: str | None
    key: str | None
    error: str | None = None
    clip: str = ""

    @property
    def file(self) -> str:
        """The resized photo, or a clip's poster (its first frame)."""
        return f"{PHOTOS}/{self.key}.jpg"

    @property
    def videos(self) -> dict[str, str]:
        """A clip's videos at the gallery size by format ("webm", "mp4"); none for a photo."""
        return {fmt: photo_files(self.key)[fmt] for fmt in CLIP_VIDEOS} if self.clip else {}

    @property
    def slug(self) -> str:
        return slug(self.name)


@dataclass
class Job:
    """One (photo, style) pair. `action` is what the plan says, `status` what happened."""

    photo: Photo
    style: Style
    key: str | None
    action: str  # "render", "reuse", or "skip" (not selected by --only, nothing rendered yet)
    status: str = "pending"  # then "rendered", "reused", "failed" or "skipped"
    message: str = ""
    served: Rendered | None = None  # to reuse from `dreamer serve`'s store (execute.served): written, not rendered

    @property
    def gif(self) -> str:
        return f"{RENDERS}/{self.key}.gif"

    @property
    def still(self) -> str:
        return f"{RENDERS}/{self.key}.jpg"

    def videos(self, settings: Settings) -> dict[str, str]:
        """name ("webm", "mp4-small", ...) -> site path of the videos beside the GIF (a clip's: its CLIP_VIDEOS)."""
        if self.photo.clip:
            return {fmt: f"{RENDERS}/{self.key}.{fmt}" for fmt in CLIP_VIDEOS}
        return {name: str(path) for name, (path, _) in video_options(settings).paths(self.gif).items()}

    def roles(self, settings: Settings) -> dict[str, str]:
        """Every file of the render by its role ("gif", "still", "webm", "mp4-small", ...) -> site path. A clip's
        still is its poster; it has a GIF only where its source is an animation (a GIF stays small there)."""
        gif = {"gif": self.gif} if self.photo.clip in ("", "animation") else {}
        return {**gif, "still": self.still, **self.videos(settings)}

    def files(self, settings: Settings) -> list[str]:
        """Every file of the render: GIF, still, videos."""
        return list(self.roles(settings).values())

    @property
    def label(self) -> str:
        return f"{self.photo.name} · {self.style.name}"


@dataclass
class Plan:
    """What a build will do: every photo, every (photo, style) job, and the files to delete."""

    settings: Settings
    manifest: Manifest
    photos: list[Photo]
    jobs: list[Job]
    files: SiteFiles  # the site's files that are Dreamer's
    wanted: list[str]  # every file the site needs, relative to it
    stale: list[str]  # Dreamer's files the site no longer needs
    notes: list[str] = field(default_factory=list)  # warnings for the user, one line each

    def __post_init__(self):
        self._index = {(j.photo.name, j.style.name): j for j in self.jobs}

    def job(self, photo: Photo, style: Style) -> Job:
        return self._index[(photo.name, style.name)]


def list_inputs(folder: Path) -> list[Path]:
    """The image and video files in `folder` (not hidden, by extension), sorted by name, relative to the
    working directory where they are under it (error messages name them so)."""
    if not folder.is_dir():
        raise ConfigError(f"inputs: {folder} is not a folder; create it and put photos in it")
    files = [p for p in folder.iterdir()
             if p.suffix.lower() in INPUT_SUFFIXES and not p.name.startswith(".") and p.is_file()]
    cwd = Path.cwd()
    return [p.relative_to(cwd) if p.is_relative_to(cwd) else p
            for p in sorted(files, key=lambda p: (p.name.casefold(), p.name))]


def make_plan(settings: Settings, force: bool = False, only=()) -> Plan:
    """Decide every job from the inputs' hashes, the manifest and the files on disk; writes no file.
    A lost or corrupt manifest (or a version-1 one) is rebuilt from the files on disk, in memory."""
    output = settings.output
    manifest = Manifest.load(output / MANIFEST)
    photos = []
    for path in list_inputs(settings.inputs):
        try:
            sha = file_sha256(path)
        except OSError as exc:
            photos.append(Photo(path.name, path, None, None, f"{path}: cannot be read ({exc.strerror})"))
            continue
        clip = _clip_kind(path)
        photos.append(Photo(path.name, path, sha, photo_key(sha, settings.size, settings.clip_options() if clip
                                                            else None), clip=clip))
    for name in settings.static:  # static is made from its name and the seed: hash those
        sha = hashlib.sha256(f"{name} seed {settings.seed}".encode()).hexdigest()
        photos.append(Photo(name, Path(name), sha, photo_key(sha, settings.size)))
    only = set(only or ())
    names = {s.name for s in settings.styles} | {p.name for p in photos} | {p.path.stem for p in photos}
    for name in sorted(only - names):
        raise ConfigError(f"--only {name!r} matches no style or input; styles: "
                          f"{', '.join(s.name for s in settings.styles)}; inputs: "
                          f"{', '.join(p.name for p in photos) or 'none'}")

    from dreamer.gallery import site

    files = SiteFiles(output, manifest, Inputs(_read_files(settings, photos)), site.static_sources(settings))
    options = settings.render_options()
    clip_options = {**options, "clip": settings.clip_options()}
    jobs = [Job(photo, style, render_key(photo.sha256, style, clip_options if photo.clip else options)
                if photo.sha256 and not _classless(photo, style) else None, "")
            for photo in photos for style in settings.styles]
    wanted = _wanted(settings, photos, jobs)
    recovered = _recover(files, settings, photos, jobs, wanted)
    files.settle_claims(wanted)
    for job in jobs:
        if _classless(job.photo, job.style):
            job.action, job.message = "skip", f"{job.label}: a class style dreams no clip (a clip needs layers)"
            continue
        cached = job.key is not None and _rendered(files, job, settings)
        if job.key is not None and not (cached or force):
            job.served = served(job.key, job.roles(settings))
            cached = job.served is not None
        selected = not only or bool({job.style.name, job.photo.name, job.photo.path.stem} & only)
        job.action = "render" if selected and (force or not cached) else "reuse" if cached else "skip"

    files.let_go_changed(wanted)
    stale = files.stale(wanted)
    files.check(wanted, stale)
    notes = recovered + files.notes
    return Plan(settings, manifest, photos, jobs, files, wanted, stale, notes)


def _classless(photo: Photo, style: Style) -> bool:
    """Whether `style` cannot dream `photo`: a clip, and a class style (it dreams toward a class, from static)."""
    return bool(photo.clip and style.target_class)


def _clip_kind(path: Path) -> str:
    """"video" or "animation" for a clip (a video's suffix or header, an animated GIF or WebP), else ""."""
    if not is_clip(path):
        return ""
    return "animation" if path.suffix.lower() in ANIMATION_SUFFIXES else "video"


def _read_files(settings: Settings, photos: list[Photo]) -> list[Path]:
    """Every file a build reads: photos, guide and style images, the config file, the templates. None may be
    written."""
    paths = [p.path for p in photos] + [Path(s.guide) for s in settings.styles if s.guide]
    paths += [Path(s.style_image) for s in settings.styles if s.style_image]
    if settings.source != "settings":
        paths.append(Path(settings.source))
    if settings.templates is not None:
        paths += [f for f in settings.templates.rglob("*") if f.is_file()]
    return paths


def _wanted(settings: Settings, photos: list[Photo], jobs: list[Job]) -> list[str]:
    """Every file the site needs (relative to it), the manifest aside."""
    from dreamer.gallery import site

    renders = [name for job in jobs if job.key for name in job.files(settings)]
    originals = [name for p in photos if p.key for name in (p.file, *p.videos.values())]
    return [*renders, *originals, *site.site_names(settings, [p.name for p in photos])]


def _recover(files: SiteFiles, settings: Settings, photos: list[Photo], jobs: list[Job], wanted) -> list[str]:
    """Rebuild a version-1, lost or corrupt manifest, or the entries dropped from a damaged one, from the files
    on disk (in memory); the warning, if any."""
    manifest, output = files.manifest, files.output
    if manifest.found == "legacy":
        recover.adopt_legacy(files, wanted)
        return []
    lost = manifest.found != "ok"
    if not (lost or manifest.problems) or not output.is_dir() or not any(f.name != STATE for f in output.iterdir()):
        return []
    recover.adopt_marked(files, wanted)
    for job in jobs:
        found = None
        if job.key and job.key not in manifest.renders and not job.photo.clip:  # a clip renders again
            found = recover.on_disk(files, job.gif, job.still, job.videos(settings).values())
        if found and found["mark"].get("frames"):
            mark = found["mark"]
            manifest.renders[job.key] = render_entry(job, settings, frames=mark["frames"], seconds=None,
                                                     backend=mark.get("backend"), precision=mark.get("precision"),
                                                     **{k: found[k] for k in ("gif_frames", "width", "height")},
                                                     files=files)
    for photo in photos:
        if photo.key and photo.key not in manifest.photos and files.owns(photo.file) and not photo.clip:
            manifest.photos[photo.key] = photo_entry(photo, files)
    if not lost:
        return []
    return [f"warning: {output / MANIFEST} was {manifest.found}: rebuilt from the files on disk "
            f"({len(manifest.renders)} complete renders recognised)"]


def _rendered(files: SiteFiles, job: Job, settings: Settings) -> bool:
    """Whether `job`'s render is in the site, all its files with the bytes the manifest recorded."""
    if job.key not in files.manifest.renders:
        return False
    changed = [name for name in job.files(settings) if not files.intact(name)]
    for name in changed:
        if (files.output / name).exists():
            files.notes.append(f"warning: {files.output / name} changed since Dreamer wrote it (its sha256 is not "
                               "the manifest's): rendering it again")
    return not changed


def check_folder(output: Path) -> None:
    """Refuse, before anything is written, an output folder that is neither new, empty, nor a Dreamer site
    (one with Dreamer's state folder, manifest or index page)."""
    if not output.is_dir() or not any(output.iterdir()) or (output / STATE).is_dir():
        return
    if Manifest.load(output / MANIFEST).found in ("ok", "legacy") or read_mark(output / "index.html") is not None:
        return
    raise UnsafeWrite(f"{output}: not empty and not a Dreamer site (no Dreamer manifest.json); set output in the "
                      "gallery's settings to a new or empty folder, or empty this one")


