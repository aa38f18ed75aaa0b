"""Benchmark the dream engine on this machine and print a compact table of figures and ratios.

1. Our engine (dreamer.engine.loop.dream, vgg16-eyes: VGG16 block4_conv3) against a plain reimplementation of
   the TensorFlow DeepDream tutorial's loop (its TiledGradients + run_deep_dream_with_octaves), with the
   SAME Keras extractor, the same image (skimage's astronaut), octaves, steps and step size.
2. Our stepper with xla=True (the gradient XLA-compiled once per tile shape) against the default; and three
   photos dreamed together (engine.dream_batch, 3 tiles a network call: what `batch = "auto"` does on a CPU
   for photos of one tile) against one at a time, per image.
3. float32 against bfloat16 (Keras 'mixed_bfloat16'), with the CPU's bf16 flags and the rate of a plain
   matrix product in each (TensorFlow's oneDNN kernels): what the CPU itself does with bfloat16.
4. gif_bytes of 30 dream-like 512-px frames (the astronaut fading into a real dream of it).
5. Peak resident memory of a tiled dream of a 4000x3000 image, in a subprocess so the peak is its own.

Every variant is warmed up first (its first traced call and every octave shape, XLA compiles included)
outside the timing; timed runs are interleaved (A, B, C, D, B, C, D, A, ...) and medians reported, of wall
time and of CPU time (time.process_time: all threads), which a busy shared machine inflates less.

Run: .venv/bin/python bench/bench_engine.py [--size 512] [--steps 3] [--octaves 2] [--repeats 5] [--quick]
"""

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ["KERAS_BACKEND"] = "tensorflow"  # the tutorial loop is TensorFlow code

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from PIL import Image  # noqa: E402
from skimage import data  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from dreamer.media.gif import gif_bytes  # noqa: E402
from dreamer.engine.loop import Schedule, dream, dream_batch  # noqa: E402
from dreamer.engine.steppers import make_stepper  # noqa: E402
from dreamer.dreaming import prepare, schedule_of  # noqa: E402
from dreamer.networks import get_style  # noqa: E402

STYLE = "vgg16-eyes"
STEP_SIZE = 0.01  # the tutorial's; ours is set to the same
TOGETHER = 3  # photos dreamed at once in the batch variant


# --- The TensorFlow DeepDream tutorial's loop (tensorflow/docs, tutorials/generative/deepdream) ----------

def random_roll(img, maxroll):
    """The tutorial's random shift of up to `maxroll` pixels each way."""
    shift = tf.random.uniform(shape=[2], minval=-maxroll, maxval=maxroll, dtype=tf.int32)
    return shift, tf.roll(img, shift=shift, axis=[0, 1])


def calc_loss(img, model):
    """The tutorial's loss: the sum over the model's outputs of their mean activation."""
    acts = model(tf.expand_dims(img, axis=0))
    acts = list(acts.values()) if isinstance(acts, dict) else [acts]
    return tf.reduce_sum([tf.reduce_mean(tf.cast(a, tf.float32)) for a in acts])


class TiledGradients(tf.Module):
    """The tutorial's tiled gradient: roll, sum the gradients of every tile, roll back, divide by the std."""

    def __init__(self, model):
        self.model = model

    @tf.function(input_signature=(tf.TensorSpec(shape=[None, None, 3], dtype=tf.float32),
                                  tf.TensorSpec(shape=[2], dtype=tf.int32),
                                  tf.TensorSpec(shape=[], dtype=tf.int32)))
    def __call__(self, img, img_size, tile_size=512):
        shift, img_rolled = random_roll(img, tile_size)
        gradients = tf.zeros_like(img_rolled)
        xs = tf.range(0, img_size[1], tile_size)[:-1]
        if not tf.cast(len(xs), bool):
            xs = tf.constant([0])
        ys = tf.range(0, img_size[0], tile_size)[:-1]
        if not tf.cast(len(ys), bool):
            ys = tf.constant([0])
        for x in xs:
            for y in ys:
                with tf.GradientTape() as tape:
                    tape.watch(img_rolled)
                    img_tile = img_rolled[y:y + tile_size, x:x + tile_size]
                    loss = calc_loss(img_tile, self.model)
                gradients = gradients + tape.gradient(loss, img_rolled)
        gradients = tf.roll(gradients, shift=-shift, axis=[0, 1])
        gradients /= tf.math.reduce_std(gradients) + 1e-8
        return gradients


