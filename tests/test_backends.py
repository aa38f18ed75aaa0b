"""Which Keras backend renders when nothing names one: JAX where an NVIDIA GPU and CUDA JAX are, else TensorFlow."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

CHOOSE = "from dreamer.engine.backends import chosen_backend; print(chosen_backend())"
REPO = Path(__file__).resolve().parents[1]


def chosen(tmp_path, gpu: bool, cuda_jax: bool, **env) -> str:
    """chosen_backend() in a fresh interpreter, with an `nvidia-smi` program and a `jax_cuda12_plugin` package
    on its paths or not (no Keras config in its KERAS_HOME)."""
    tools, packages = tmp_path / "bin", tmp_path / "site"
    tools.mkdir(exist_ok=True)
    (packages / "jax_cuda12_plugin").mkdir(parents=True, exist_ok=True)
    if gpu:
        (tools / "nvidia-smi").write_text("#!/bin/sh\necho 'NVIDIA H100 80GB HBM3'\n")
        (tools / "nvidia-smi").chmod(0o755)
    (packages / "jax_cuda12_plugin" / "__init__.py").write_text("")
    path = [str(REPO)] + ([str(packages)] if cuda_jax else [])
    base = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    run_env = dict(base, PATH=f"{tools}:/usr/bin:/bin", PYTHONPATH=":".join(path), KERAS_HOME=str(tmp_path), **env)
    done = subprocess.run([sys.executable, "-c", CHOOSE], env=run_env, capture_output=True, text=True, check=True)
    return done.stdout.strip()


@pytest.mark.parametrize("gpu, cuda_jax, expected", [
    (False, False, "tensorflow"), (True, False, "tensorflow"), (False, True, "tensorflow"), (True, True, "jax")])
def test_jax_is_the_default_only_with_a_gpu_and_cuda_jax(tmp_path, gpu, cuda_jax, expected):
    assert chosen(tmp_path, gpu, cuda_jax) == expected


def test_a_named_backend_wins(tmp_path):
    assert chosen(tmp_path, True, True, KERAS_BACKEND="tensorflow") == "tensorflow"
    (tmp_path / "keras.json").write_text('{"backend": "tensorflow"}')
    assert chosen(tmp_path, True, True) == "tensorflow"
    assert chosen(tmp_path, False, False, KERAS_BACKEND="jax") == "jax"


def test_a_backend_that_is_not_installed_is_one_line_with_the_install_command(tmp_path):
    script = ("import sys; sys.modules['jax'] = None  # as if JAX were not installed\n"
              "from dreamer.cli import main; sys.exit(main(['render', 'noise', '--backend', 'jax']))")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path,
                          env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert done.returncode == 2
    assert done.stderr == ("error: the jax backend is not installed: pip install -e '.[jax]' "
                           '(on an NVIDIA GPU, a CUDA build too: pip install -U "jax[cuda12]")\n')


def test_native_log_lines_are_dropped_and_the_rest_passed_on():
    script = """
import os, sys
from dreamer.engine.backends import native_logs_dropped
with native_logs_dropped():
    os.write(2, b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\\n")
    os.write(2, b"I0000 00:00:1795776614.175553   32660 port.cc:153] oneDNN custom operations are on.\\n")
    os.write(2, b"E0000 00:00:1795773713.679777   27215 cuda_platform.cc:52] failed call to cuInit\\n")
    os.write(2, b"a native message of another kind\\n")
    print("a Python warning", file=sys.stderr)
print("after", file=sys.stderr)
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=str(REPO)), timeout=60)
    assert done.stderr == "a native message of another kind\na Python warning\nafter\n"


def test_a_render_writes_nothing_to_stderr(tmp_path):
    done = subprocess.run([sys.executable, "-m", "dreamer", "render", "noise:32x32", "--style", "vgg16-eyes",
                           "--octaves", "1", "--steps", "1", "--every", "1", "-o", str(tmp_path / "n.gif")],
                          capture_output=True, text=True, cwd=tmp_path, env=dict(os.environ, PYTHONPATH=str(REPO)),
                          timeout=300)
    assert done.returncode == 0 and done.stdout.startswith(str(tmp_path / "n.gif"))
    assert done.stderr == ""
