"""Encoding beside dreaming: a cold gallery build's wall time against the sum of its renders' dream times (the
manifest's `seconds`), with each render encoded before the next dream starts (`Serial(encoders=0)`, the build as it
was) and beside the next dream (`Serial()`, dreamer.gallery.execute.ENCODERS threads). Each build is a fresh process
building a fresh folder (the framework imported before the clock starts), the two kinds interleaved; the files of
the two kinds are compared byte for byte. The dream times of encoding beside dreaming include the encoders' share of
the CPU, so "wall / dreams" alone flatters them where the dream already uses every core: the script also prints the
wall times against each other and against the inline build's dreams, and each build's CPU time (its processes').
`--dream-threads 1` (TF_NUM_INTRAOP_THREADS) leaves a core to the encoders, as a GPU dreaming leaves the host's.

Run: .venv/bin/python bench/bench_encode.py [--photos 4] [--size 256] [--repeats 2] [--dream-threads N]
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from conftest import hashes, make_tiny  # noqa: E402

PHOTOS = ("astronaut.jpg", "chelsea.jpg", "coffee.jpg", "rocket.jpg")
GALLERY = """\
size = {size}
styles = ["hed-edges", "vgg16-textures"]
[style.hed-edges]
octaves = 2
steps = 12
every = 3
[style.vgg16-textures]
octaves = 2
steps = 12
every = 3
[gif]
lossy = 40
[video]
formats = ["webm", "mp4"]
small = {small}
"""
CHILD = """\
import json, os, resource, sys, time
from pathlib import Path
from dreamer.engine.backends import activate
activate()
import keras  # noqa: the framework loads before the clock starts
from dreamer.gallery import build
from dreamer.gallery.execute import Serial
from dreamer.gallery.settings import load
settings = load(Path(sys.argv[1]))
started = time.perf_counter()
with open(os.devnull, "w") as out:
    summary = build(settings, out=out, executor=Serial(encoders=int(sys.argv[2])))
wall = time.perf_counter() - started
cpu = sum(u.ru_utime + u.ru_stime for u in map(resource.getrusage, (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)))
renders = json.loads((settings.output / "manifest.json").read_text())["renders"].values()
print(json.dumps({"ok": summary.ok, "wall": wall, "dream": sum(r["seconds"] for r in renders), "renders": len(renders),
                  "cpu": cpu}))
"""
KINDS = {"inline (encoders=0)": 0, "beside (encoders=1)": 1}


def built(folder: Path, encoders: int, dream_threads: int) -> dict:
    env = os.environ | ({"TF_NUM_INTRAOP_THREADS": str(dream_threads)} if dream_threads else {})
    done = subprocess.run([sys.executable, "-c", CHILD, str(folder / "gallery.toml"), str(encoders)], cwd=ROOT,
                          capture_output=True, text=True, timeout=1800, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.splitlines()[-1])
    assert result["ok"], done.stderr[-3000:]
    return result


def main(photos: int, size: int, repeats: int, dream_threads: int):
    toml = GALLERY.format(size=size, small=min(240, size - 16))
    with tempfile.TemporaryDirectory() as tmp:
        runs, sites = {kind: [] for kind in KINDS}, {}
        for r in range(repeats):
            for kind, encoders in KINDS.items():  # interleaved, so that a change of load touches both alike
                folder = make_tiny(Path(tmp, f"{r}-{encoders}"), toml, photos=PHOTOS[:photos])
                runs[kind].append(built(folder, encoders, dream_threads))
                sites[kind] = {name: digest for name, digest in hashes(folder / "site").items()
                               if name.startswith(("renders/", "photos/"))}
        renders = runs[next(iter(KINDS))][0]["renders"]
        print(f"gallery: {photos} photos x 2 styles (hed-edges, vgg16-textures; 2 octaves x 12 steps), {size} px, "
              f"GIF (gifsicle --lossy=40) + WebM + MP4 + their {min(240, size - 16)}-px renditions: {renders} renders; "
              f"dream threads: {dream_threads or 'TF default'}")
        for kind, results in runs.items():
            for result in results:
                print(f"{kind:20} wall {result['wall']:6.1f} s   dreams {result['dream']:6.1f} s   "
                      f"wall / dreams {result['wall'] / result['dream']:.2f}   CPU {result['cpu']:6.1f} s")
        best = {kind: min(results, key=lambda x: x["wall"]) for kind, results in runs.items()}
        inline, beside = best.values()
        print(f"fastest of each: wall beside / inline {beside['wall'] / inline['wall']:.2f}; wall / dreams "
              f"{inline['wall'] / inline['dream']:.2f} inline, {beside['wall'] / beside['dream']:.2f} beside "
              f"(goal <= 1.1); beside's wall / inline's dreams {beside['wall'] / inline['dream']:.2f}")
        same = len(set(map(json.dumps, sites.values()))) == 1
        print(f"the two kinds' renders and photos: {'identical' if same else 'DIFFERENT'} bytes "
              f"({len(next(iter(sites.values())))} files)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=4, choices=range(1, len(PHOTOS) + 1), help="photos (4)")
    parser.add_argument("--size", type=int, default=256, help="long side in pixels (256)")
    parser.add_argument("--repeats", type=int, default=2, help="builds of each kind, interleaved (2)")
    parser.add_argument("--dream-threads", type=int, default=0, help="TF_NUM_INTRAOP_THREADS (0: TF's default)")
    args = parser.parse_args()
    main(args.photos, args.size, args.repeats, args.dream_threads)
