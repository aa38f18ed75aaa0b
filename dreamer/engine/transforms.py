"""Random image transforms, composable (lucid's idea): what makes an image that a person, not only the
network, recognises. Each sees the image at a different place, size and angle every step.

A transform is `apply(images (B, H, W, 3), uniforms (B, draws))`: its randomness comes in as uniform
numbers in [0, 1) drawn by the caller (`draw`), so it is seeded, and one traced or compiled step can
serve every step of a render.
"""

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
from keras import ops


@dataclass(frozen=True)
class Transform:
    """A random transform that needs `draws` uniform numbers per image."""

    draws: int
    apply: Callable

    def __call__(self, images, uniforms):
        return self.apply(images, uniforms)

    def draw(self, rng: np.random.Generator, batch: int) -> np.ndarray:
        """The uniform numbers for one call on `batch` images."""
        return rng.uniform(size=(batch, self.draws)).astype(np.float32)


def compose(*transforms: Transform) -> Transform:
    """The transforms applied in order, each reading its own columns of the uniform numbers."""
    def apply(images, uniforms):
        start = 0
        for transform in transforms:
            images = transform(images, uniforms[:, start:start + transform.draws])
            start += transform.draws
        return images

    return Transform(sum(t.draws for t in transforms), apply)


def crop(low: float = 0.35, high: float = 1.0, size: int = 224) -> Transform:
    """Square crops with a side of `low` to `high` of the image's short side, at random positions,
    resampled to `size` x `size` bilinearly, without antialiasing: measured on static into bananas (seed 0,
    448 px, 250 steps), antialiased crops grew a close-up of banana peel, plain ones a bunch of bananas.
    Pixel centres map to pixel centres and samples past an edge take the edge's value, as in
    `ops.image.scale_and_translate` (linear, no antialias); a crop is axis-aligned, so it is two
    gathers of rows and columns, which cost far less than that op's gradient on a CPU."""
    def apply(images, uniforms):
        height, width = images.shape[1], images.shape[2]
        side = (low + (high - low) * uniforms[:, 0]) * min(height, width)
        top, left = uniforms[:, 1] * (height - side), uniforms[:, 2] * (width - side)
        offsets = (ops.arange(size, dtype="float32") + 0.5)[None] * (side / size)[:, None] - 0.5  # (B, size)
        rows = _lerp_rows(images, top[:, None] + offsets)  # (B, size, W, C)
        columns = _lerp_rows(ops.transpose(rows, (0, 2, 1, 3)), left[:, None] + offsets)
        return ops.transpose(columns, (0, 2, 1, 3))

    return Transform(3, apply)


def _lerp_rows(images, positions):
    """The rows of `images` (B, H, W, C) at `positions` (B, n), each between its two nearest rows linearly,
    positions past an edge clamped to it: (B, n, W, C), by gathers from the batch's rows stacked."""
    batch, height = images.shape[0], images.shape[1]
    stacked = ops.reshape(images, (-1,) + tuple(images.shape[2:]))
    below = ops.floor(positions)
    fraction = ops.reshape(positions - below, (batch, -1, 1, 1))
    first = ops.arange(batch, dtype="int32")[:, None] * height
    below = ops.cast(below, "int32")

    def take(index):
        return ops.reshape(ops.take(stacked, first + ops.clip(index, 0, height - 1), axis=0),
                           (batch, -1) + tuple(images.shape[2:]))

    return take(below) * (1.0 - fraction) + take(below + 1) * fraction


def rotate(degrees: float = 10.0) -> Transform:
    """Rotations by up to ±`degrees` about the centre; the corners are filled by reflection."""
    def apply(images, uniforms):
        angle = (2.0 * uniforms[:, 0] - 1.0) * (degrees * math.pi / 180.0)
        cos, sin = ops.cos(angle), ops.sin(angle)
        cy, cx = (images.shape[1] - 1) / 2.0, (images.shape[2] - 1) / 2.0
        zero = ops.zeros_like(angle)
        # output pixel (x, y) samples the input at R(x - cx, y - cy) + (cx, cy)
        matrices = ops.stack([cos, -sin, cx - cos * cx + sin * cy,
                              sin, cos, cy - sin * cx - cos * cy, zero, zero], axis=1)
        return ops.image.affine_transform(images, matrices, interpolation="bilinear", fill_mode="reflect")

    return Transform(1, apply)


def standard(size: int = 224, low: float = 0.35, high: float = 1.0, degrees: float = 10.0) -> Transform:
    """The measured recipe of NOTES ("static into bananas"): random crops of 35-100 % of the side,
    resampled to 224 px, rotated by up to ±10°."""
    return compose(crop(low, high, size), rotate(degrees))
