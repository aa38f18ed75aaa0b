"""`dreamer serve` against itself and against the library, as ratios from one run, each server a real process on
loopback (as a user runs it) and every dream of a photo of its own (a finished one would be answered from the store):

1. Throughput: 8 dreams of one style posted at once by 8 clients, with dynamic batching (the default: `batch` auto,
   4 on a CPU; 20 ms) against the same 8 one at a time (`--max-batch 1`), first post to last done; each server
   warmed first by a round of the same 8-dream load (the network loaded, every shape traced).
2. Overhead: one client's dream through the server against the bare library call in this process: post to its
   last frame (upload, queue, dream, each frame as JPEG on the event stream) against `dreamer.dream()` (the
   frames); post to done against `dreamer.render()` writing the same files (the GIF, the still, and the videos
   the gallery's default [video] settings ask for: WebM and MP4, each also small). The goal: at most 10 % over.
3. The time to the first dreamed frame (the first `frame` event after the photo) through the server, and through
   dreamer.dream().
4. A finished dream asked again (the same photo, style and options posted): the median answer. The goal: under
   50 ms.

Each comparison runs `--rounds` times, interleaved, and reports medians of wall time and of CPU time (the server
process's, all its threads; this process's for the library), which a busy shared machine inflates less.

Run: .venv/bin/python bench/bench_serve.py [--size 128] [--steps 5] [--style vgg16-textures] [--rounds 3]
     [--repeats 10]
"""

import argparse
import io
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import psutil
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
CAT = Image.open(ROOT / "inputs" / "chelsea.jpg").convert("RGB")
CONCURRENT = 8
_photos = iter(range(10_000))


