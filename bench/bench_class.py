"""Benchmark the class visualisation step (the bananas style) and the networks with batch norms on this CPU.

1. One step of the bananas style as Dreamer takes it (a 448 x 673 Fourier image: a 213 x 320 gallery photo at
   the recipe's 448-px short side; 4 random crops of 224 px, rotated; EfficientNet-Lite0 to its logits; the
   gradient), against the same step with the crops resampled by Keras's `ops.image.scale_and_translate` (what
   `transforms.crop` called before its gathers), with the network's batch norms unfolded (each BN its own
   layer, as the model is built), and with both (the step before either change).
2. Each built-in network with batch norms: forward and gradient of a layer's mean for 4 images of 224 px,
   through `extractor` (batch norms folded into their convolutions) against the model as built.

Every variant is warmed up first; timed runs are interleaved (A, B, C, ..., B, C, ..., A) and medians
reported, of wall time and of CPU time (time.process_time: all threads).

Run: .venv/bin/python bench/bench_class.py [--repeats 7]
"""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ["KERAS_BACKEND"] = "tensorflow"

import keras  # noqa: E402
import numpy as np  # noqa: E402
from keras import ops  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from dreamer.engine import objectives
from dreamer.engine import parameterization
from dreamer.engine import transforms  # noqa: E402
from dreamer.engine.steppers import parameter_gradient  # noqa: E402
from dreamer.networks import class_names, load_network  # noqa: E402

SIZE = (448, 673)
CROPS = 4
NETWORK_LAYERS = {"effnet-lite0": "logits", "mobilenetv2": "block_13_expand_relu", "inceptionv3": "mixed5"}


def scale_and_translate_crop(low=0.35, high=1.0, size=224) -> transforms.Transform:
    """The crop as it was: one `ops.image.scale_and_translate` per image."""
    def apply(images, uniforms):
        height, width = images.shape[1], images.shape[2]
        crops = []
        for i in range(images.shape[0]):
            side = (low + (high - low) * uniforms[i, 0]) * min(height, width)
            scale = size / side
            top, left = uniforms[i, 1] * (height - side), uniforms[i, 2] * (width - side)
            crops.append(ops.image.scale_and_translate(
                images[i:i + 1], (1, size, size, 3), ops.stack([scale, scale]),
                ops.stack([-top * scale, -left * scale]), spatial_dims=(1, 2), method="linear", antialias=False))
        return ops.concatenate(crops, axis=0)

    return transforms.Transform(3, apply)


def unfolded(network, layers):
    """The extractor through the model as built: every batch norm its own layer."""
    return keras.Model(network.model.input, {name: network.model.get_layer(name).output for name in layers})


def class_step(extract, crop):
    """A callable running one visualisation step: (gradient w.r.t. the spectrum, score)."""
    objective = objectives.class_logit("banana", classes=class_names("effnet-lite0"))
    transform = transforms.compose(crop, transforms.rotate())
    step = parameter_gradient(lambda spectrum, uniforms: ops.mean(objectives.evaluate(
        objective, extract, transform(ops.repeat((parameterization.to_image(spectrum, *SIZE) * 2.0 - 1.0)[None],
                                                 CROPS, axis=0), uniforms))))
    spectrum = ops.convert_to_tensor(parameterization.from_uint8(
        np.random.default_rng(0).integers(0, 256, SIZE + (3,), dtype=np.uint8)))
    uniforms = ops.convert_to_tensor(transform.draw(np.random.default_rng(1), CROPS))
    return lambda: [np.asarray(x) for x in step(spectrum, uniforms)]


def network_step(extract, layer):
    """A callable running forward and gradient of `layer`'s mean for 4 images of 224 px."""
    step = parameter_gradient(lambda images: ops.mean(extract(images)[layer]))
    images = ops.convert_to_tensor(np.random.default_rng(2).uniform(-1, 1, (4, 224, 224, 3)), "float32")
    return lambda: np.asarray(step(images)[0])


def interleaved(variants: dict, repeats: int) -> dict:
    """name -> (median wall s, median CPU s) of `repeats` rounds, the order rotated each round."""
    for run in variants.values():
        run(), run()
    names, times = list(variants), {name: [] for name in variants}
    for round_ in range(repeats):
        for name in names[round_ % len(names):] + names[:round_ % len(names)]:
            wall, cpu = time.perf_counter(), time.process_time()
            variants[name]()
            times[name].append((time.perf_counter() - wall, time.process_time() - cpu))
    return {name: tuple(statistics.median(t[i] for t in runs) for i in (0, 1)) for name, runs in times.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    print(f"bench_class: TensorFlow {keras.backend.backend()} backend, {os.cpu_count()} CPUs, medians of "
          f"{args.repeats}")

    effnet = load_network("effnet-lite0")
    folded, plain = effnet.extractor(["logits"]), unfolded(effnet, ["logits"])
    steps = interleaved({"ours (gathers, folded)": class_step(folded, transforms.crop()),
                         "crop by scale_and_translate": class_step(folded, scale_and_translate_crop()),
                         "batch norms unfolded": class_step(plain, transforms.crop()),
                         "both (the step before)": class_step(plain, scale_and_translate_crop())}, args.repeats)
    print(f"\nbananas step: {SIZE[0]} x {SIZE[1]} Fourier image, {CROPS} crops of 224 px, EfficientNet-Lite0")
    print(f"{'variant':32} {'s/step':>8} {'CPU s':>8} {'250 steps':>10}")
    for name, (wall, cpu) in steps.items():
        print(f"{name:32} {wall:8.3f} {cpu:8.3f} {250 * wall:9.0f}s")
    ours = steps["ours (gathers, folded)"]
    for name in list(steps)[1:]:
        print(f"{name} / ours, s per step: {steps[name][0] / ours[0]:.2f} (CPU time: {steps[name][1] / ours[1]:.2f})"
              "   >1: ours faster")

    print("\nforward + gradient, 4 images of 224 px: batch norms folded (extractor) vs as built")
    print(f"{'network, layer':40} {'BNs':>4} {'folded ms':>10} {'built ms':>9} {'ratio':>6}")
    for name, layer in NETWORK_LAYERS.items():
        network = load_network(name)
        count = sum(type(x).__name__ == "BatchNormalization" for x in network.model.layers)
        times = interleaved({"folded": network_step(network.extractor([layer]), layer),
                             "built": network_step(unfolded(network, [layer]), layer)}, args.repeats)
        folded_s, built_s = times["folded"][0], times["built"][0]
        print(f"{name + ', ' + layer:40} {count:4d} {1000 * folded_s:10.1f} {1000 * built_s:9.1f} "
              f"{built_s / folded_s:6.2f}")


if __name__ == "__main__":
    main()
