"""The same 16 small renders (4 photos x 4 styles, 96 px) built serially, with `--cluster local:1` and with
`--cluster local:2` on this machine, as ratios from one run; then the driver's own limits: how many finished
renders a second it writes into the site (files, manifest, pages), and the bytes a render sends through Ray's
object store (the photo once, the results back).

Run: .venv/bin/python bench/bench_cluster.py   (needs the cluster extra: pip install -e '.[cluster]')
"""

import io
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from dreamer.gallery import PAGES_EVERY, build, make_plan  # noqa: E402
from dreamer.gallery.cluster import Cluster  # noqa: E402
from dreamer.gallery.execute import Rendered  # noqa: E402
from dreamer.gallery.write import record  # noqa: E402
from dreamer.settings import load  # noqa: E402

PHOTOS = ["astronaut.jpg", "chelsea.jpg", "coffee.jpg", "rocket.jpg"]
STYLE = "octaves = 2\nsteps = 6\nevery = 3\n"
TOML = ('size = 96\nbatch = 1\nstyles = ["vgg16-eyes", "vgg16-deep", "hed-edges", "effnet-lite0-shapes"]\n'
        + "".join(f"[style.{name}]\n{STYLE}" for name in ["vgg16-eyes", "vgg16-deep", "hed-edges", "effnet-lite0-shapes"]))


def gallery(folder: Path) -> Path:
    (folder / "inputs").mkdir(parents=True)
    for name in PHOTOS:
        shutil.copyfile(ROOT / "inputs" / name, folder / "inputs" / name)
    (folder / "gallery.toml").write_text(TOML)
    return folder / "gallery.toml"


def timed_build(config: Path, address: str | None) -> tuple[float, float]:
    """(seconds to start the cluster, seconds to build) of one build from nothing."""
    started = time.perf_counter()
    executor = Cluster(address) if address else None
    ready = time.perf_counter()
    summary = build(load(config), out=io.StringIO(), executor=executor)
    assert summary.rendered == 16 and summary.ok, summary.line()
    return ready - started, time.perf_counter() - ready


def driver_rate(config: Path) -> tuple[float, float, float, float]:
    """(renders written a second, seconds of a page rewrite, result bytes a render, photo bytes a render),
    replaying a built site's renders through the driver's write step: record (atomic writes, hashes) and the
    manifest saved after each; the pages, rewritten every few seconds, timed once."""
    from dreamer import site

    settings = load(config)
    plan = make_plan(settings, force=True)
    jobs = [job for job in plan.jobs if job.key in plan.manifest.renders]
    results = []
    for job in jobs:
        entry = plan.manifest.renders[job.key]
        files = {role: (settings.output / name).read_bytes() for role, name in job.roles(settings).items()}
        results.append(Rendered(files, entry["frames"], entry["gif_frames"], entry["width"], entry["height"],
                                entry["seconds"], entry["backend"], entry["precision"], "here"))
    for job in jobs:  # new bytes each time, as for new renders: nothing is skipped as unchanged
        plan.files.names.pop(job.gif, None)
    started = time.perf_counter()
    for job, result in zip(jobs, results):
        record(job, result, settings, plan.files)
        plan.files.save()
    seconds = time.perf_counter() - started
    started = time.perf_counter()
    site.write_site(plan)
    pages = time.perf_counter() - started
    result_bytes = sum(len(b) for r in results for b in r.files.values()) / len(results)
    photo_bytes = sum((settings.inputs / name).stat().st_size for name in PHOTOS) / len(results)
    return len(jobs) / seconds, pages, result_bytes, photo_bytes


def main():
    with tempfile.TemporaryDirectory() as tmp:
        times = {}
        for mode in (None, "local:1", "local:2"):
            times[mode] = timed_build(gallery(Path(tmp) / (mode or "serial").replace(":", "-")), mode)
        rate, pages, result_bytes, photo_bytes = driver_rate(Path(tmp) / "serial" / "gallery.toml")
    serial = times[None][1]
    print(f"16 renders, 96 px, 4 styles x 4 photos; serial {serial:.1f} s")
    for mode in ("local:1", "local:2"):
        start, run = times[mode]
        print(f"--cluster {mode}: start {start:.1f} s, build {run:.1f} s; serial / cluster "
              f"{serial / run:.2f} (builds), {serial / (start + run):.2f} (with the start)")
    print(f"driver: {rate:.1f} finished renders written a second (files, manifest); the pages of this 16-render "
          f"site rewritten in {pages * 1e3:.0f} ms (every {PAGES_EVERY:g} s while renders finish)")
    print(f"object store: {result_bytes / 1e3:.0f} kB of results and {photo_bytes / 1e3:.0f} kB of photo a render")


if __name__ == "__main__":
    main()
