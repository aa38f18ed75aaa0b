"""The gallery build: plan (render / reuse / delete), prepare the photos, render one job at a time.

Planning reads only the inputs' bytes and the site's manifest, so a build with nothing to render
never imports TensorFlow. A build holds the output folder's lock, and writes, replaces and deletes only
the files its manifest records as Dreamer's (dreamer.site_files). Each job ends with a status instead of
raising; the manifest and the pages are rewritten after every finished render, so an interrupted build
leaves a valid site and the next one resumes.
"""

import hashlib
import re
import sys
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from dreamer import ENGINE_VERSION, recover
from dreamer.backends import activate
from dreamer.cache import Manifest, file_digest, photo_key, render_key, style_definition
from dreamer.errors import DreamerError
from dreamer.lock import holding
from dreamer.marks import read_mark
from dreamer.safety import Inputs, UnsafeWrite
from dreamer.settings import ConfigError, Settings
from dreamer.site_files import MANIFEST, PHOTOS, RENDERS, STATE, SiteFiles
from dreamer.video import VideoOptions, frame_times
from dreamer.zoo import Style

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".gif", ".webp", ".tif", ".tiff", ".bmp"}


def slug(text: str) -> str:
    """A safe file-name stem for `text`: ASCII words of its stem and a short hash of all of it,
    e.g. 'b-3f2a1c' for `<b>&"'.png`."""
    ascii_text = unicodedata.normalize("NFKD", Path(text).stem).encode("ascii", "ignore").decode()
    words = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")[:40].strip("-")
    tag = hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()[:6]
    return f"{words}-{tag}" if words else tag


def one_line(exc: BaseException) -> str:
    """An exception as one line: DreamerErrors as they are, others with their type."""
    text = str(exc) if isinstance(exc, DreamerError) else f"{type(exc).__name__}: {exc}"
    return " ".join(text.split())


@dataclass
class Photo:
    """One input file. `key` names its resized copy in site/photos; `error` is set if it is unusable."""

    name: str
    path: Path
    sha256: str | None
    key: str | None
    error: str | None = None

    @property
    def file(self) -> str:
        return f"{PHOTOS}/{self.key}.jpg"

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

    @property
    def gif(self) -> str:
        return f"{RENDERS}/{self.key}.gif"

    @property
    def still(self) -> str:
        return f"{RENDERS}/{self.key}.jpg"

    def videos(self, settings: Settings) -> dict[str, str]:
        """name ("webm", "mp4-small", ...) -> site path of the videos beside the GIF."""
        return {name: str(path) for name, (path, _) in video_options(settings).paths(self.gif).items()}

    def files(self, settings: Settings) -> list[str]:
        """Every file of the render: GIF, still, videos."""
        return [self.gif, self.still, *self.videos(settings).values()]

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


@dataclass
class Summary:
    """Counts of job statuses (for a dry run: what would happen), the failures, the site's size."""

    rendered: int = 0
    reused: int = 0
    failed: int = 0
    skipped: int = 0
    deleted: int = 0
    site_bytes: int = 0
    failures: list[str] = field(default_factory=list)
    dry_run: bool = False
    jobs: list[Job] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.failed == 0

    def line(self) -> str:
        if self.dry_run:
            return (f"dry run: would render {self.rendered}, reuse {self.reused}, skip {self.skipped}, "
                    f"delete {self.deleted} file(s)")
        parts = [f"rendered {self.rendered}", f"reused {self.reused}", f"failed {self.failed}"]
        if self.skipped:
            parts.append(f"skipped {self.skipped}")
        return ", ".join(parts) + f"; site {self.site_bytes / 1e6:.1f} MB"


def video_options(settings: Settings) -> VideoOptions:
    """The videos every render writes: the small rendition only where it is smaller than the gallery's size."""
    small = settings.video["small"]
    return VideoOptions(tuple(settings.video["formats"]), small if small < settings.size else 0)


