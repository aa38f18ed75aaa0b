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
from dreamer.engine import octave_shapes
image = photo(96)
frames = run(STYLE, image)
run(STYLE.replace(steps=7, every=3), photo(120)[:100])  # another photo (same bucket), chunks of 3, 3 and 1 steps
shapes = {s for size in [(96, 96), (100, 120)] for s in octave_shapes(*size, STYLE.octaves, STYLE.octave_scale)}
print(json.dumps({"backend": keras.backend.backend(), "frames": len(frames), "shape": list(frames[-1].shape),
                  "gain": gain(STYLE, image, frames[-1]), "compiles": prepare(STYLE)[2].compiles,
                  "shapes": len(shapes)}))
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


def test_jax_compiles_a_program_per_shape_bucket_not_per_octave(jax_run):
    # two photos, two octaves each: four image shapes, all in the 128-px bucket, chunks of 1 to 5 steps
    assert jax_run["shapes"] == 4
    assert jax_run["compiles"] == 1
