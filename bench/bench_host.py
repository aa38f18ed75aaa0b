"""The JAX engine's fixed costs, apart from the network: per frame, per call and per loop step.

A one-convolution network on a 64-px image makes the network's own work negligible, so what is timed is
the engine: the host preparing a call (padding, roll offsets, weights), the compiled program's fixed
work (rolls, folds, normalisation), the frame (uint8 on the device, copy to the host), and the cost of a
loop step itself when the loop's trip count is traced or fixed (as in dreamer's Stepper, which takes an
octave's steps in one call). On a GPU a traced trip count makes XLA read the loop condition back to the host
after every step; the last rows say what that costs there. Runs anywhere JAX runs, in seconds.

Run: KERAS_BACKEND=jax python bench/bench_host.py [--repeats N]
"""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

if os.environ.setdefault("KERAS_BACKEND", "jax") != "jax":
    sys.exit(f"bench_host.py times the JAX backend; KERAS_BACKEND is {os.environ['KERAS_BACKEND']!r}")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402

from dreamer.engine import loop as engine
from dreamer.engine import objectives  # noqa: E402
from dreamer.engine.backend_jax import Stepper  # noqa: E402
from dreamer.engine.loop import Schedule  # noqa: E402

SIDE = 64
STEPS = 40
LOOP_STEPS = 1000


def median_ms(fn, repeats: int) -> float:
    """Median wall time of fn() in ms, after one untimed call; fn must block until its work is done."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def tiny_stepper(whole_octaves: bool = True) -> Stepper:
    """A Stepper over one 3x3 convolution with 4 channels: the network costs next to nothing."""
    inputs = keras.Input((None, None, 3))
    model = keras.Model(inputs, {"conv": keras.layers.Conv2D(4, 3, padding="same", name="conv")(inputs)})
    return Stepper(model, objectives.layer("conv"), whole_octaves=whole_octaves)


def engine_rows(repeats: int) -> list[tuple[str, float]]:
    image = np.random.default_rng(0).integers(0, 256, (SIDE, SIDE, 3), np.uint8)
    rows = []
    for every, whole_octaves in ((1, True), (4, True), (1, False)):
        stepper = tiny_stepper(whole_octaves)
        schedule = Schedule(octaves=1, octave_scale=1.4, steps=STEPS, step_size=0.01, every=every, tile_size=512)
        total = median_ms(lambda: list(engine.dream(stepper, image, schedule)), repeats)
        calls = "the octave in one call" if whole_octaves else "a call per frame"
        rows.append((f"engine.dream, a frame every {every} step(s), {calls}, per frame", total / (STEPS // every)))
    current = jnp.asarray(image[None] / 127.5 - 1.0, jnp.float32)
    shifts = np.zeros((1, 1, 2), np.int32)

    def calls():
        for _ in range(50):
            out = stepper.advance([current], shifts, 0.01, 512)
        out[0][0].block_until_ready()

    rows.append(("Stepper.advance, 1 step, per call", median_ms(calls, repeats) / 50))
    return rows


def loop_rows(repeats: int) -> list[tuple[str, float]]:
    """Microseconds per step of a loop whose body is one small elementwise kernel, trip count fixed or traced."""
    def body(_, x):
        return x * 0.999 + 0.001

    fixed = jax.jit(lambda x: jax.lax.fori_loop(0, LOOP_STEPS, body, x))
    traced = jax.jit(lambda x, n: jax.lax.fori_loop(0, n, body, x))
    x = jnp.ones((SIDE, SIDE, 3), jnp.float32)
    count = jnp.int32(LOOP_STEPS)
    return [("loop step, trip count fixed", median_ms(lambda: fixed(x).block_until_ready(), repeats)),
            ("loop step, trip count traced", median_ms(lambda: traced(x, count).block_until_ready(), repeats))]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=7, help="timed runs per row (default 7), medians")
    args = parser.parse_args(argv)
    device = jax.devices()[0]
    print(f"bench_host.py: jax {jax.__version__} on {device.platform} ({device.device_kind}); "
          f"{SIDE}-px image, one 3x3 convolution; medians of {args.repeats}")
    rows = engine_rows(args.repeats)
    for name, ms in rows:
        print(f"  {name:<72}{ms:8.3f} ms")
    in_octave, _, per_call_frame, _ = (ms for _, ms in rows)
    print(f"  what a call per frame adds to a frame: {per_call_frame - in_octave:.3f} ms")
    loops = loop_rows(args.repeats)
    for name, ms in loops:
        print(f"  {name:<72}{ms * 1e3 / LOOP_STEPS:8.2f} us")
    print(f"  traced / fixed, per loop step: {loops[1][1] / loops[0][1]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
