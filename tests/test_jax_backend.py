"""The same engine on Keras's JAX backend (on CPU here): frames, objective gain, compilations."""

import json
import os
import subprocess
import sys

import pytest

from dreamer.engine.loop import _chunks
from dreamer.files.paths import cache_dir
from test_engine import STYLE, gain, photo, run

SCRIPT = """
import json
from pathlib import Path

import jax
import jax.numpy as jnp
import keras
import numpy as np
import skimage

from test_engine import STYLE, gain, photo, run
from dreamer.engine.backend_jax import Stepper, _fold_views, _looped_tiles, _periodic_views
from dreamer.engine.loop import dream, dream_batch
from dreamer.engine.octaves import octave_shapes
from dreamer.engine.hlo import loop_operations, loop_trip_count, program_bytes
from dreamer.dreaming import prepare, schedule_of
from dreamer.engine.tiles import tiled_gradient

# frames, gain and the stepper's programs: two photos, two octaves each, uneven chunks
image = photo(96)
frames = run(STYLE, image)
run(STYLE.replace(steps=7, every=3), photo(120)[:100])  # another photo (same bucket), chunks of 3, 2 and 1 steps
shapes = {s for size in [(96, 96), (100, 120)] for s in octave_shapes(*size, STYLE.octaves, STYLE.octave_scale)}
extract, objective, stepper, _ = prepare(STYLE)
compiles = stepper.compiles

# the small programs a photo of a new size compiles, besides the stepper's own
xla_compiles = []
jax.monitoring.register_event_duration_secs_listener(
    lambda name, secs, **_: xla_compiles.append(secs) if name.endswith("backend_compile_duration") else None)
run(STYLE, photo(112)[:80])
small = len(xla_compiles) - (stepper.compiles - compiles)

# a batch: the same operations per step, and each image's own frames
operations = [loop_operations(stepper.compiled([np.zeros((b, 96, 96, 3), np.float32)], np.zeros((3, b, 2), np.int32),
                                              0.03, 512, b, lapnorm=True)) for b in (1, 4)]
lap = schedule_of(STYLE.replace(octaves=1, steps=2, every=2, lapnorm=True))
pair = [photo(64), photo(64, skimage.data.coffee)]
together = list(dream_batch(stepper, pair, lap, seeds=[1, 2], batch=2))[-1]
alone = [list(dream(stepper, image, lap, seed=seed))[-1] for image, seed in zip(pair, [1, 2])]
batch_error = max(int(np.abs(a.astype(int) - b).max()) for a, b in zip(alone, together))

# an octave's steps in one call against a call per frame: the same frames, the loop's trip count known
per_frame = Stepper(extract, objective, whole_octaves=False)
odd = schedule_of(STYLE.replace(octaves=2, steps=7, every=3))  # calls of 3, 3, 1 steps, then 2, 3, 2
frames_in_octaves = list(dream(stepper, photo(64), odd))
octave_error = max(int(np.abs(a.astype(int) - b).max())
                   for a, b in zip(frames_in_octaves, dream(per_frame, photo(64), odd)))
per_frame_compiles = per_frame.compiles
calls = []
for counted in (stepper, per_frame):
    class Counted:
        whole_octaves = counted.whole_octaves

        def advance(self, *args, **kwargs):
            calls[-1] += 1
            return counted.advance(*args, **kwargs)
    calls.append(0)
    list(dream(Counted(), photo(64), odd))
trips = [loop_trip_count(stepper.compiled([np.zeros((1, 64, 64, 3), np.float32)], np.zeros((7, 1, 2), np.int32),
                                          0.03, 512, keep=[3, 6]))]

# one program a render: every octave padded to the bucket of the largest (200, 143, 102 px: 3 buckets)
three_octaves = STYLE.replace(octaves=3, steps=4, every=4)
one_shape, by_bucket = Stepper(extract, objective, one_shape=True), Stepper(extract, objective)
one_shape_frames = list(dream(one_shape, photo(200), schedule_of(three_octaves)))
list(dream(by_bucket, photo(200), schedule_of(three_octaves)))
one_shape_compiles = [one_shape.compiles, by_bucket.compiles]
one_shape_gain = gain(three_octaves, photo(200), one_shape_frames[-1])

# tiles: a loop over the network calls, against the unrolled calls
def network(tiles):
    return stepper._gradient_of(tiles, *stepper._weights())
pair_of_images = jnp.asarray(np.random.default_rng(1).uniform(-1, 1, (2, 150, 200, 3)), jnp.float32)
looped = jax.jit(lambda x: _looped_tiles(network, x, 64, 10))  # 12 tiles an image, 5 a call: 3 calls
unrolled = jax.jit(lambda x: tiled_gradient(network, x, 64, 10))
one_call = jax.jit(lambda x: _looped_tiles(network, x, 64, 24))
(grad_a, score_a), (grad_b, score_b) = looped(pair_of_images), unrolled(pair_of_images)
tile_errors = [float(jnp.abs(grad_a - grad_b).max() / jnp.abs(grad_b).max()),
               float(jnp.abs(score_a - score_b).max() / jnp.abs(score_b).max())]
convolutions = [f.lower(pair_of_images).compile().as_text().count("convolution(") for f in (looped, one_call, unrolled)]
tiled_style = STYLE.replace(octaves=1, steps=4, every=4, tile_size=64)  # 96 px: 4 calls of a tile each
tiled_gain = gain(tiled_style, photo(96), run(tiled_style, photo(96))[-1])

# the roll's gradient folded back with gathers, against jax.vjp; two images of different true sizes in one buffer
rng, fold_errors = np.random.default_rng(0), []
for (h, w), (H, W) in [((64, 64), (64, 64)), ((70, 100), (128, 128)), ((33, 20), (64, 64)), ((5, 64), (64, 128))]:
    x, g = (jnp.asarray(rng.normal(size=(2, H, W, 3)), jnp.float32) for _ in range(2))
    sizes, shifts = [(h, w), (max(1, h // 2), w - 3)], [(3, 50), (h - 1, 0)]
    _, back = jax.vjp(lambda x: _periodic_views(x, sizes, shifts), x)
    folded = _fold_views(g, sizes, shifts, (-(-H // sizes[1][0]), -(-W // sizes[1][1])))
    fold_errors.append(max(float(jnp.abs(back(g)[0][i, :a, :b] - folded[i, :a, :b]).max())
                           for i, (a, b) in enumerate(sizes)))

# a tile's memory for --batch auto: no compile, against what XLA's compiled program needs
before = len(xla_compiles)
tile_bytes = [stepper.tile_bytes(256, 256, 128), stepper.tile_bytes(256, 256, 256)]
tile_compiles = len(xla_compiles) - before
tile = jax.ShapeDtypeStruct((1, 128, 128, 3), jnp.float32)
xla_tile_bytes = program_bytes(jax.jit(stepper._gradient_of).lower(tile, *stepper._weights()).compile())

# photos of every shape whose long sides share a bucket: one canvas, one program, the frames each makes alone
mixed = [photo(200), photo(200, skimage.data.coffee)[:133], photo(200, skimage.data.chelsea)[:, 60:]]
canvas = Stepper(extract, objective, one_shape=True)
mixed_schedule = schedule_of(STYLE.replace(octaves=3, steps=2, every=2))
mixed_together = list(dream_batch(canvas, mixed, mixed_schedule, seeds=[1, 2, 3], batch=3))
mixed_compiles = [canvas.compiles]
mixed_error = max(int(np.abs(a.astype(int) - frames[i]).max())
                  for i, (image, seed) in enumerate(zip(mixed, [1, 2, 3]))
                  for a, frames in zip(dream(canvas, image, mixed_schedule, seed=seed), mixed_together))
mixed_compiles.append(canvas.compiles)
mixed_shapes = [list(frame.shape) for frame in mixed_together[-1]]
from dreamer.dreaming import _together
together_keys = {name: [[list(key), members] for key, members in _together(dict(enumerate(mixed + [photo(300)])),
                                                                           chosen, schedule_of(STYLE))]
                 for name, chosen in [("canvas", canvas), ("buckets", by_bucket)]}

# one shape by default: on an accelerator, for photos of one tile
octaves_of_200 = octave_shapes(200, 200, 3, 1.4)
pads = [by_bucket.canvas(octaves_of_200, 512)]
jax.default_backend = lambda: "gpu"  # what the default asks; nothing runs after this
pads += [by_bucket.canvas(octaves_of_200, 512), by_bucket.canvas(octaves_of_200, 128),
         Stepper(extract, objective, one_shape=False).canvas(octaves_of_200, 512)]

# the weights are the program's arguments, not constants folded into it
import re
program = stepper.compiled([np.zeros((1, 64, 64, 3), np.float32)], np.zeros((2, 1, 2), np.int32), 0.03, 512)
constants = [int(np.prod([int(d) for d in dims.split(",") if d]))
             for dims in re.findall(r"= \\w+\\[([\\d,]*)\\]\\S* constant\\(", program.as_text())]
weights = [int(np.prod(w.shape)) for w in jax.tree_util.tree_leaves(stepper._weights())]
weights_as_arguments = {"arguments": len(jax.tree_util.tree_leaves(program.input_shardings[0])),
                        "weights": len(weights), "largest_constant": max(constants, default=0),
                        "smallest_weight": min(weights)}

programs_dir = Path(jax.config.jax_compilation_cache_dir)  # the test's own: every program compiles afresh
print(json.dumps({"cached_programs": sorted(p.name.split("-")[0] for p in programs_dir.iterdir()),
                  "fold_errors": fold_errors, "backend": keras.backend.backend(),
                  "tile_bytes": tile_bytes, "xla_tile_bytes": xla_tile_bytes, "tile_compiles": tile_compiles,
                  "frames": len(frames), "shape": list(frames[-1].shape),
                  "gain": gain(STYLE, image, frames[-1]), "compiles": compiles, "operations": operations,
                  "batch_error": batch_error, "shapes": len(shapes), "small_compiles": small,
                  "octave_error": octave_error, "per_frame_compiles": per_frame_compiles, "trips": trips,
                  "octave_frames": len(frames_in_octaves), "calls": calls,
                  "one_shape_compiles": one_shape_compiles, "one_shape_gain": one_shape_gain,
                  "one_shape_frames": len(one_shape_frames), "pads": pads, "mixed_compiles": mixed_compiles,
                  "mixed_error": mixed_error, "mixed_shapes": mixed_shapes, "together_keys": together_keys,
                  "tile_errors": tile_errors, "convolutions": convolutions, "tiled_gain": tiled_gain,
                  "weights_as_arguments": weights_as_arguments}))
"""


