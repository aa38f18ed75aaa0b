"""Tiled gradients: big images go through the network in fixed-size tiles under a random roll.

Images come as a batch (B, H, W, 3) of the same size: every image's tiles go through the network
together, and each image keeps its own roll.
"""

from keras import ops


def tile_starts(length: int, tile: int) -> list[int]:
    """Start offsets of tiles of size `tile` covering `length`; the last tile ends flush with the edge
    (overlapping its neighbour) so every tile has the same shape and sees real pixels, not padding."""
    if length <= tile:
        return [0]
    starts = list(range(0, length - tile, tile))
    return starts + [length - tile]


def tile_groups(height: int, width: int, tile_size: int, count: int, batch: int = 1):
    """How `count` images of height x width go through the network: (tile height, tile width, the tile
    origins (y, x) in groups, one group a network call with up to `batch` tiles in all, at least one tile
    position of every image)."""
    th, tw = min(tile_size, height), min(tile_size, width)
    origins = [(y, x) for y in tile_starts(height, th) for x in tile_starts(width, tw)]
    per_call = max(1, batch // count)
    return th, tw, [origins[i:i + per_call] for i in range(0, len(origins), per_call)]


def tiled_gradient(gradient, images, tile_size: int, batch: int = 1):
    """Gradient of the objective w.r.t. `images` (B, H, W, 3), computed tile by tile.

    `gradient(tiles) -> (gradients, scores)`; each call gets the tiles of one of `tile_groups`. Returns
    (gradients of the images' shape, scores per image (B,))."""
    count, height, width = images.shape[0], images.shape[1], images.shape[2]
    th, tw, groups = tile_groups(height, width, tile_size, count, batch)
    if len(groups) == 1 and len(groups[0]) == 1:
        return gradient(images)
    result = ops.zeros_like(images)
    total = ops.zeros((count,))
    for chunk in groups:
        grads, scores = gradient(ops.concatenate([images[:, y:y + th, x:x + tw] for y, x in chunk], axis=0))
        total = total + ops.sum(ops.reshape(scores, (len(chunk), count)), axis=0)
        for k, (y, x) in enumerate(chunk):
            result = ops.slice_update(result, (0, y, x, 0), grads[k * count:(k + 1) * count])
    return result, total


def roll_each(images, shifts, sign: int = 1):
    """Roll image b of `images` (B, H, W, C) by `sign` * shifts[b] = (dy, dx), with wrap-around."""
    return ops.stack([ops.roll(images[b], (sign * dy, sign * dx), axis=(0, 1)) for b, (dy, dx) in enumerate(shifts)])


def rolled_gradient(gradient, images, shifts, tile_size: int, batch: int = 1):
    """The tiled gradient of each image rolled by its (dy, dx), rolled back: tile seams move each step."""
    result, scores = tiled_gradient(gradient, roll_each(images, shifts), tile_size, batch)
    return roll_each(result, shifts, -1), scores
