"""The gallery build: plan (dreamer.gallery.plan), execute the renders here or on a Ray cluster
(dreamer.gallery.execute, dreamer.gallery.cluster), write the results into the site (dreamer.gallery.write).

A build holds the output folder's lock, and writes, replaces and deletes only the files its manifest records
as Dreamer's (dreamer.gallery.files). Each job ends with a status instead of raising; the manifest is saved after
every finished render and the pages every PAGES_EVERY seconds and at the end, so an interrupted build leaves a
valid site (its pages show what was finished when they were written) and the next one resumes.
"""

import itertools
import sys
import threading
import time
from dataclasses import dataclass, field

from dreamer.gallery.execute import Serial, groups, in_render_order
from dreamer.gallery.files import STATE
from dreamer.gallery.lock import holding
from dreamer.gallery.plan import IMAGE_SUFFIXES, Job, Photo, Plan, check_folder, list_inputs, make_plan
from dreamer.gallery.settings import Settings, video_options
from dreamer.gallery.site import slug
from dreamer.gallery.write import prepare_photo, record

PAGES_EVERY = 2.0  # seconds between page rewrites while renders finish (the manifest is saved after each)
# Set by the build command's SIGINT handler (commands/build.py): the build stops after the group it is on, even
# where the KeyboardInterrupt itself was swallowed (raised inside a garbage-collector callback, Python only prints it).
STOPPING = threading.Event()

__all__ = ["IMAGE_SUFFIXES", "Job", "Photo", "Plan", "Summary", "build", "check_folder", "list_inputs", "make_plan",
           "slug", "video_options"]


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


def build(settings: Settings, force: bool = False, only=(), dry_run: bool = False, out=None,
          wait: bool = False, executor=None) -> Summary:
    """Build the site in settings.output; print progress to `out` (stdout) and a summary line. The build holds
    the folder's lock: another build there fails at once on one line, or with `wait` waits for it. The renders
    run on `executor` (default: Serial, here one after another; dreamer.gallery.cluster.Cluster on Ray)."""
    out = out or sys.stdout
    check_folder(settings.output)
    if dry_run:
        return _dry_run(make_plan(settings, force=force, only=only), out)
    with holding(settings.output / STATE, settings.output, wait=wait):
        return _build(make_plan(settings, force=force, only=only), out, executor or Serial())


def _build(plan: Plan, out, executor) -> Summary:
    from tqdm import tqdm

    from dreamer.gallery import site

    settings, manifest, files = plan.settings, plan.manifest, plan.files
    output = settings.output
    for note in plan.notes:
        print(note, file=sys.stderr)
    said = len(files.notes)  # what the build says later: changed files it left in place
    site.render_pages(plan)  # a theme's error stops the build before it writes anything
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
            if job.served is not None:  # finished by `dreamer serve`: its files are written, not rendered again
                try:
                    record(job, job.served, settings, files)
                except OSError as exc:
                    job.status, job.message = "failed", f"{job.label}: {exc.filename}: {exc.strerror or exc}"

    # Forget what is no longer referenced, show the site as it is, then delete the old files.
    keys = {j.key for j in plan.jobs}
    manifest.renders = {k: v for k, v in manifest.renders.items() if k in keys}
    manifest.photos = {k: v for k, v in manifest.photos.items() if k in {p.key for p in plan.photos}}
    site.write_site(plan)
    files.save()
    for name in plan.stale:
        files.remove(name)
    files.save()

    todo = in_render_order([j for j in plan.jobs if j.status == "pending"], settings)
    first = {}  # key -> the job that renders it: two inputs with the same bytes share a render
    for job in todo:
        first.setdefault(job.key, job)
    twins = [job for job in todo if first[job.key] is not job]
    pages_written = time.monotonic()
    try:
        with tqdm(total=len(todo), desc="gallery", unit="render", position=0, dynamic_ncols=True,
                  disable=None if todo else True) as overall:
            together = executor.photos_together(settings.batch) if todo else 1
            asked = itertools.takewhile(lambda _: not STOPPING.is_set(),
                                        groups(list(first.values()), together, settings))
            for jobs, results in executor.run(asked, settings):  # once stopping, no group starts dreaming
                for job, result in zip(jobs, results):
                    if isinstance(result, str):
                        job.status, job.message = "failed", f"{job.label}: {result}"
                    else:
                        try:
                            record(job, result, settings, files)
                            job.status = "rendered"
                        except OSError as exc:  # the site cannot take the file (a full disk): this job fails
                            job.status, job.message = "failed", f"{job.label}: {exc.filename}: {exc.strerror or exc}"
                    _report(job, manifest, overall, result.node if executor.names_nodes and job.status == "rendered"
                            else None)
                    overall.update(1)
                if any(job.status == "rendered" for job in jobs):
                    files.save()
                    if time.monotonic() - pages_written >= PAGES_EVERY:
                        site.write_site(plan)
                        pages_written = time.monotonic()
                if STOPPING.is_set():
                    raise KeyboardInterrupt
            for job in twins:  # reused only if its twin rendered; else it failed the same way
                twin = first[job.key]
                if twin.status == "rendered":
                    job.status = "reused"
                else:
                    job.status, job.message = "failed", twin.message.replace(twin.label, job.label, 1)
                    _report(job, manifest, overall)
                overall.update(1)
    finally:
        executor.close()
        site.write_site(plan)
        files.settle()
        files.save()
        for note in files.notes[said:]:
            print(note, file=sys.stderr)

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


def _report(job: Job, manifest, overall, node=None) -> None:
    if job.status == "rendered":
        entry = manifest.renders[job.key]
        overall.write(f"rendered {job.label}: {entry['frames']} frames {entry['width']}x{entry['height']}, "
                      f"{entry['backend']} {entry['precision']}, {entry['seconds']:.1f} s"
                      + (f" on {node}" if node else ""))
    else:
        overall.write(f"error: {job.message}", file=sys.stderr)


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
