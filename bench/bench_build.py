"""How long the builds that render nothing take, as a user runs them (a fresh `python build.py`, timed whole): a
no-op build of a built tiny gallery (every render reused) and a second build refused at once because another holds
the folder's lock, each beside a fresh process that only imports TensorFlow (which neither of them may do), as
ratios from one run. tests/test_gallery.py and tests/test_safety.py assert what makes them fast (no framework
imported, nothing rendered); these are their times, which the tests asserted (< 3 s, < 30 s) until 2026-12-06.

Run: .venv/bin/python bench/bench_build.py [--repeats N]
"""

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
from conftest import make_tiny  # noqa: E402
from dreamer.gallery.lock import holding  # noqa: E402


def seconds(*command) -> tuple[float, subprocess.CompletedProcess]:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, *command], capture_output=True, text=True, timeout=600)
    return time.perf_counter() - started, done


def main(repeats: int):
    with tempfile.TemporaryDirectory() as tmp:
        folder = make_tiny(Path(tmp))
        config = str(folder / "gallery.toml")
        took, done = seconds(str(ROOT / "build.py"), "--config", config)
        assert done.returncode == 0, done.stderr[-2000:]
        print(f"tiny gallery (2 photos x 2 styles, 64 px) built from nothing in {took:.1f} s")
        times = {"import tensorflow": [], "no-op build": [], "refused build": []}
        for _ in range(repeats):  # interleaved, so that a change of load touches all three alike
            took, done = seconds("-c", "import tensorflow")
            times["import tensorflow"].append(took)
            took, done = seconds(str(ROOT / "build.py"), "--config", config)
            assert done.returncode == 0 and "reused 4" in done.stdout, done.stdout + done.stderr
            times["no-op build"].append(took)
            site = folder / "site"
            with holding(site / ".dreamer", site):  # this process holds the folder, as a running build does
                took, done = seconds(str(ROOT / "build.py"), "--config", config)
            assert done.returncode == 2 and "is building this site" in done.stderr, done.stderr
            times["refused build"].append(took)
        median = {name: statistics.median(values) for name, values in times.items()}
        for name, values in times.items():
            print(f"{name:18} median {median[name]:6.2f} s (min {min(values):.2f}, max {max(values):.2f}) "
                  f"of {repeats} fresh processes")
        tf = median["import tensorflow"]
        print(f"no-op build / import tensorflow:   {median['no-op build'] / tf:.2f}   (the test asserted < 3 s)")
        print(f"refused build / import tensorflow: {median['refused build'] / tf:.2f}   (the test asserted < 30 s)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="runs of each, interleaved (default 5)")
    main(parser.parse_args().repeats)