def list_inputs(folder: Path) -> list[Path]:
    """The image files in `folder` (not hidden, by extension), sorted by name, relative to the
    working directory where they are under it (error messages name them so)."""
    if not folder.is_dir():
        raise ConfigError(f"inputs: {folder} is not a folder; create it and put photos in it")
    files = [p for p in folder.iterdir()
             if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".") and p.is_file()]
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
            sha = file_digest(path)
        except OSError as exc:
            photos.append(Photo(path.name, path, None, None, f"{path}: cannot be read ({exc.strerror})"))
            continue
        photos.append(Photo(path.name, path, sha, photo_key(sha, settings.size)))
    for name in settings.static:  # static is made from its name and the seed: hash those
        sha = hashlib.sha256(f"{name} seed {settings.seed}".encode()).hexdigest()
        photos.append(Photo(name, Path(name), sha, photo_key(sha, settings.size)))
    only = set(only or ())
    names = {s.name for s in settings.styles} | {p.name for p in photos} | {p.path.stem for p in photos}
    for name in sorted(only - names):
        raise ConfigError(f"--only {name!r} matches no style or input; styles: "
                          f"{', '.join(s.name for s in settings.styles)}; inputs: "
                          f"{', '.join(p.name for p in photos) or 'none'}")

    from dreamer import site

    files = SiteFiles(output, manifest, Inputs(_read_files(settings, photos)))
    options = settings.render_options()
    jobs = [Job(photo, style, render_key(photo.sha256, style, options) if photo.sha256 else None, "")
            for photo in photos for style in settings.styles]
    notes = _recover(files, settings, photos, jobs, site.static_sources(settings))
    for job in jobs:
        cached = job.key is not None and _rendered(files, job, settings, notes)
        selected = not only or bool({job.style.name, job.photo.name, job.photo.path.stem} & only)
        job.action = "render" if selected and (force or not cached) else "reuse" if cached else "skip"

    wanted = _wanted(settings, photos, jobs)
    stale = files.stale(wanted)
    files.check(wanted, stale)
    return Plan(settings, manifest, photos, jobs, files, wanted, stale, notes)


def _read_files(settings: Settings, photos: list[Photo]) -> list[Path]:
    """Every file a build reads: photos, guide images, the config file, the templates. None may be written."""
    paths = [p.path for p in photos] + [Path(s.guide) for s in settings.styles if s.guide]
    if settings.source != "settings":
        paths.append(Path(settings.source))
    if settings.templates is not None:
        paths += [f for f in settings.templates.rglob("*") if f.is_file()]
    return paths


def _wanted(settings: Settings, photos: list[Photo], jobs: list[Job]) -> list[str]:
    """Every file the site needs (relative to it), the manifest aside."""
    from dreamer import site

    renders = [name for job in jobs if job.key for name in job.files(settings)]
    return [*renders, *(p.file for p in photos if p.key), *site.site_names(settings, [p.name for p in photos])]


def _recover(files: SiteFiles, settings: Settings, photos: list[Photo], jobs: list[Job], static: dict) -> list[str]:
    """Rebuild a version-1, lost or corrupt manifest from the files on disk (in memory); the warning, if any."""
    manifest, output = files.manifest, files.output
    if manifest.found == "legacy":
        recover.adopt_legacy(files, static)
        return []
    if manifest.found == "ok" or not output.is_dir() or not any(f.name != STATE for f in output.iterdir()):
        return []
    recover.adopt_marked(files, static)
    for job in jobs:
        found = recover.on_disk(files, job.gif, job.still, job.videos(settings).values()) if job.key else None
        if found and found["mark"].get("frames"):
            mark = found["mark"]
            manifest.renders[job.key] = render_entry(job, settings, frames=mark["frames"], seconds=None,
                                                     backend=mark.get("backend"), precision=mark.get("precision"),
                                                     **{k: found[k] for k in ("gif_frames", "width", "height")},
                                                     files=files)
    for photo in photos:
        if photo.key and files.owns(photo.file):
            manifest.photos[photo.key] = _photo_entry(photo, files)
    return [f"warning: {output / MANIFEST} was {manifest.found}: rebuilt from the files on disk "
            f"({len(manifest.renders)} complete renders recognised)"]


