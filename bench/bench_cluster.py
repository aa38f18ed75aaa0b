"""The same 16 small renders (4 photos x 4 styles, 160 px, 3 octaves x 8 steps) built from nothing by
`python build.py` serially, with `--cluster local:1` and with `--cluster local:2` on this machine, and with
`--cluster HOST:PORT` on a Ray already running here with one worker (`ray start --head`, as the README's Scale out
does), each a fresh process timed whole, as a user runs it (Python, Keras and Ray starting included), as ratios
from one run; Ray's fixed start (a local Ray and its workers ready) timed on its own, and Ray alone (imported,
started and stopped with no worker in it); then the driver's own limits: how many finished renders a second it
writes into the site (files, manifest, pages), and the bytes a render sends through Ray's object store (the photo
once, the results back).

Run: .venv/bin/python bench/bench_cluster.py   (needs the cluster extra: pip install -e '.[cluster]')
"""

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from dreamer.gallery import PAGES_EVERY, make_plan  # noqa: E402
from dreamer.gallery.cluster import Cluster  # noqa: E402
from dreamer.gallery.execute import Rendered  # noqa: E402
from dreamer.gallery.write import record  # noqa: E402
from dreamer.gallery.settings import load  # noqa: E402

ENV = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled"}  # a loopback bench cluster
RAY = Path(sys.executable).with_name("ray")
BARE_RAY = ("import ray; ray.init(address='local', num_cpus=1, include_dashboard=False, log_to_driver=False, "
            "configure_logging=False); ray.shutdown()")  # Ray started and stopped, nothing run on it
PHOTOS = ["astronaut.jpg", "chelsea.jpg", "coffee.jpg", "rocket.jpg"]
STYLE = "octaves = 3\nsteps = 8\nevery = 4\n"
STYLES = ["vgg16-eyes", "vgg16-deep", "hed-edges", "effnet-lite0-shapes"]
TOML = (f"size = 160\nbatch = 1\nstyles = {STYLES}\n".replace("'", '"')
        + "".join(f"[style.{name}]\n{STYLE}" for name in STYLES))


def gallery(folder: Path) -> Path:
    (folder / "inputs").mkdir(parents=True)
    for name in PHOTOS:
        shutil.copyfile(ROOT / "inputs" / name, folder / "inputs" / name)
    (folder / "gallery.toml").write_text(TOML)
    return folder / "gallery.toml"


def timed_build(config: Path, address: str | None) -> float:
    """Seconds of `python build.py` (with `--cluster address`) building the gallery from nothing."""
    started = time.perf_counter()
    done = subprocess.run([sys.executable, str(ROOT / "build.py"), "--config", str(config),
                           *(["--cluster", address] if address else [])], env=ENV, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    assert done.returncode == 0 and "rendered 16," in done.stdout, done.stdout[-500:] + done.stderr[-2000:]
    return seconds


def timed_on_running_ray(config: Path) -> float:
    """timed_build on a one-worker Ray head started beforehand (`ray start --head`), stopped afterwards."""
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    subprocess.run([RAY, "start", "--head", f"--port={port}", "--include-dashboard=false", "--num-cpus=1",
                    "--node-ip-address=127.0.0.1", "--disable-usage-stats"], env=ENV, check=True, capture_output=True)
    try:
        time.sleep(5)  # its agents settle, as on a cluster that was started before the build
        return timed_build(config, f"127.0.0.1:{port}")
    finally:
        subprocess.run([RAY, "stop", "--force"], env=ENV, capture_output=True)


def start_seconds(address: str) -> float:
    """Seconds from nothing to a Cluster whose workers are ready (each has loaded Keras), then closed."""
    started = time.perf_counter()
    Cluster(address).close()
    return time.perf_counter() - started


def bare_ray_seconds() -> float:
    """Seconds a fresh process spends importing Ray, starting a local Ray and stopping it, with no worker in it,
    beyond a bare Python's start: what any `--cluster local` build pays before and after its renders."""
    def timed(code: str) -> float:
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], env=ENV, check=True, capture_output=True)
        return time.perf_counter() - started

    return timed(BARE_RAY) - timed("pass")


def driver_rate(config: Path) -> tuple[float, float, float, float]:
    """(renders written a second, seconds of a page rewrite, result bytes a render, photo bytes a render),
    replaying a built site's renders through the driver's write step: record (atomic writes, hashes) and the
    manifest saved after each; the pages, rewritten every few seconds, timed once."""
    from dreamer.gallery import site

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
    os.environ.update(ENV)  # for start_seconds' Ray, here
    with tempfile.TemporaryDirectory() as tmp:
        times = {mode: timed_build(gallery(Path(tmp) / (mode or "serial").replace(":", "-")), mode)
                 for mode in (None, "local:1", "local:2")}
        running = timed_on_running_ray(gallery(Path(tmp) / "running"))
        start = start_seconds("local:1")
        bare = bare_ray_seconds()
        rate, pages, result_bytes, photo_bytes = driver_rate(Path(tmp) / "serial" / "gallery.toml")
    serial = times[None]
    print(f"16 renders, 160 px, 4 styles x 4 photos, `python build.py` from nothing: serial {serial:.1f} s")
    for mode in ("local:1", "local:2"):
        print(f"--cluster {mode}: {times[mode]:.1f} s; serial / cluster {serial / times[mode]:.2f}")
    print(f"--cluster HOST:PORT, a Ray already running with one worker: {running:.1f} s; serial / cluster "
          f"{serial / running:.2f}")
    print(f"Ray's fixed start (a local Ray, one worker with Keras loaded): {start:.1f} s")
    print(f"Ray alone (a fresh process imports it, starts a local Ray, stops it; no worker): {bare:.1f} s, "
          f"{bare / serial:.0%} of the serial build")
    print(f"driver: {rate:.1f} finished renders written a second (files, manifest); the pages of this 16-render "
          f"site rewritten in {pages * 1e3:.0f} ms (every {PAGES_EVERY:g} s while renders finish)")
    print(f"object store: {result_bytes / 1e3:.0f} kB of results and {photo_bytes / 1e3:.0f} kB of photo a render")


if __name__ == "__main__":
    main()
