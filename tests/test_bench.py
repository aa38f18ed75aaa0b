"""The benchmarks the GPU machine runs still run here: bench_host.py, and bench_gpu.py's VGG16 section tiny on
the CPU. A broken benchmark would waste a session's few device minutes; timings are not asserted (they go to
bench/RESULTS.md), what each variant rendered and compiled is."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def bench(script: str, *args: str, tmp: Path) -> str:
    pytest.importorskip("jax", reason="the [jax] extra is not installed: pip install -e .[jax]")
    env = dict(os.environ, KERAS_BACKEND="jax", JAX_COMPILATION_CACHE_DIR=str(tmp / "xla"))
    done = subprocess.run([sys.executable, str(ROOT / "bench" / script), *args], env=env, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-1000:] + done.stderr[-2000:]
    return done.stdout


@pytest.fixture(scope="module")
def gpu_bench(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench_gpu")
    table = bench("bench_gpu.py", "--quick", "--skip", "effnet,gallery,torch", "--batches", "1", "--octaves", "3",
                  "--out", str(out), tmp=out)
    return table, json.loads((out / "bench_gpu.json").read_text())


def test_gpu_bench_renders_every_variant_and_prints_the_table(gpu_bench):
    table, results = gpu_bench
    for row in ("bare Keras-JAX step", "bare step, step count traced", "render, 1 oct, 1 frame",
                "render, full, a call per frame", "render, full, 64-px buckets", "bare step, the same octaves"):
        assert row in table
    entry = results["vgg16"][0]
    frames = 3 * 2 // 2 + 1  # --quick: 3 octaves x 2 steps, a frame every 2, and the original
    renders = ("render_full", "render_full_per_frame", "render_full_buckets")
    assert [entry[render]["frames"] for render in renders] == [frames] * 3
    assert entry["render_full"]["trip_count"] == 2  # an octave's steps in one loop whose length XLA knows
    assert results["tensorflow_imported"] is False  # the device machine has no TensorFlow


def test_gpu_bench_renders_with_dreamers_default_shapes_and_with_buckets(gpu_bench):
    _, results = gpu_bench
    entry = results["vgg16"][0]  # 64, 46 and 33 px octaves: one bucket, but two roll copy counts
    assert entry["render_full_buckets"]["compiles"] == entry["render_full"]["compiles"] == 2  # on a CPU: buckets


def test_host_bench_prints_its_rows(tmp_path):
    output = bench("bench_host.py", "--repeats", "1", tmp=tmp_path)
    for row in ("the octave in one call, per frame", "a call per frame, per frame", "Stepper.advance, 1 step",
                "loop step, trip count fixed", "loop step, trip count traced"):
        assert row in output
    assert float(output.split("traced / fixed, per loop step:")[1].split()[0]) > 0


def test_gpu_bench_builds_the_gallery_twice_and_logs_its_compiles(tmp_path):
    bench("bench_gpu.py", "--quick", "--skip", "vgg,effnet,torch", "--gallery-shapes", "one", "--out",
          str(tmp_path), tmp=tmp_path)
    gallery = json.loads((tmp_path / "bench_gpu.json").read_text())["gallery"]
    assert gallery["shapes"] == "one"
    for build in ("cold", "warm"):  # from an empty compile cache, then with the first build's programs
        assert gallery[build]["returncode"] == 0
        assert gallery[build]["renders"] == gallery[build]["jobs"] > 1  # --quick: one row, every style
    assert "XLA compile 1:" in (tmp_path / "gallery_build.log").read_text()