def _rendered(files: SiteFiles, job: Job, settings: Settings, notes: list[str]) -> bool:
    """Whether `job`'s render is in the site, all its files with the bytes the manifest recorded."""
    if job.key not in files.manifest.renders:
        return False
    changed = [name for name in job.files(settings) if not files.intact(name)]
    for name in changed:
        if (files.output / name).exists():
            notes.append(f"warning: {files.output / name} changed since Dreamer wrote it (its sha256 is not the "
                         "manifest's): rendering it again")
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


def build(settings: Settings, force: bool = False, only=(), dry_run: bool = False, out=None,
          wait: bool = False) -> Summary:
    """Build the site in settings.output; print progress to `out` (stdout) and a summary line. The build holds
    the folder's lock: another build there fails at once on one line, or with `wait` waits for it."""
    out = out or sys.stdout
    check_folder(settings.output)
    if dry_run:
        return _dry_run(make_plan(settings, force=force, only=only), out)
    with holding(settings.output / STATE, settings.output, wait=wait):
        return _build(make_plan(settings, force=force, only=only), out)


def _build(plan: Plan, out) -> Summary:
    from tqdm import tqdm

    from dreamer import site

    settings, manifest, files = plan.settings, plan.manifest, plan.files
    output = settings.output
    for note in plan.notes:
        print(note, file=sys.stderr)
    files.claim(plan.wanted)  # before the first write: what a killed build leaves is known as Dreamer's
    files.save()
    for photo in plan.photos:
        prepare_photo(photo, settings, files)
        if photo.error:
            print(f"error: {photo.error}", file=sys.stderr)
    for job in plan.jobs:
        if job.photo.error:
            job.status, job.message = "failed", job.photo.error
        elif job.action != "render":
            job.status = {"reuse": "reused", "skip": "skipped"}[job.action]

    # Forget what is no longer referenced, show the site as it is, then delete the old files.
    keys = {j.key for j in plan.jobs}
    manifest.renders = {k: v for k, v in manifest.renders.items() if k in keys}
    manifest.photos = {k: v for k, v in manifest.photos.items() if k in {p.key for p in plan.photos}}
    site.write_site(plan)
    files.save()
    for name in plan.stale:
        files.remove(name)
    files.save()

    todo = _in_render_order([j for j in plan.jobs if j.status == "pending"], settings)
    finished = set()  # keys rendered in this run: two inputs with the same bytes share a render
    try:
        with tqdm(total=len(todo), desc="gallery", unit="render", position=0, dynamic_ncols=True,
                  disable=None if todo else True) as overall:
            for group in _groups(todo, _photos_together(settings.batch) if todo else 1):
                fresh, twins = [], []  # twins: jobs whose key a job of this group renders
                for job in group:
                    if job.key in finished:
                        job.status = "reused"
                        overall.update(1)
                    elif job.key in {j.key for j in fresh}:
                        twins.append(job)
                    else:
                        fresh.append(job)
                if fresh:
                    label = fresh[0].label if len(fresh) == 1 else f"{len(fresh)} photos · {fresh[0].style.name}"
                    with tqdm(total=fresh[0].style.total_steps, desc=label, unit="step", position=1,
                              leave=False, dynamic_ncols=True, disable=None) as bar:
                        run_jobs(fresh, settings, files, on_step=_stepper(bar))
                for job in fresh:
                    _report(job, manifest, overall)
                    overall.update(1)
                    if job.status == "rendered":
                        finished.add(job.key)
                for job in twins:  # reused only if its twin rendered; else it failed the same way
                    if job.key in finished:
                        job.status = "reused"
                    else:
                        job.status, job.message = "failed", _twin_failure(job, fresh)
                        _report(job, manifest, overall)
                    overall.update(1)
                if any(job.status == "rendered" for job in fresh):
                    files.save()
                    site.write_site(plan)
    finally:
        site.write_site(plan)
        files.settle()
        files.save()

    summary = Summary(jobs=plan.jobs)
    for job in plan.jobs:
        setattr(summary, job.status, getattr(summary, job.status) + 1)
    summary.failures = list(dict.fromkeys(j.message for j in plan.jobs if j.status == "failed"))
    summary.site_bytes = sum(f.stat().st_size for f in output.rglob("*") if f.is_file())
    if summary.failures:
        print(f"{len(summary.failures)} problem(s):", file=out)
        for message in summary.failures:
            print(f"  {message}", file=out)
    print(summary.line() + f"; open {output / 'index.html'}", file=out)
    return summary


