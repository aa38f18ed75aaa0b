"""The same engine on Keras's JAX backend (on CPU here): frames, objective gain, compilations."""

import json
import os
import subprocess
import sys

import pytest

from test_engine import STYLE, gain, photo, run

SCRIPT = """
import json, sys
import keras
from test_engine import STYLE, gain, photo, run
from dreamer.render import prepare
image = photo(96)
frames = run(STYLE, image)
print(json.dumps({"backend": keras.backend.backend(), "frames": len(frames), "shape": list(frames[-1].shape),
                  "gain": gain(STYLE, image, frames[-1]), "compiles": prepare(STYLE)[2].compiles}))
"""


@pytest.fixture(scope="module")
def jax_run():
    pytest.importorskip("jax", reason="the [jax] extra is not installed: pip install -e .[jax]")
    env = dict(os.environ, KERAS_BACKEND="jax", PYTHONPATH=os.path.dirname(__file__))
    done = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_jax_frames_match_the_schedule(jax_run):
    assert jax_run["backend"] == "jax"
    assert jax_run["frames"] == len(run(STYLE, photo(96)))
    assert jax_run["shape"] == [96, 96, 3]


def test_jax_gain_matches_tensorflow(jax_run):
    image = photo(96)
    assert jax_run["gain"] > 3.0
    assert jax_run["gain"] == pytest.approx(gain(STYLE, image, run(STYLE, image)[-1]), rel=0.15)


def test_jax_compiles_one_program_per_octave_shape(jax_run):
    # two octaves, every chunk of steps the same length: one program per octave shape, not per step
    assert jax_run["compiles"] <= STYLE.octaves
