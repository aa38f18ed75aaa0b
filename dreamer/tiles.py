"""Tiled gradients: big images go through the network in fixed-size tiles under a random roll."""

import math

from keras import ops


def tile_starts(length: int, tile: int) -> list[int]:
    """Start offsets of tiles of size `tile` covering `length`; the last tile ends flush with the edge
    (overlapping its neighbour) so every tile has the same shape and sees real pixels, not padding."""
    if length <= tile:
        return [0]
    starts = list(range(0, length - tile, tile))
    return starts + [length - tile]


def bucketed(length: int, tile: int, bucket: int | None) -> int:
    """The side a dimension is padded to before tiling: itself, or (with `bucket`) the next multiple of
    `bucket` below the tile size, so a compiler sees a handful of shapes instead of one per octave."""
    if bucket is None or length >= tile:
        return length
    return min(tile, math.ceil(length / bucket) * bucket)


def periodic_pad(image, height: int, width: int):
    """Extend `image` (H, W, C) periodically to (height, width): the same wrap-around as the roll."""
    h, w = image.shape[0], image.shape[1]
    if (h, w) == (height, width):
        return image
    return ops.tile(image, (math.ceil(height / h), math.ceil(width / w), 1))[:height, :width]


def tiled_gradient(gradient, image, tile_size: int, batch: int = 1, bucket: int | None = None):
    """Gradient of the objective w.r.t. `image` (H, W, 3), computed tile by tile, `batch` tiles per call.

    `gradient(tiles) -> (gradients, scores)`. Returns (gradient of the image's shape, sum of scores)."""
    height, width = image.shape[0], image.shape[1]
    padded_h, padded_w = bucketed(height, tile_size, bucket), bucketed(width, tile_size, bucket)
    padded = periodic_pad(image, padded_h, padded_w)
    th, tw = min(tile_size, padded_h), min(tile_size, padded_w)
    origins = [(y, x) for y in tile_starts(padded_h, th) for x in tile_starts(padded_w, tw)]
    if len(origins) == 1:
        grads, scores = gradient(padded[None])
        return grads[0, :height, :width], ops.sum(scores)
    result = ops.zeros_like(padded)
    total = 0.0
    for i in range(0, len(origins), batch):
        chunk = origins[i:i + batch]
        grads, scores = gradient(ops.stack([padded[y:y + th, x:x + tw] for y, x in chunk]))
        total = total + ops.sum(scores)
        for k, (y, x) in enumerate(chunk):
            result = ops.slice_update(result, (y, x, 0), grads[k])
    return result[:height, :width], total


def rolled_gradient(gradient, image, shift, tile_size: int, batch: int = 1, bucket: int | None = None):
    """The tiled gradient of `image` rolled by `shift` (dy, dx), rolled back: tile seams move each step."""
    rolled = ops.roll(image, shift, axis=(0, 1))
    result, score = tiled_gradient(gradient, rolled, tile_size, batch, bucket)
    return ops.roll(result, (-shift[0], -shift[1]), axis=(0, 1)), score