def _stepper(bar):
    def on_step(done, total, score):
        bar.set_postfix(score=f"{score:.3g}", refresh=False)
        bar.update(done - bar.n)  # the engine reports once per call: a frame's steps (TF), an octave's (JAX)
    return on_step


def _report(job: Job, manifest: Manifest, overall) -> None:
    if job.status == "rendered":
        entry = manifest.renders[job.key]
        overall.write(f"rendered {job.label}: {entry['frames']} frames {entry['width']}x{entry['height']}, "
                      f"{entry['backend']} {entry['precision']}, {entry['seconds']:.1f} s")
    else:
        overall.write(f"error: {job.message}", file=sys.stderr)


def prepare_photo(photo: Photo, settings: Settings, files: SiteFiles) -> None:
    """Write the photo resized to the gallery size as site/photos/<key>.jpg, unless it is there intact;
    an unusable photo gets `photo.error` (one line naming the file)."""
    if photo.error or (photo.key in files.manifest.photos and files.intact(photo.file)):
        return
    from dreamer.animate import save_still
    from dreamer.images import input_image

    try:
        image = input_image(photo.path, settings.size, settings.seed)
    except DreamerError as exc:
        photo.error = one_line(exc)
        return
    save_still(image, settings.output / photo.file)
    files.adopt(photo.file)
    files.manifest.photos[photo.key] = _photo_entry(photo, files)


def _photo_entry(photo: Photo, files: SiteFiles) -> dict:
    from PIL import Image

    with Image.open(files.output / photo.file) as image:
        width, height = image.size
    return {"input": photo.name, "sha256": photo.sha256, "file": photo.file, "width": width, "height": height,
            "bytes": files.names[photo.file]["bytes"]}


def _in_render_order(jobs: list[Job], settings: Settings) -> list[Job]:
    """Jobs grouped by network (each loads once), then by style (photos of one style can dream together)."""
    networks = [s.network for s in settings.styles]
    styles = [s.name for s in settings.styles]
    return sorted(jobs, key=lambda j: (networks.index(j.style.network), styles.index(j.style.name)))


def _twin_failure(job: Job, fresh: list[Job]) -> str:
    """The failure of the job that rendered `job`'s key, told for `job`."""
    twin = next(j for j in fresh if j.key == job.key)
    return twin.message.replace(twin.label, job.label, 1)


def _photos_together(batch) -> int:
    """How many photos of one style a build hands to the renderer at once: `batch`, or for 'auto' up to
    MAX_AUTO_BATCH on an accelerator and CPU_AUTO_BATCH on a CPU (the renderer splits them to fit)."""
    if batch != "auto":
        return batch
    activate()
    from dreamer.batching import CPU_AUTO_BATCH, MAX_AUTO_BATCH, free_accelerator_bytes

    return CPU_AUTO_BATCH if free_accelerator_bytes() is None else MAX_AUTO_BATCH