def tutorial_dream(get_tiled_gradients, image, steps_per_octave, octaves, octave_scale, tile_size=512):
    """The tutorial's run_deep_dream_with_octaves, its octaves range(1 - octaves, 1) so the sizes match ours."""
    base_shape = tf.shape(image)
    img = tf.convert_to_tensor(image, tf.float32) / 127.5 - 1.0  # inception_v3.preprocess_input
    for octave in range(1 - octaves, 1):
        new_size = tf.cast(tf.cast(base_shape[:-1], tf.float32) * (octave_scale ** octave), tf.int32)
        img = tf.image.resize(img, new_size)
        for _ in range(steps_per_octave):
            gradients = get_tiled_gradients(img, new_size, tf.constant(tile_size))
            img = img + gradients * STEP_SIZE
            img = tf.clip_by_value(img, -1, 1)
    return img.numpy()


# --- helpers -------------------------------------------------------------------------------------------

def astronaut(width, height=None):
    """skimage's astronaut as uint8 RGB, resized (Lanczos) to width x height."""
    photo = Image.fromarray(data.astronaut())
    return np.asarray(photo.resize((width, height or width), Image.Resampling.LANCZOS))


def cpu_info():
    """(model name, logical CPUs, {flag: present}) for the bf16-relevant flags."""
    text = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    model = next((line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("model name")),
                 platform.processor())
    flags = next((set(line.split(":", 1)[1].split()) for line in text.splitlines() if line.startswith("flags")), set())
    return model, os.cpu_count(), {f: f in flags for f in ("amx_bf16", "amx_tile", "avx512_bf16")}


def matmul_gflops(side: int, dtype, repeats: int) -> float:
    """The median GFLOP/s of a side x side matrix product in `dtype` (TensorFlow: oneDNN on x86)."""
    a, b = (tf.cast(tf.random.uniform((side, side)), dtype) for _ in range(2))
    product = tf.function(tf.matmul)
    product(a, b).numpy()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        product(a, b).numpy()
        times.append(time.perf_counter() - start)
    return 2 * side ** 3 / statistics.median(times) / 1e9


def peak_rss_gb():
    """This process's peak resident set (VmHWM), in GB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024 / 1e9
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9


def memory_child(width, height, steps):
    """Dream a width x height astronaut (one octave, tile 512) and print 'loaded_gb peak_gb seconds'."""
    style = get_style(STYLE).replace(precision="float32", octaves=1, steps=steps, every=steps)
    _, _, stepper = prepare(style)
    image = astronaut(width, height)
    loaded = peak_rss_gb()
    start = time.perf_counter()
    frames = list(dream(stepper, image, schedule_of(style)))
    assert frames[-1].shape == image.shape
    print(f"{loaded:.3f} {peak_rss_gb():.3f} {time.perf_counter() - start:.1f}")


def measure_memory(width, height, steps):
    """Run memory_child in a fresh interpreter; (model-loaded GB, peak GB, dream seconds)."""
    child = subprocess.run([sys.executable, __file__, "--memory-child", f"{width}x{height}", "--steps", str(steps)],
                           capture_output=True, text=True)
    if child.returncode != 0:
        sys.exit(f"memory child failed:\n{child.stderr[-2000:]}")
    return tuple(float(v) for v in child.stdout.split()[-3:])


def time_gif(frames, repeats):
    """Median seconds of gif_bytes over `repeats` runs, and the GIF's size in MB."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        info = gif_bytes(frames)
        times.append(time.perf_counter() - start)
    return statistics.median(times), len(info.data) / 1e6


# --- the benchmark ------------------------------------------------------------------------------------

