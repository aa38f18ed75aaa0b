"""Pick the stepper written for the active Keras backend."""

import keras

from dreamer.errors import DreamerError


def make_stepper(extract, objective, xla: bool = False):
    """An object with `advance(image, shifts, step_size, tile_size, batch) -> (image, score)`."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        from dreamer.backend_tf import TensorFlowStepper

        return TensorFlowStepper(extract, objective, xla=xla)
    if backend == "jax":
        from dreamer.backend_jax import JaxStepper

        return JaxStepper(extract, objective)
    raise DreamerError(f"the {backend} Keras backend is not supported; set KERAS_BACKEND to tensorflow or jax")


def parameter_gradient(loss):
    """A callable `(params, *args) -> (gradient w.r.t. params, loss)` for a scalar `loss(params, *args)`."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        from dreamer.backend_tf import parameter_gradient

        return parameter_gradient(loss)
    if backend == "jax":
        from dreamer.backend_jax import parameter_gradient

        return parameter_gradient(loss)
    raise DreamerError(f"the {backend} Keras backend is not supported; set KERAS_BACKEND to tensorflow or jax")