def fresh_photo() -> bytes:
    """A photo no dream of this run has had: a 300 x 200 crop of chelsea at an offset of its own."""
    i = next(_photos)
    buffer = io.BytesIO()
    CAT.crop((15 * (i % 10), 10 * (i // 10 % 10), 15 * (i % 10) + 300, 10 * (i // 10 % 10) + 200)).save(buffer, "PNG")
    return buffer.getvalue()


class Server:
    """`dreamer serve --port 0 ARGS` in a folder of its own, keeping its dreams there; `client` speaks to it."""

    def __init__(self, folder: Path, *args: str):
        self.process = subprocess.Popen([sys.executable, "-m", "dreamer", "serve", "--port", "0",
                                         "--cache", str(folder / "dreams"), *args], cwd=folder,
                                        env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE,
                                        stderr=subprocess.DEVNULL, text=True)
        url = self.process.stdout.readline().strip()
        if not url:
            sys.exit(f"dreamer serve {' '.join(args)} did not start")
        self.base = url.rsplit("/studio", 1)[0]
        self.client = httpx.Client(base_url=self.base, timeout=600)
        self.usage = psutil.Process(self.process.pid)

    def cpu(self) -> float:
        """The CPU seconds the server has used so far (all its threads)."""
        times = self.usage.cpu_times()
        return times.user + times.system

    def post(self, photo: bytes, fields: dict) -> dict:
        created = self.client.post("/api/dreams", data=fields, files={"photo": ("photo.png", photo)})
        created.raise_for_status()
        return created.json()["dreams"][0]

    def events(self, ids: list[str]):
        """(seconds from now, event, data) of the dreams' event stream, until it ends."""
        start = time.perf_counter()
        query = "&".join(f"id={dream_id}" for dream_id in ids)
        with self.client.stream("GET", f"/api/events?{query}") as response:
            kind = None
            for line in response.iter_lines():
                if line.startswith("event:"):
                    kind = line.split(":", 1)[1].strip()
                elif line.startswith("data:"):
                    yield time.perf_counter() - start, kind, json.loads(line.split(":", 1)[1])

    def finish(self, ids: list[str]) -> list[dict]:
        """Wait for the dreams to finish; their last statuses (all done, or the bench stops)."""
        last = {data["id"]: data for _, kind, data in self.events(ids) if kind == "status"}
        if any(status["status"] != "done" for status in last.values()):
            sys.exit(f"a dream did not finish: {next(s for s in last.values() if s['status'] != 'done')}")
        return [last[dream_id] for dream_id in ids]

    def stop(self):
        self.client.close()
        self.process.terminate()
        self.process.wait(timeout=30)


def crowd(server: Server, fields: dict) -> tuple[float, float, list[dict]]:
    """(wall seconds, the server's CPU seconds) from the first post to the last done of CONCURRENT dreams posted at
    once; their statuses."""
    photos = [fresh_photo() for _ in range(CONCURRENT)]
    start, cpu = time.perf_counter(), server.cpu()
    with ThreadPoolExecutor(CONCURRENT) as pool:
        dreams = list(pool.map(lambda photo: server.post(photo, fields), photos))
    statuses = server.finish([dream["id"] for dream in dreams])
    return time.perf_counter() - start, server.cpu() - cpu, statuses


def one_dream(server: Server, fields: dict) -> dict:
    """Seconds from the post of one dream to its first dreamed frame, to its last frame and to done (wall), and the
    server's CPU seconds to its last frame and to done."""
    start, cpu = time.perf_counter(), server.cpu()
    dream = server.post(fresh_photo(), fields)
    frames = []
    for _, kind, data in server.events([dream["id"]]):
        if kind == "frame" and data["step"] > 0:
            frames.append((time.perf_counter() - start, server.cpu() - cpu))
    return {"first": frames[0][0], "frames": frames[-1][0], "frames_cpu": frames[-1][1],
            "files": time.perf_counter() - start, "files_cpu": server.cpu() - cpu}


def library(style: str, size: int, steps: int) -> dict:
    """The same through the library in this process, of a fresh photo: dreamer.dream() (its first dreamed frame,
    all its frames) and dreamer.render() writing the files a server with the default settings writes; wall and
    CPU seconds."""
    import dreamer
    from dreamer.gallery.execute import render_options
    from dreamer.gallery.settings import create_settings

    served = render_options(create_settings())
    start, cpu, first = time.perf_counter(), time.process_time(), None
    for frame in dreamer.dream(fresh_photo(), style, size=size, steps=steps):
        if frame.step > 0 and first is None:
            first = time.perf_counter() - start
    times = {"first": first, "frames": time.perf_counter() - start, "frames_cpu": time.process_time() - cpu}
    with tempfile.TemporaryDirectory() as folder:
        start, cpu = time.perf_counter(), time.process_time()
        dreamer.render(fresh_photo(), style, Path(folder) / "dream.gif", still=Path(folder) / "dream.jpg", size=size,
                       steps=steps, gif_options=served.gif, video=served.video)
        times |= {"files": time.perf_counter() - start, "files_cpu": time.process_time() - cpu}
    return times


def median(rounds: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in rounds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=5, help="steps per octave")
    parser.add_argument("--style", default="vgg16-textures")
    parser.add_argument("--rounds", type=int, default=3, help="of each comparison, interleaved; medians")
    parser.add_argument("--repeats", type=int, default=10, help="of the finished dream asked again")
    args = parser.parse_args()
    fields = {"styles": args.style, "size": str(args.size), "steps": str(args.steps)}
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}; "
          f"{args.style}, {args.size} px, {args.steps} steps an octave; load average {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "batched").mkdir()
        (Path(folder) / "alone").mkdir()
        batched, alone = Server(Path(folder) / "batched"), Server(Path(folder) / "alone", "--max-batch", "1")
        try:
            for server in (batched, alone):
                crowd(server, fields)  # warm: the network loaded, every shape (a batch's too) traced
            together, one_by_one, sizes = [], [], []
            for _ in range(args.rounds):
                wall, cpu, statuses = crowd(batched, fields)
                together.append({"wall": wall, "cpu": cpu})
                sizes.append(sorted(status["batch"] for status in statuses))
                wall, cpu, _ = crowd(alone, fields)
                one_by_one.append({"wall": wall, "cpu": cpu})
            print(f"{CONCURRENT} dreams at once, batched (batches {sizes}): median {median(together, 'wall'):6.2f} s "
                  f"wall, {median(together, 'cpu'):6.2f} s of the server's CPU")
            print(f"{CONCURRENT} dreams at once, one at a time: median {median(one_by_one, 'wall'):6.2f} s wall, "
                  f"{median(one_by_one, 'cpu'):6.2f} s of the server's CPU")
            print(f"throughput, batched / one at a time: {median(one_by_one, 'wall') / median(together, 'wall'):.2f}x "
                  f"by wall time, {median(one_by_one, 'cpu') / median(together, 'cpu'):.2f}x by CPU time")

            import dreamer

            list(dreamer.dream(fresh_photo(), args.style, size=args.size, steps=args.steps))  # warm the library
            served, served_batching, bare = [], [], []
            for _ in range(args.rounds):
                served.append(one_dream(alone, fields))
                served_batching.append(one_dream(batched, fields))
                bare.append(library(args.style, args.size, args.steps))
            for what, library_call in (("frames", "dreamer.dream()"), ("files", "dreamer.render()")):
                until = "its last frame" if what == "frames" else "done (GIF, still, 4 videos)"
                print(f"one dream, post to {until}: server {median(served, what):.2f} s wall, "
                      f"{median(served, what + '_cpu'):.2f} s CPU (batching server {median(served_batching, what):.2f} "
                      f"s, {median(served_batching, what + '_cpu'):.2f} s); {library_call} {median(bare, what):.2f} s "
                      f"wall, {median(bare, what + '_cpu'):.2f} s CPU")
                print(f"  server / {library_call}: {median(served, what) / median(bare, what):.2f} wall, "
                      f"{median(served, what + '_cpu') / median(bare, what + '_cpu'):.2f} CPU (batching server "
                      f"{median(served_batching, what) / median(bare, what):.2f}, "
                      f"{median(served_batching, what + '_cpu') / median(bare, what + '_cpu'):.2f}); goal <= 1.10")
            print(f"first dreamed frame: server {median(served, 'first') * 1e3:.0f} ms (batching server "
                  f"{median(served_batching, 'first') * 1e3:.0f} ms), dreamer.dream() {median(bare, 'first') * 1e3:.0f} ms")

            photo = fresh_photo()
            alone.finish([alone.post(photo, fields)["id"]])
            again = []
            for _ in range(args.repeats):
                start = time.perf_counter()
                status = alone.post(photo, fields)
                again.append(time.perf_counter() - start)
                assert status["status"] == "done"
            print(f"a finished dream asked again: median {statistics.median(again) * 1e3:.1f} ms "
                  f"(min {min(again) * 1e3:.1f}, max {max(again) * 1e3:.1f}) of {args.repeats}; goal < 50 ms")
        finally:
            batched.stop()
            alone.stop()
    print(f"load average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
