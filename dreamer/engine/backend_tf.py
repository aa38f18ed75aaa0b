"""The TensorFlow backend: the gradient of the objective w.r.t. the input, traced once for all sizes."""

import tensorflow as tf

from dreamer.engine.objectives import evaluate
from dreamer.engine.step import ascent_step


class Stepper:
    """Advances a dream by a few steps, one `tf.function` call per tile batch and step.

    `traces` counts how often TensorFlow traced the gradient (1 across all octaves and sizes).
    With `xla=True` the gradient is XLA-compiled (once per distinct tile shape). The engine calls it once
    per frame (`whole_octaves` False): its steps are Python calls anyway, and the progress bar moves.
    """

    whole_octaves = False

    def __init__(self, extract, objective, xla: bool = False):
        self.traces = 0

        @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32)], jit_compile=xla,
                     reduce_retracing=True)
        def gradient(images):
            self.traces += 1
            with tf.GradientTape() as tape:
                tape.watch(images)
                scores = evaluate(objective, extract, images)
                total = tf.reduce_sum(scores)
            return tape.gradient(total, images), scores

        self.gradient = gradient

    def advance(self, groups, shifts, step_size: float, tile_size: int, batch: int = 1, lapnorm: bool = False,
                keep=(), octaves=()):
        """Take one ascent step of the images in `groups` (a list of (B_g, H_g, W_g, 3) stacks, one size each)
        per row of `shifts` (steps, B, 2, the groups' images in order); return (the groups' new images, scores
        per image of the last step, per group the images after each step k in `keep` stacked, or None). Groups
        of different sizes take their steps one after the other. `octaves` (the render's octave shapes) is for
        steppers that pad images; this one takes any shape."""
        results, first = [], 0
        for images in groups:
            count = images.shape[0]
            results.append(self._step_group(images, shifts[:, first:first + count], step_size, tile_size,
                                            batch, lapnorm, keep))
            first += count
        images, scores, kept = zip(*results)
        return list(images), tf.concat(scores, 0), list(kept) if len(keep) else None

    def _step_group(self, images, shifts, step_size, tile_size, batch, lapnorm, keep):
        """`advance` for one group: its images, the last step's scores and its kept images stacked."""
        scores, kept = None, []
        for done, step_shifts in enumerate(shifts, 1):
            images, scores = ascent_step(self.gradient, images, [(int(dy), int(dx)) for dy, dx in step_shifts],
                                         step_size, tile_size, batch, lapnorm)
            if done in keep:
                kept.append(images)
        return images, scores, tf.stack(kept) if kept else None

    def canvas(self, octaves, tile_size: int):
        """None: every image dreams at its own size here, so only images of one size share network calls."""
        return None


def fused(fn, static_argnums: tuple = ()):
    """`fn` as it is: TensorFlow runs eager ops without compiling them, so fusing them saves no compiles."""
    return fn


def parameter_gradient(loss):
    """`step(params, *args) -> (d loss / d params, loss)` for a scalar `loss(params, *args)`, traced once
    per argument shape: the gradient of a render loop that optimises parameters, not pixels."""

    @tf.function(reduce_retracing=True)
    def step(params, *args):
        with tf.GradientTape() as tape:
            tape.watch(params)
            value = loss(params, *args)
        return tape.gradient(value, params), value

    return step
