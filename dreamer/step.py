"""One step of gradient ascent on an image, in keras.ops: the same code runs under every backend."""

from keras import ops

from dreamer.tiles import rolled_gradient


def ascent_step(gradient, image, shift, step_size: float, tile_size: int, batch: int = 1, bucket=None):
    """Roll, take the tiled gradient, normalise it by its standard deviation, step and clip to [-1, 1].

    Returns (new image, objective score summed over the tiles)."""
    grad, score = rolled_gradient(gradient, image, shift, tile_size, batch, bucket)
    grad = grad / (ops.std(grad) + 1e-8)
    return ops.clip(image + step_size * grad, -1.0, 1.0), score
