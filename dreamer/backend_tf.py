"""The one TensorFlow-specific piece of the engine: the gradient of the objective w.r.t. the input."""

import tensorflow as tf


class GradientStep:
    """`step(images) -> (gradients, scores)` for a batch of images of any size, traced once.

    `traces` counts how often TensorFlow traced the function (1 across all octaves and sizes).
    With `xla=True` the step is XLA-compiled (once per distinct tile shape).
    """

    def __init__(self, extract, objective, xla: bool = False):
        self.traces = 0

        @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32)], jit_compile=xla,
                     reduce_retracing=True)
        def step(images):
            self.traces += 1
            with tf.GradientTape() as tape:
                tape.watch(images)
                scores = objective(extract(images))
                total = tf.reduce_sum(scores)
            return tape.gradient(total, images), scores

        self._step = step

    def __call__(self, images):
        return self._step(images)
