"""One step of gradient ascent on a batch of images, in keras.ops: the same code runs under every backend."""

from keras import ops

from dreamer.engine.lapnorm import laplacian_normalize
from dreamer.engine.tiles import rolled_gradient


def ascent_step(gradient, images, shifts, step_size: float, tile_size: int, batch: int = 1, lapnorm: bool = False):
    """Roll each image of `images` (B, H, W, 3) by its shift, take the tiled gradient, normalise it per image
    (by its standard deviation, after a band-by-band Laplacian normalisation with `lapnorm`), step and
    clip to [-1, 1]. Returns (new images, objective scores per image)."""
    grad, scores = rolled_gradient(gradient, images, shifts, tile_size, batch)
    if lapnorm:
        grad = laplacian_normalize(grad)
    grad = grad / (ops.std(grad, axis=(1, 2, 3), keepdims=True) + 1e-8)  # each image on its own
    return ops.clip(images + step_size * grad, -1.0, 1.0), scores
