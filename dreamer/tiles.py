"""Tiled gradients: big images go through the network in fixed-size tiles under a random roll."""

from keras import ops


def tile_starts(length: int, tile: int) -> list[int]:
    """Start offsets of tiles of size `tile` covering `length`; the last tile ends flush with the edge
    (overlapping its neighbour) so every tile has the same shape and sees real pixels, not padding."""
    if length <= tile:
        return [0]
    starts = list(range(0, length - tile, tile))
    return starts + [length - tile]


def tiled_gradient(step, image, tile_size: int, batch: int = 1):
    """Gradient of the objective w.r.t. `image` (H, W, 3), computed tile by tile, `batch` tiles per call.

    Returns (gradient of the image's shape, sum of the tiles' scores)."""
    height, width = image.shape[0], image.shape[1]
    th, tw = min(tile_size, height), min(tile_size, width)
    origins = [(y, x) for y in tile_starts(height, th) for x in tile_starts(width, tw)]
    if len(origins) == 1:
        grads, scores = step(image[None])
        return grads[0], ops.sum(scores)
    gradient = ops.zeros_like(image)
    total = 0.0
    for i in range(0, len(origins), batch):
        chunk = origins[i:i + batch]
        tiles = ops.stack([image[y:y + th, x:x + tw] for y, x in chunk])
        grads, scores = step(tiles)
        total = total + ops.sum(scores)
        for (y, x), grad in zip(chunk, ops.unstack(grads) if len(chunk) > 1 else [grads[0]]):
            gradient = ops.slice_update(gradient, (y, x, 0), grad)
    return gradient, total


def rolled_gradient(step, image, shift, tile_size: int, batch: int = 1):
    """The tiled gradient of `image` rolled by `shift` (dy, dx), rolled back: tile seams move each step."""
    rolled = ops.roll(image, shift, axis=(0, 1))
    gradient, score = tiled_gradient(step, rolled, tile_size, batch)
    return ops.roll(gradient, (-shift[0], -shift[1]), axis=(0, 1)), score


