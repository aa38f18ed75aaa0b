"""Pick the gradient step written for the active Keras backend."""

import keras

from dreamer.errors import DreamerError


def gradient_step(extract, objective, xla: bool = False):
    """A callable `images -> (gradients, scores)` for the current Keras backend."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        from dreamer.backend_tf import GradientStep

        return GradientStep(extract, objective, xla=xla)
    raise DreamerError(f"the {backend} Keras backend is not supported yet; set KERAS_BACKEND=tensorflow")