def _groups(jobs: list[Job], size: int):
    """Consecutive jobs of the same style, at most `size` at a time."""
    group = []
    for job in jobs:
        if group and (len(group) == size or job.style != group[0].style):
            yield group
            group = []
        group.append(job)
    if group:
        yield group


def run_jobs(jobs: list[Job], settings: Settings, files: SiteFiles, on_step=None) -> list[Job]:
    """Render jobs of one style into site/renders (photos of the same size or canvas dream together, `batch`
    tiles per network call) and record them in the manifest; a failure sets its job's status only."""
    output = settings.output
    try:
        activate()
        from dreamer import render as engine  # TensorFlow loads here, and only when something renders

        options = engine.RenderOptions(size=settings.size, seed=settings.seed, batch=settings.batch,
                                       gif=engine.GifOptions(**settings.gif), video=video_options(settings))
        results = engine.render_many([j.photo.path for j in jobs], jobs[0].style,
                                     [(output / j.gif, output / j.still) for j in jobs], options, on_step=on_step)
    except Exception as exc:  # one render's failure must not stop the gallery
        results = [exc] * len(jobs)
    for job, result in zip(jobs, results):
        if isinstance(result, Exception):
            job.status, job.message = "failed", f"{job.label}: {one_line(result)}"
            continue
        for name in job.files(settings):
            files.adopt(name)
        files.manifest.renders[job.key] = render_entry(
            job, settings, frames=result.frames, gif_frames=result.gif_frames, width=result.width,
            height=result.height, seconds=round(result.seconds, 2), backend=result.backend,
            precision=result.precision, files=files)
        job.status = "rendered"
    return jobs


def render_entry(job: Job, settings: Settings, *, frames, gif_frames, width, height, seconds, backend, precision,
                 files: SiteFiles) -> dict:
    """The manifest's entry of a render whose files are recorded in `files`. `steps` and `times` say, for each of
    the engine's frames, the dream's step it shows and when it shows in the videos ([start, end] seconds, on its
    first showing): what a slider needs to put every style's video at the same step."""
    entry = {"input": job.photo.name, "input_sha256": job.photo.sha256, "style": job.style.name,
             "definition": style_definition(job.style), "options": settings.render_options(),
             "precision": precision, "backend": backend, "engine": ENGINE_VERSION, "frames": frames,
             "gif_frames": gif_frames, "seconds": seconds, "width": width, "height": height,
             "bytes": files.names[job.gif]["bytes"], "still_bytes": files.names[job.still]["bytes"],
             "gif": job.gif, "still": job.still, "videos": job.videos(settings)}
    steps = job.style.frame_steps
    if entry["videos"] and len(steps) == frames:
        entry["steps"], entry["times"] = steps, _frame_times(frames, settings.gif)
    return entry


def _frame_times(frames: int, gif: dict) -> list[list[float]]:
    """[start, end] in seconds of each of `frames` frames' first showing in a video with the GIF's timings."""
    from dreamer.animate import timeline

    durations = [ms for _, ms in timeline(frames, gif["frame_ms"], gif["hold_first_ms"], gif["hold_last_ms"],
                                          gif["pingpong"])]
    bounds = frame_times([*durations, 0])  # and the end of the loop
    return [[round(bounds[i], 3), round(bounds[i + 1], 3)] for i in range(frames)]


def _dry_run(plan: Plan, out) -> Summary:
    summary = Summary(dry_run=True, jobs=plan.jobs)
    for photo in plan.photos:
        if photo.error:
            print(f"error: {photo.error}", file=out)
    for job in plan.jobs:
        if job.photo.error:
            summary.failed += 1
        elif job.action == "render":
            print(f"would render {job.label}", file=out)
            summary.rendered += 1
        elif job.action == "reuse":
            summary.reused += 1
        else:
            summary.skipped += 1
    for note in plan.notes:
        print(note, file=out)
    for name in plan.stale:
        print(f"would delete {plan.settings.output / name}", file=out)
    summary.deleted = len(plan.stale)
    print(summary.line(), file=out)
    return summary
