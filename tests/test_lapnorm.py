"""Laplacian-pyramid gradient normalisation: exact bands, scale-free, low frequencies brought up."""

import numpy as np
import pytest

from dreamer.engine.lapnorm import laplacian_merge, laplacian_normalize, laplacian_split


@pytest.mark.parametrize("shape", [(64, 64, 3), (45, 37, 3), (7, 9, 3)])
def test_bands_merge_back_exactly_at_any_size(shape):
    image = np.random.default_rng(0).normal(size=shape).astype(np.float32)
    bands = laplacian_split(image[None], 4)
    assert [tuple(b.shape[1:3]) for b in bands][-1] == shape[:2] and len(bands) == 5
    assert np.abs(np.asarray(laplacian_merge(bands))[0] - image).max() < 1e-5


def test_normalised_gradient_keeps_its_shape_ignores_scale_and_lifts_low_frequencies():
    rng = np.random.default_rng(0)
    wave = np.repeat(np.sin(2 * np.pi * np.arange(64) / 64)[None, :, None], 64, axis=0).repeat(3, axis=2)
    gradient = (rng.normal(size=(64, 64, 3)) + 0.1 * wave).astype(np.float32)  # noise hides a slow wave
    normalised = np.asarray(laplacian_normalize(gradient[None]))[0]
    assert normalised.shape == gradient.shape
    assert np.allclose(np.asarray(laplacian_normalize(5.0 * gradient[None]))[0], normalised, atol=1e-4)

    def correlation(g):
        return np.corrcoef(g.ravel(), wave.ravel())[0, 1]

    assert correlation(gradient) < 0.1 < 0.3 < correlation(normalised)


def test_each_image_of_a_batch_is_normalised_on_its_own():
    rng = np.random.default_rng(1)
    gradients = rng.normal(size=(2, 40, 48, 3)).astype(np.float32) * np.array([1.0, 300.0])[:, None, None, None]
    together = np.asarray(laplacian_normalize(gradients))
    alone = [np.asarray(laplacian_normalize(g[None]))[0] for g in gradients]
    assert np.abs(together - np.stack(alone)).max() < 1e-4
    assert np.abs(together[1]).mean() == pytest.approx(np.abs(together[0]).mean(), rel=0.1)
