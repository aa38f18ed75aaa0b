"""One step of gradient ascent on an image, in keras.ops: the same code runs under every backend."""

from keras import ops

from dreamer.lapnorm import laplacian_normalize
from dreamer.tiles import rolled_gradient


def ascent_step(gradient, image, shift, step_size: float, tile_size: int, batch: int = 1, lapnorm: bool = False,
                bucket=None):
    """Roll, take the tiled gradient, normalise it (by its standard deviation, or band by band of a
    Laplacian pyramid with `lapnorm`), step and clip to [-1, 1].

    Returns (new image, objective score summed over the tiles)."""
    grad, score = rolled_gradient(gradient, image, shift, tile_size, batch, bucket)
    if lapnorm:
        grad = laplacian_normalize(grad)
    grad = grad / (ops.std(grad) + 1e-8)  # with lapnorm too, so that step sizes mean the same
    return ops.clip(image + step_size * grad, -1.0, 1.0), score