@pytest.fixture(scope="module")
def jax_run(tmp_path_factory):
    pytest.importorskip("jax", reason="the [jax] extra is not installed: pip install -e .[jax]")
    env = dict(os.environ, KERAS_BACKEND="jax", PYTHONPATH=os.path.dirname(__file__),
               JAX_COMPILATION_CACHE_DIR=str(tmp_path_factory.mktemp("xla")))
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
    # two photos, two octaves each: four image shapes, all in the 128 x 128 bucket; an octave's steps in one
    # call: 10 steps keeping 1 frame (a frame every 5), then 7 keeping 2 (every 3): a program per step count
    assert jax_run["shapes"] == 4 and {len(_chunks(done, 7, 3, 14)) for done in (0, 7)} == {3}
    assert jax_run["compiles"] == 2


def test_jax_one_shape_compiles_one_program_a_render_and_dreams_as_tensorflow(jax_run):
    # a 200-px photo's three octaves fall in three 64-px buckets; padded to the largest's, one program
    style = STYLE.replace(octaves=3, steps=4, every=4)
    assert jax_run["one_shape_compiles"] == [1, 3]
    assert jax_run["one_shape_frames"] == len(run(style, photo(64)))
    assert jax_run["one_shape_gain"] == pytest.approx(gain(style, photo(200), run(style, photo(200))[-1]), rel=0.15)


