"""Pick the gradient code written for the active Keras backend."""

import functools

import keras

from dreamer.errors import DreamerError


def _backend():
    """The module holding the backend-specific gradient code: backend_tf or backend_jax."""
    name = keras.backend.backend()
    if name == "tensorflow":
        from dreamer.engine import backend_tf

        return backend_tf
    if name == "jax":
        from dreamer.engine import backend_jax

        return backend_jax
    raise DreamerError(f"the {name} Keras backend is not supported; set KERAS_BACKEND to tensorflow or jax")


def make_stepper(extract, objective, xla: bool = False):
    """An object with `advance(groups, shifts, step_size, tile_size, batch, lapnorm, keep, octaves) -> (images per
    group, scores, kept images per group or None)`, `whole_octaves` (whether the engine hands it an octave's steps
    at once or a frame's) and `canvas(octaves, tile_size)` (the shape it pads a render to, or None)."""
    return _backend().Stepper(extract, objective, xla=xla)


def parameter_gradient(loss):
    """A callable `(params, *args) -> (gradient w.r.t. params, loss)` for a scalar `loss(params, *args)`."""
    return _backend().parameter_gradient(loss)


@functools.cache
def fused(fn, static_argnums: tuple = ()):
    """`fn` run as one compiled program per argument shape where the backend would otherwise compile each
    eager op as its own small program (JAX), and as it is where eager ops run uncompiled (TensorFlow)."""
    return _backend().fused(fn, static_argnums)
