#!/usr/bin/env bash
# The GPU benchmark of issue 5 (bench/bench_gpu.py) on the lent H100/H200, in one device call.
#
# The device machine has Python 3.12, JAX (CUDA), PyTorch, h5py, jinja2, tqdm, pillow, numpy, ml-dtypes,
# absl-py, rich, packaging (/work/.library/device/KINDS.md), but no TensorFlow, no Keras and no internet.
# What dreamer's JAX path imports that it lacks travels as wheels in .whl/ (already in .gitignore):
#   keras 3.15.1 (needs namex, optree), platformdirs (dreamer.paths): about 3 MB in all.
# No weights travel: bench_gpu.py gives every network random weights of its real architecture.
#
# 1. Here, once per session, from the repo root:       bash bench/gpu_run.sh prepare
#    (downloads the wheels into .whl/ and runs the CPU smoke test: --quick, about 3 minutes on 2 cores)
# 2. The device call (the `run` tool; the command is 1 line, well under 2,000 characters):
#      command:   bash bench/gpu_run.sh device
#      carry:     [".whl"]
#      timeout_s: 600
#    Arguments after `device` go to bench_gpu.py, e.g. `bash bench/gpu_run.sh device --skip gallery`.
#    The script's own budget (--budget 420 s: no section starts later; --gallery-timeout, 300 s and at most half
#    the budget, is kept for the gallery's builds) plus start-up keeps the command near 8 minutes, inside
#    `timeout 540`. A session has 15 device minutes: e.g. `--budget 400 --gallery-timeout 170` (run 3).
# 3. The table is the end of output_tail; $OUT brings back bench_host.log (the engine's fixed costs, run first,
#    in seconds), bench_gpu.log, bench_gpu.json and gallery_build.log.
#    Then call give_back unless rerunning at once, and copy the table into bench/RESULTS.md with the card.
set -u
cd "$(dirname "$0")/.."

case "${1:-}" in
prepare)
    python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
        --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d .whl \
        keras==3.15.1 namex==0.1.0 optree==0.20.0 platformdirs==4.14.8 || exit 1
    ls -la .whl
    KERAS_BACKEND=jax .venv/bin/python bench/bench_gpu.py --quick --device-check
    ;;
device)
    shift
    set -o pipefail
    out="${OUT:-/tmp/bench_gpu_out}"
    mkdir -p "$out"
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
        .whl/*.whl || exit 1
    export PYTHONPATH=/tmp/site KERAS_BACKEND=jax PYTHONUNBUFFERED=1
    nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.max.sm --format=csv || true
    python3 -c "import jax, keras; print('jax', jax.__version__, jax.devices(), 'keras', keras.__version__)" || exit 1
    timeout 60 python3 bench/bench_host.py 2>&1 | tee "$out/bench_host.log"
    timeout 540 python3 bench/bench_gpu.py --device-check --budget 420 --out "$out" "$@" 2>&1 \
        | tee "$out/bench_gpu.log"
    ;;
*)
    echo "usage: bash bench/gpu_run.sh prepare   (here)  |  bash bench/gpu_run.sh device [ARGS]   (device call)"
    exit 2
    ;;
esac
