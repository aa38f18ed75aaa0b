"""A style as a TensorFlow SavedModel, for TensorFlow Serving: `serving_default(image, steps)` dreams a uint8 photo
(H, W, 3) through the style's octaves, `steps` steps an octave, and returns its frames (N, H, W, 3) uint8 as the
engine makes them: the photo, a frame every `every` steps, the finished dream.

The whole dream is one graph: the network in float32, an octave's steps in a `tf.while_loop`, the image as one tile.
Its random rolls come from TensorFlow's stateless generator (the seed is fixed at export) where the engine draws
them with NumPy, so the frames are close to the engine's, not the same bits."""

import tensorflow as tf

from dreamer.engine import objectives
from dreamer.engine.octaves import MIN_OCTAVE_SIDE
from dreamer.engine.tiles import roll_each
from dreamer.errors import DreamerError
from dreamer.networks import load_network
from dreamer.style import Style

SIGNATURE = [tf.TensorSpec([None, None, 3], tf.uint8, name="image"), tf.TensorSpec([], tf.int32, name="steps")]


def check_exportable(style: Style) -> None:
    """A one-line DreamerError for what the graph does not do: class styles (the visualisation recipe), guides,
    paintings, kept colours (Pillow) and Laplacian normalisation (shapes known in advance)."""
    for what, used in [("a class style", style.target_class), ("a guide image", style.guide),
                       ("a painting", style.style_image), ("keep_colors", style.keep_colors),
                       ("lapnorm", style.lapnorm)]:
        if used:
            raise DreamerError(f"{style.name}: {what} cannot be exported yet; export a style of layers, such as "
                               "vgg16-eyes")


def export(style: Style, folder, seed: int = 0) -> None:
    """Write `style` as a SavedModel into `folder` (which must not exist yet: Keras writes it)."""
    import keras

    check_exportable(style)
    objective = objectives.parse(style.objective) if style.objective else \
        objectives.from_style_parts(style.layers, style.channels)
    extract = load_network(style.network, "float32").extractor(sorted(objective.layers))

    def step(image, number):
        """One ascent step of `image` (1, h, w, 3) under a roll drawn for step `number`: the engine's ascent_step
        with the image as one tile."""
        shift = [roll(seed, number, tf.shape(image)[1], tf.shape(image)[2])]
        rolled = roll_each(image, shift)
        with tf.GradientTape() as tape:
            tape.watch(rolled)
            total = tf.reduce_sum(objectives.evaluate(objective, extract, rolled))
        grad = roll_each(tape.gradient(total, rolled), shift, -1)
        grad = grad / (tf.math.reduce_std(grad, axis=(1, 2, 3), keepdims=True) + 1e-8)
        return tf.clip_by_value(image + style.step_size * grad, -1.0, 1.0)

    def dream(image, steps):
        base = tf.cast(image, tf.float32)[None] / 127.5 - 1.0
        full = tf.shape(image)[:2]
        total, frames, previous = style.octaves * steps, tf.TensorArray(tf.uint8, 0, dynamic_size=True), None
        frames = frames.write(0, image)
        for octave in range(style.octaves):
            base_octave = _resize(base, _octave_shape(full, style.octaves - 1 - octave, style.octave_scale))
            current = base_octave if previous is None else \
                base_octave + _resize(previous[0] - previous[1], tf.shape(base_octave)[1:3])

            def body(done, current, frames, first=octave * steps, base_octave=base_octave):
                number = first + done + 1
                current = step(current, number)
                shown = tf.logical_or(number % style.every == 0, number == total)
                frames = tf.cond(shown, lambda: frames.write(frames.size(), _frame(base, current, base_octave)),
                                 lambda: frames)
                return done + 1, current, frames

            _, current, frames = tf.while_loop(lambda done, *_: done < steps, body, (0, current, frames))
            previous = (current, base_octave)
        return {"frames": frames.stack()}

    archive = keras.export.ExportArchive()
    archive.track(extract)
    archive.add_endpoint("serving_default", tf.function(dream, autograph=False), input_signature=SIGNATURE)
    archive.write_out(str(folder), verbose=False)


def roll(seed: int, number, height, width):
    """The (dy, dx) roll of step `number` (from 1) of an image `height` x `width`: TensorFlow's stateless draws,
    the same in the graph and out of it."""
    return (tf.random.stateless_uniform([], [seed, 2 * number], 0, height, tf.int32),
            tf.random.stateless_uniform([], [seed, 2 * number + 1], 0, width, tf.int32))


def _octave_shape(full, below: int, scale: float):
    """The engine's octave_shapes in graph ops: `full` (H, W) scaled by scale**-below, the short side kept at
    MIN_OCTAVE_SIDE or more (rounded half to even, as Python's round)."""
    size = tf.cast(full, tf.float64)
    factor = tf.maximum(tf.constant(scale ** -below, tf.float64),
                        tf.minimum(tf.constant(1.0, tf.float64), MIN_OCTAVE_SIDE / tf.reduce_min(size)))
    return tf.maximum(1, tf.cast(tf.round(size * factor), tf.int32))


def _resize(images, shape):
    """As the engine resizes (bilinear, antialiased), and not at all to the same shape."""
    return tf.cond(tf.reduce_all(tf.shape(images)[1:3] == shape), lambda: images,
                   lambda: tf.image.resize(images, shape, antialias=True))


def _frame(base, image, base_octave):
    """The full-size frame of an octave's `image`: the original `base` plus the detail dreamed into it, upscaled."""
    detail = _resize(image - base_octave, tf.shape(base)[1:3])
    return tf.cast(tf.clip_by_value(tf.round((tf.clip_by_value(base + detail, -1.0, 1.0) + 1.0) * 127.5), 0, 255),
                   tf.uint8)[0]
