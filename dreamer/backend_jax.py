"""The JAX backend: all the steps between two frames run in one compiled call.

`jax.jit` of `jax.grad` through `model.stateless_call`, with the weights passed as arguments (not
baked into the program as constants), and a `lax.fori_loop` over the steps whose roll offsets come
in as an array. Images are padded to shape buckets so a render compiles a handful of programs.
"""

import jax
import jax.numpy as jnp

from dreamer.objectives import INPUT
from dreamer.step import ascent_step


class Stepper:
    """Advances a dream by a few steps in one compiled call; `compiles` counts the programs traced."""

    bucket = 128

    def __init__(self, extract, objective, xla: bool = True):  # JAX always compiles with XLA
        self.extract = extract
        self.compiles = 0

        def total(images, trainable, non_trainable):
            activations, _ = extract.stateless_call(trainable, non_trainable, images)
            scores = objective({**activations, INPUT: images})
            return jnp.sum(scores), scores

        gradient_of = jax.grad(total, has_aux=True)

        def advance(images, shifts, trainable, non_trainable, step_size, tile_size, batch, lapnorm):
            self.compiles += 1

            def gradient(tiles):
                return gradient_of(tiles, trainable, non_trainable)

            def body(i, carry):
                step_shifts = [(shifts[i, b, 0], shifts[i, b, 1]) for b in range(images.shape[0])]
                return ascent_step(gradient, carry[0], step_shifts, step_size, tile_size, batch, lapnorm,
                                   self.bucket)

            return jax.lax.fori_loop(0, shifts.shape[0], body, (images, jnp.zeros(images.shape[0], jnp.float32)))

        self._advance = jax.jit(advance, static_argnums=(4, 5, 6, 7))

    def advance(self, images, shifts, step_size: float, tile_size: int, batch: int = 1, lapnorm: bool = False):
        """Take one ascent step of `images` (B, H, W, 3) per row of `shifts` (steps, B, 2); return
        (images, scores per image of the last step)."""
        return self._advance(jnp.asarray(images, jnp.float32), jnp.asarray(shifts, jnp.int32),
                             [v.value for v in self.extract.trainable_variables],
                             [v.value for v in self.extract.non_trainable_variables],
                             float(step_size), int(tile_size), int(batch), bool(lapnorm))


def parameter_gradient(loss):
    """`step(params, *args) -> (d loss / d params, loss)` for a scalar `loss(params, *args)`, compiled once
    per argument shape (the network's weights are baked in as constants)."""
    value_and_grad = jax.jit(jax.value_and_grad(loss))

    def step(params, *args):
        value, gradient = value_and_grad(params, *args)
        return gradient, value

    return step
