"""Laplacian-pyramid gradient normalisation (the TF1 DeepDream tutorial's `lapnorm`).

The gradient is split into frequency bands, each band divided by its own RMS, and merged back:
low frequencies get as much weight as the high ones that usually dominate, so dreams come out
sharper, with less pixel noise.
"""

import numpy as np
from keras import ops

_BINOMIAL = np.outer([1, 4, 6, 4, 1], [1, 4, 6, 4, 1]).astype(np.float32) / 256.0  # 5x5 Gaussian-like


def _kernel(channels: int) -> np.ndarray:
    """The blur as a (5, 5, C, C) kernel that keeps channels apart."""
    return _BINOMIAL[:, :, None, None] * np.eye(channels, dtype=np.float32)


def _upsample(low, like):
    """`low` blown up 2x (transposed blur, 4 × the kernel so the mean is kept) to the shape of `like`."""
    pads = [like.shape[i] - (2 * low.shape[i] - 1) for i in (1, 2)]  # 'same' transposed conv gives 2n - 1 + pad
    return ops.conv_transpose(low, 4.0 * _kernel(low.shape[-1]), strides=2, padding="same", output_padding=pads)


def laplacian_split(image, levels: int) -> list:
    """Bands of a (1, H, W, C) image from the coarsest (a blurred, downsampled image) to the finest."""
    bands = []
    for _ in range(levels):
        low = ops.conv(image, _kernel(image.shape[-1]), strides=2, padding="same")
        bands.append(image - _upsample(low, image))
        image = low
    return [image] + bands[::-1]


def laplacian_merge(bands: list):
    """The image that `laplacian_split` split into `bands` (exactly)."""
    image = bands[0]
    for band in bands[1:]:
        image = _upsample(image, band) + band
    return image


def laplacian_normalize(gradients, levels: int = 4, eps: float = 1e-10):
    """`gradients` (B, H, W, C) with each of each image's `levels` + 1 Laplacian bands scaled to unit RMS
    (the whole batch in the same few convolutions)."""
    bands = laplacian_split(ops.convert_to_tensor(gradients, "float32"), levels)
    bands = [band / ops.maximum(ops.sqrt(ops.mean(ops.square(band), axis=(1, 2, 3), keepdims=True)), eps)
             for band in bands]
    return laplacian_merge(bands)
