"""Precision and backend: what `auto` picks from the hardware, and that both are part of a render's identity
(its log line and cache key here; test_gallery checks its manifest entry); sources only TensorFlow runs fail
alone, on one line, under JAX."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from keras.backend import standardize_dtype

from dreamer.engine import precision
from dreamer.gallery.keys import render_key
from dreamer.cli import main
from dreamer.errors import DreamerError
from dreamer.dreaming import prepare
from dreamer.networks import get_style

from conftest import REPO, make_tiny

FLAGS = "fpu vme sse sse2 avx avx2 avx512f"


def cpuinfo(tmp_path, flags: str) -> Path:
    path = tmp_path / "cpuinfo"
    path.write_text(f"processor\t: 0\nmodel name\t: Some Xeon\nflags\t\t: {flags}\n\nprocessor\t: 1\n")
    return path


def test_auto_counts_only_amx_as_native_bfloat16_on_a_cpu(tmp_path):
    assert precision.cpu_has_native_bf16(cpuinfo(tmp_path, FLAGS + " amx_bf16 amx_tile avx512_bf16"))
    assert not precision.cpu_has_native_bf16(cpuinfo(tmp_path, FLAGS + " avx512_bf16"))  # measured slower
    assert not precision.cpu_has_native_bf16(tmp_path / "missing")


@pytest.mark.parametrize("capabilities, native", [("8.0", True), ("9.0\n8.6", True), ("7.5", False),
                                                  ("9.0\n7.0", False), ("", False)])
def test_auto_reads_the_gpus_compute_capability_from_nvidia_smi(tmp_path, monkeypatch, capabilities, native):
    smi = tmp_path / "nvidia-smi"
    smi.write_text(f"#!/bin/sh\nprintf '{capabilities}\\n'\n")
    smi.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:/usr/bin:/bin")
    precision.gpu_has_native_bf16.cache_clear()
    try:
        assert precision.gpu_has_native_bf16() is native
    finally:
        precision.gpu_has_native_bf16.cache_clear()


@pytest.mark.parametrize("cpu, gpu, expected", [(False, False, "float32"), (True, False, "bfloat16"),
                                                (False, True, "bfloat16")])
def test_auto_resolves_from_the_hardware_and_names_pass_through(monkeypatch, cpu, gpu, expected):
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: cpu)
    monkeypatch.setattr(precision, "gpu_has_native_bf16", lambda: gpu)
    assert precision.resolve("auto") == expected
    assert precision.resolve("float32") == "float32" and precision.resolve("bfloat16") == "bfloat16"
    with pytest.raises(DreamerError, match="precision 'fp16' is not one of auto, float32, bfloat16"):
        precision.resolve("fp16")


def test_only_the_network_runs_in_bfloat16():
    extract, _, stepper, _ = prepare(get_style("vgg16-eyes").replace(precision="bfloat16"))
    image = np.random.default_rng(0).uniform(-1, 1, (1, 48, 48, 3)).astype(np.float32)
    assert standardize_dtype(extract(image)["block4_conv3"].dtype) == "bfloat16"
    images, scores, _ = stepper.advance([image], np.zeros((2, 1, 2), np.int32), 0.03, 512)
    assert standardize_dtype(images[0].dtype) == standardize_dtype(scores.dtype) == "float32"
    assert np.abs(np.asarray(images[0]) - image).max() > 0.01  # it stepped


def test_precision_and_backend_are_part_of_the_cache_key(monkeypatch):
    style = get_style("vgg16-eyes")
    keys = {p: render_key("ab" * 32, style.replace(precision=p), {"size": 320}) for p in precision.PRECISIONS}
    assert keys["float32"] != keys["bfloat16"]
    assert keys["auto"] == keys[precision.resolve("auto")]  # auto is keyed by what it picks here
    monkeypatch.setenv("KERAS_BACKEND", "jax")
    assert render_key("ab" * 32, style, {"size": 320}) not in keys.values()


def test_the_render_line_names_backend_and_precision(tmp_path, capsys):
    out = tmp_path / "noise.gif"
    assert main(["render", "noise:48x48", "--style", "vgg16-eyes", "--precision", "bfloat16", "--octaves", "1",
                 "--steps", "2", "--every", "2", "-o", str(out)]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith(str(out)) and " tensorflow bfloat16 " in line


def test_a_source_only_tensorflow_runs_fails_alone_under_jax(tmp_path):
    pytest.importorskip("jax", reason="the [jax] extra is not installed: pip install -e .[jax]")
    toml = ('size = 64\nstyles = ["vgg16-eyes", "hub-style"]\n[style.vgg16-eyes]\noctaves = 1\nsteps = 2\n'
            'every = 2\n[style.hub-style]\nnetwork = "hub:https://tfhub.dev/google/some/model/1"\n'
            'layers = { out = 1.0 }\noctaves = 1\nsteps = 2\nevery = 2\n')
    folder = make_tiny(tmp_path, toml, photos=("chelsea.jpg",))
    done = subprocess.run([sys.executable, str(REPO / "build.py"), "--config", str(folder / "gallery.toml")],
                          env=dict(os.environ, KERAS_BACKEND="jax", JAX_PLATFORMS="cpu"), capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 1, done.stderr[-2000:]
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert errors == ["error: chelsea.jpg · hub-style: https://tfhub.dev/google/some/model/1: hub and SavedModel "
                      "sources need KERAS_BACKEND=tensorflow"]
    assert "Traceback" not in done.stderr
    here = "bfloat16" if precision.cpu_has_native_bf16() else "float32"  # auto on this CPU (AMX or not)
    assert f"rendered chelsea.jpg · vgg16-eyes: 2 frames 64x43, jax {here}" in done.stdout
    assert "rendered 1, reused 0, failed 1" in done.stdout
