"""Images as a decorrelated Fourier spectrum (lucid's `fft_image`): what optimising from static needs.

The parameters are a spectrum, shape (2, 3, H, W // 2 + 1) (real and imaginary parts per colour
channel). The image is sigmoid(decorrelate(irfft2(spectrum × scale) / 4)) in (0, 1), with
scale = sqrt(H·W) / max(f, 1 / max(H, W)) (f in cycles per pixel): low frequencies get big steps,
so gradient ascent grows shapes rather than pixel noise. `decorrelate` maps lucid's decorrelated
colour space to RGB with its colour matrix normalised by its largest column norm.
"""

import numpy as np
from keras import ops

COLOR_CORRELATION = np.array([[0.26, 0.09, 0.02],
                              [0.27, 0.00, -0.05],
                              [0.27, -0.09, 0.03]], dtype=np.float32)
COLOR_MATRIX = COLOR_CORRELATION / np.max(np.linalg.norm(COLOR_CORRELATION, axis=0))
EDGE = 1e-3  # images are clipped to [EDGE, 1 - EDGE] before the inverse sigmoid


def spectrum_scale(height: int, width: int) -> np.ndarray:
    """sqrt(H·W) / max(f, 1 / max(H, W)), shape (H, W // 2 + 1): lucid's 1/f decay (power 1), unitary."""
    fy = np.fft.fftfreq(height)[:, None]
    fx = np.fft.rfftfreq(width)[None, :]
    frequency = np.sqrt(fx * fx + fy * fy)
    return (np.sqrt(height * width) / np.maximum(frequency, 1.0 / max(height, width))).astype(np.float32)


def to_image(spectrum, height: int, width: int):
    """The (H, W, 3) image in (0, 1) that a spectrum (2, 3, H, W // 2 + 1) stands for; differentiable."""
    scale = ops.convert_to_tensor(spectrum_scale(height, width))
    real, imag = spectrum[0] * scale, spectrum[1] * scale
    # irfft2 = inverse FFT along H (as conj(fft(conj(x))) / H, H moved last), then irfft along W
    real, imag = ops.fft((ops.swapaxes(real, -1, -2), -ops.swapaxes(imag, -1, -2)))
    real, imag = ops.swapaxes(real, -1, -2) / height, -ops.swapaxes(imag, -1, -2) / height
    channels = ops.irfft((real, imag), fft_length=width)  # (3, H, W)
    decorrelated = ops.transpose(channels, (1, 2, 0)) / 4.0
    return ops.sigmoid(ops.matmul(decorrelated, ops.convert_to_tensor(COLOR_MATRIX.T)))


def from_image(image: np.ndarray) -> np.ndarray:
    """The spectrum whose `to_image` is `image` (H, W, 3) in [0, 1] (clipped to [EDGE, 1 - EDGE]): the
    exact inverse of the whole mapping, in numpy."""
    height, width = image.shape[:2]
    clipped = np.clip(image.astype(np.float64), EDGE, 1 - EDGE)
    decorrelated = np.log(clipped / (1 - clipped)) @ np.linalg.inv(COLOR_MATRIX.T.astype(np.float64))
    spectrum = np.fft.rfft2(4.0 * decorrelated.transpose(2, 0, 1)) / spectrum_scale(height, width)
    return np.stack([spectrum.real, spectrum.imag]).astype(np.float32)


def from_uint8(image: np.ndarray) -> np.ndarray:
    """The spectrum of a uint8 image (each value taken at the centre of its bin, so 0 and 255 stay finite)."""
    return from_image((image.astype(np.float32) + 0.5) / 256.0)