def test_jax_pads_octaves_to_one_shape_by_default_on_an_accelerator_for_photos_of_one_tile(jax_run):
    # a 200-px photo: on the CPU, buckets; on a GPU, a 256-px square canvas with 512-px tiles, not with 128-px
    # ones (several tiles: its octaves' convolutions share the tile's shape anyway); one_shape=False wins everywhere
    assert jax_run["pads"] == [None, [256, 256], None, None]


def test_jax_dreams_photos_of_different_shapes_together_on_one_canvas(jax_run):
    # 200 x 200, 133 x 200 and 200 x 140 px, three octaves each (nine shapes) on a 256-px canvas: one program
    # for the batch of three, one for any of them alone, and each photo's own frames at its own size
    assert jax_run["mixed_compiles"] == [1, 2]
    assert jax_run["mixed_shapes"] == [[200, 200, 3], [133, 200, 3], [200, 140, 3]]
    assert jax_run["mixed_error"] <= 2
    # a gallery's photos: one group per canvas (the 300-px photo's is 320 px), or per size without one
    assert jax_run["together_keys"] == {"canvas": [[[256, 256], [0, 1, 2]], [[320, 320], [3]]],
                                        "buckets": [[[200, 200], [0]], [[133, 200], [1]], [[200, 140], [2]],
                                                    [[300, 300], [3]]]}


