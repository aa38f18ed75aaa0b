"""Feature visualisation: optimise an image from static (or a photo) until the network sees an objective.

The recipe that makes a *person* see the class (NOTES, "static into bananas"): the image is a
decorrelated Fourier spectrum (`parameterization`), every step scores a batch of randomly cropped and
rotated views of it (`transforms`) and takes an Adam step on the mean score; from static, the spectrum
also shrinks a little each early step, so the noise fades and what the objective grows stays. No I/O.
"""

import math
from dataclasses import dataclass

import numpy as np
from keras import ops

from dreamer.engine import objectives, parameterization, transforms
from dreamer.engine.steppers import parameter_gradient
from dreamer.media.images import noise_image


@dataclass(frozen=True)
class Recipe:
    """The numbers of one visualisation."""

    steps: int = 250
    learning_rate: float = 0.05
    every: int = 10  # a frame every `every` steps
    crops: int = 4  # random views of the image per step
    crop_size: int = 224
    decay: float = 0.98  # from static: the spectrum × decay after each of the first `decay_steps` steps
    decay_steps: int = 120
    contrast: bool = False  # stretch each frame's 1-99 % range to full range

    @property
    def frame_count(self) -> int:
        """The start, a frame every `every` steps, and the finished image."""
        return math.ceil(self.steps / self.every) + 1


def recipe_for(steps: int, **changes) -> Recipe:
    """The recipe fitted into `steps` steps: the same total decay (0.98^120) over the same first 48 %."""
    decay_steps = max(1, round(steps * Recipe.decay_steps / Recipe.steps))
    return Recipe(steps=steps, decay_steps=decay_steps, decay=Recipe.decay ** (Recipe.decay_steps / decay_steps),
                  **changes)


def stretch(image: np.ndarray, low: float = 1.0, high: float = 99.0) -> np.ndarray:
    """A uint8 image with its `low`-`high` percentile range (all channels together) stretched to 0-255."""
    lo, hi = np.percentile(image, [low, high])
    scaled = (image.astype(np.float32) - lo) * (255.0 / max(hi - lo, 1.0))
    return np.clip(np.round(scaled), 0, 255).astype(np.uint8)


def visualize(extract, objective, size=(224, 224), photo=None, recipe: Recipe = Recipe(), seed: int = 0,
              on_step=None):
    """Yield `recipe.frame_count` uint8 frames of an image optimised to raise `objective`.

    It starts from uniform noise of `size` (H, W), seeded by `seed`, or, given a `photo` (uint8
    H x W x 3), from that photo, without the decay; either is the first frame, exactly (never stretched).
    `on_step(done, total, score)` follows each step.
    """
    import keras

    rng = np.random.default_rng((seed, 1))  # for the transforms; the noise draws from `seed` itself
    height, width = size if photo is None else photo.shape[:2]
    start = noise_image(height, width, seed) if photo is None else photo
    transform = transforms.standard(recipe.crop_size)

    def loss(spectrum, uniforms):
        image = parameterization.to_image(spectrum, height, width) * 2.0 - 1.0
        views = transform(ops.repeat(image[None], recipe.crops, axis=0), uniforms)
        return ops.mean(objectives.evaluate(objective, extract, views))

    def frame(contrast=recipe.contrast):
        image = np.asarray(parameterization.to_image(spectrum.value, height, width))
        image = np.clip(np.floor(image * 256.0), 0, 255).astype(np.uint8)  # the inverse of `from_uint8`
        return stretch(image) if contrast else image

    step = parameter_gradient(loss)
    spectrum = keras.Variable(parameterization.from_uint8(start), name="spectrum")
    optimizer = keras.optimizers.Adam(recipe.learning_rate)
    yield frame(contrast=False)
    for done in range(1, recipe.steps + 1):
        gradient, score = step(spectrum.value, transform.draw(rng, recipe.crops))
        optimizer.apply_gradients([(-gradient, spectrum)])  # ascent
        if photo is None and done <= recipe.decay_steps:
            spectrum.assign(spectrum * recipe.decay)
        if on_step:
            on_step(done, recipe.steps, float(score))
        if done % recipe.every == 0 or done == recipe.steps:
            yield frame()