def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=512, help="image side in px (default 512)")
    parser.add_argument("--steps", type=int, default=3, help="steps per octave (default 3)")
    parser.add_argument("--octaves", type=int, default=2, help="octaves (default 2)")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per variant (default 5)")
    parser.add_argument("--quick", action="store_true", help="tiny settings, for a smoke test")
    parser.add_argument("--memory-child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_child:
        return memory_child(*map(int, args.memory_child.split("x")), args.steps)
    if args.quick:
        args.size, args.steps, args.octaves, args.repeats = 128, 1, 2, 1
    gif_side, mem_shape, mem_steps = (128, (400, 300), 1) if args.quick else (512, (4000, 3000), 1)

    model_name, cpus, flags = cpu_info()
    print(f"machine: {model_name}, {cpus} CPUs; " + ", ".join(f"{f}: {'yes' if v else 'no'}" for f, v in flags.items()))
    print(f"TF {tf.__version__}; {platform.python_version()}; {time.strftime('%Y-%m-%d %H:%M')}")

    style = get_style(STYLE).replace(precision="float32", octaves=args.octaves, steps=args.steps, step_size=STEP_SIZE)
    schedule = schedule_of(style)
    warm = Schedule(**{**schedule.__dict__, "steps": 1})  # one step per octave: every shape traced once
    extract, objective, stepper = prepare(style)
    xla_stepper = make_stepper(extract, objective, xla=True)
    _, _, bf16_stepper = prepare(style.replace(precision="bfloat16"))
    tiled = TiledGradients(extract)  # the very same Keras model as our engine's
    image = astronaut(args.size)
    dreams = {}

    def ours(s, key):
        def run(schedule, seed):
            frames = list(dream(s, image, schedule, seed=seed))
            dreams[key] = frames[-1]
        return run

    def together(schedule, seed):
        list(dream_batch(stepper, [image] * TOGETHER, schedule, [seed + k for k in range(TOGETHER)], TOGETHER))

    def tutorial(schedule, seed):
        tf.random.set_seed(seed)
        tutorial_dream(tiled, image, schedule.steps, schedule.octaves, schedule.octave_scale, schedule.tile_size)

    variants = {"ours (float32)": ours(stepper, "f32"), "tutorial loop (float32)": tutorial,
                "ours, xla=True": ours(xla_stepper, "xla"), "ours, bfloat16": ours(bf16_stepper, "bf16"),
                f"ours, {TOGETHER} photos at once": together}
    images = {name: TOGETHER if name.endswith("at once") else 1 for name in variants}
    warmup = {}
    for name, run in variants.items():
        start = time.perf_counter()
        run(warm, 0)
        warmup[name] = time.perf_counter() - start
    wall, cpu = ({name: [] for name in variants} for _ in range(2))
    names = list(variants)
    for rep in range(args.repeats):
        for name in names[rep % len(names):] + names[:rep % len(names)]:  # interleaved, order rotated
            start, start_cpu = time.perf_counter(), time.process_time()
            variants[name](schedule, rep + 1)
            wall[name].append(time.perf_counter() - start)
            cpu[name].append(time.process_time() - start_cpu)

    n = schedule.total_steps
    med = {name: statistics.median(t) for name, t in wall.items()}
    med_cpu = {name: statistics.median(t) for name, t in cpu.items()}
    print(f"\ndream: astronaut {args.size} px, {args.octaves} octaves x {args.steps} steps = {n} steps, "
          f"VGG16 block4_conv3, tile {schedule.tile_size}; medians of {args.repeats} interleaved runs")
    print(f"{'variant':24s} {'warm-up s':>9s} {'dream s':>8s} {'(min-max)':>13s} {'img-steps/s':>11s} "
          f"{'s/step':>7s} {'CPU s/step':>10s}")
    for name, t in wall.items():
        spread = f"({min(t):.1f}-{max(t):.1f})"
        steps = n * images[name]
        print(f"{name:24s} {warmup[name]:9.2f} {med[name]:8.2f} {spread:>13s} {steps / med[name]:11.3f} "
              f"{med[name] / steps:7.3f} {med_cpu[name] / steps:10.3f}")

    def ratio(a, b):
        return f"{med[a] / med[b]:.2f} (CPU time: {med_cpu[a] / med_cpu[b]:.2f})"

    print(f"\nours / tutorial, steps/s:  {ratio('tutorial loop (float32)', 'ours (float32)')}   >1: ours faster")
    print(f"xla / plain, s per step:   {ratio('ours, xla=True', 'ours (float32)')}   <1: xla faster")
    print(f"bf16 / fp32, s per step:   {ratio('ours, bfloat16', 'ours (float32)')}   <1: bf16 faster")
    once = f"ours, {TOGETHER} photos at once"
    print(f"{TOGETHER} at once / one at a time, img-steps/s: {TOGETHER * med['ours (float32)'] / med[once]:.2f} "
          f"(CPU time: {TOGETHER * med_cpu['ours (float32)'] / med_cpu[once]:.2f})   >1: together faster")
    side = 512 if args.quick else 2048
    rates = [matmul_gflops(side, dtype, 3 if args.quick else 10) for dtype in (tf.float32, tf.bfloat16)]
    print(f"matmul {side}x{side}, GFLOP/s: float32 {rates[0]:.0f}, bfloat16 {rates[1]:.0f} "
          f"(bf16 / fp32 {rates[1] / rates[0]:.2f}: >1 where the CPU has fast bf16 units)")

    dreamed = np.asarray(Image.fromarray(dreams["f32"]).resize((gif_side, gif_side), Image.Resampling.LANCZOS))
    photo = astronaut(gif_side).astype(np.float32)
    t = np.linspace(0, 1, 30, dtype=np.float32)[:, None, None, None]
    frames = list(np.round((1 - t) * photo + t * dreamed).astype(np.uint8))
    gif_s, gif_mb = time_gif(frames, max(1, args.repeats))
    print(f"gif_bytes, 30 frames of {gif_side} px (astronaut -> its dream): {gif_s:.2f} s, {gif_mb:.2f} MB")

    loaded, peak, seconds = measure_memory(*mem_shape, mem_steps)
    print(f"peak RSS, {mem_shape[0]}x{mem_shape[1]} dream (1 octave x {mem_steps} step, tile 512, float32): "
          f"{peak:.2f} GB ({loaded:.2f} GB after loading the model; dream {seconds:.0f} s)")


if __name__ == "__main__":
    main()