def test_jax_compiles_a_few_small_programs_per_octave_of_a_new_size(jax_run):
    # each octave's start, frames, padding and unpadding (of the image and of the images kept for frames) are
    # one XLA program (one compile) each, not one per eager op: 16 for the two octaves before the start and
    # the frames were jitted whole
    assert 0 < jax_run["small_compiles"] <= 6 * STYLE.octaves


def test_jax_dreams_images_together_as_it_dreams_each_alone(jax_run):
    assert jax_run["batch_error"] <= 2  # uint8 levels: each image's own rolls and Laplacian normalisation


def test_jax_dreams_an_octave_in_one_call_as_in_a_call_per_frame(jax_run):
    # the same rolls and frames whether the stepper takes an octave's steps at once (keeping the images its
    # frames show) or a frame's; at once, XLA knows the loop's trip count
    assert jax_run["octave_frames"] == 6  # the original, after steps 3, 6, 9, 12 and 14
    assert jax_run["calls"] == [2, 6]  # a call an octave, or a call a frame (and one for the octave's last step)
    assert jax_run["octave_error"] <= 1
    assert jax_run["per_frame_compiles"] == 4  # calls of 3 and 1 steps (46 px, padded), of 2 and 3 (64 px)
    assert jax_run["trips"] == [7]


def test_jax_loops_over_tile_groups_holding_the_network_once(jax_run):
    # two 150 x 200 images in 64-px tiles: 12 tiles each, 5 per call, so 3 calls (the last padded with repeats)
    assert max(jax_run["tile_errors"]) < 1e-5  # the gradient and scores of the unrolled calls
    looped, one_call, unrolled = jax_run["convolutions"]
    assert looped == one_call > 0 and unrolled >= 2 * looped
    style = STYLE.replace(octaves=1, steps=4, every=4, tile_size=64)  # a render in tiles: the gain TensorFlow gets
    assert jax_run["tiled_gain"] == pytest.approx(gain(style, photo(96), run(style, photo(96))[-1]), rel=0.15)


def test_jax_step_runs_the_same_operations_for_a_batch_as_for_one_image(jax_run):
    # rolls, folds and Laplacian normalisation are vectorised: on a GPU, 4 images launch the kernels 1 does
    one, four = jax_run["operations"]
    assert 20 < one and four < 1.05 * one  # per image, as before: 125 and 221


def test_jax_counts_the_memory_of_a_tile_for_auto_batches_without_compiling(jax_run):
    small, big = jax_run["tile_bytes"]
    assert jax_run["tile_compiles"] == 0
    assert jax_run["xla_tile_bytes"] <= small < 4 * jax_run["xla_tile_bytes"]  # an upper bound, not a wild one
    assert 2.5 * small < big < 5 * small  # four times the pixels: nearly four times the memory


def test_jax_folds_the_rolled_gradient_back_as_its_transpose(jax_run):
    # gathers instead of the scatter-add jax.vjp would use: the same sums, up to float rounding
    assert len(jax_run["fold_errors"]) == 4
    assert max(jax_run["fold_errors"]) < 1e-4


def test_jax_keeps_compiled_programs_in_the_dreamer_cache():
    pytest.importorskip("jax", reason="the [jax] extra is not installed: pip install -e .[jax]")
    script = "import jax, dreamer.engine.backend_jax; print(jax.config.jax_compilation_cache_dir)"
    env = {k: v for k, v in os.environ.items() if k != "JAX_COMPILATION_CACHE_DIR"}
    done = subprocess.run([sys.executable, "-c", script], env=dict(env, KERAS_BACKEND="jax"), capture_output=True,
                          text=True, timeout=300)
    assert done.stdout.strip().splitlines()[-1] == str(cache_dir() / "xla")


def test_jax_keeps_compiled_programs_for_the_next_run(jax_run):
    assert {"jit_advance", "jit__frames", "jit__octave_start"} <= set(jax_run["cached_programs"])  # small ones too


def test_jax_passes_the_weights_to_its_program_as_arguments(jax_run):
    found = jax_run["weights_as_arguments"]
    assert found["arguments"] > found["weights"] >= 20  # VGG16 to block4_conv3: 10 kernels and 10 biases
    assert found["largest_constant"] < found["smallest_weight"]  # none of them folded in as a constant
