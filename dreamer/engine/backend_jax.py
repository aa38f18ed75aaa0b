"""The JAX backend: all the steps of an octave run in one compiled call.

`jax.jit` of `jax.grad` through `model.stateless_call`, with the weights passed as arguments (not
baked into the program as constants), and a `lax.fori_loop` over the steps whose roll offsets come
in as an array and whose trip count XLA knows (on a GPU, a traced count makes it read the loop condition back
to the host after each step). The images a frame needs are kept in the loop, so Python dispatches once an
octave. Images travel in buffers padded to multiples of `BUCKET` pixels, their true size passed as numbers,
so every octave and photo whose sizes share a bucket shares one compiled program, kept on disk (in the Dreamer
cache) for the next run. Per-image work (rolls, folds, normalisation) is vectorised over the batch: dreaming
several images together adds no operations to a step; and the tiles of a big image go through the network in
a loop, so the program holds the network once.
"""

import math
import os

import jax
import jax.numpy as jnp
import numpy as np

from dreamer.engine.lapnorm import laplacian_normalize
from dreamer.engine.objectives import INPUT
from dreamer.engine.octaves import MIN_OCTAVE_SIDE
from dreamer.engine.tiles import tile_groups, tiled_gradient
from dreamer.files.paths import cache_dir

BUCKET = 64
KEEP_SLOTS = 4  # kept images are allocated in blocks of this many: calls keeping 1-4 share a program

if not jax.config.jax_compilation_cache_dir:  # compiled programs outlive the process: a GPU compile with its
    jax.config.update("jax_compilation_cache_dir", str(cache_dir() / "xla"))  # autotuning takes ~20 s
if "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS" not in os.environ:  # the small per-shape programs too, not only
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)  # those that took a second or more


def _bucketed(side: int) -> int:
    """`side` rounded up to its shape bucket."""
    return math.ceil(side / BUCKET) * BUCKET


def _view_axis(image, axis: int, shift, length):
    """Along `axis`, the first `length` entries of `image` rolled by `shift` and repeated to its full extent."""
    return jnp.take(image, (jnp.arange(image.shape[axis]) - shift) % length, axis=axis)


def _fold_axis(grad, axis: int, shift, length, copies: int):
    """The transpose of `_view_axis`, written as gathers (XLA's scatter-add, jax.vjp's transpose of a gather,
    is slow on GPUs): entry i gets the gradient of each of its `copies` repeats in the view."""
    extent = grad.shape[axis]
    first = (jnp.arange(extent) + shift) % length
    broadcast = [1] * grad.ndim
    broadcast[axis] = extent
    total = 0.0
    for k in range(copies):
        index = first + k * length
        total = total + jnp.take(grad, jnp.minimum(index, extent - 1), axis=axis) * (index < extent).reshape(broadcast)
    return total


def _periodic_views(buffers, sizes, shifts):
    """Each image (the top-left (height, width) of its buffer, a row of `sizes`, (B, 2)) rolled by its shift
    (a row of `shifts`, (B, 2)) and repeated to the buffer's shape."""
    def view(image, size, shift):
        return _view_axis(_view_axis(image, 0, shift[0], size[0]), 1, shift[1], size[1])

    return jax.vmap(view)(buffers, jnp.asarray(sizes), jnp.asarray(shifts))


def _fold_views(grads, sizes, shifts, copies):
    """The gradient of each image from the gradient of its periodic view: each pixel sums its copies'."""
    def fold(grad, size, shift):
        return _fold_axis(_fold_axis(grad, 1, shift[1], size[1], copies[1]), 0, shift[0], size[0], copies[0])

    return jax.vmap(fold)(grads, jnp.asarray(sizes), jnp.asarray(shifts))


def _looped_tiles(gradient, images, tile_size: int, batch: int):
    """tiles.tiled_gradient with its network calls in a loop, so that the program holds the network's gradient
    once however many tiles the images have (unrolled, a 4000 x 3000 photo in 512-px tiles held 48 copies)."""
    count = images.shape[0]
    th, tw, groups = tile_groups(images.shape[1], images.shape[2], tile_size, count, batch)
    if len(groups) == 1:
        return tiled_gradient(gradient, images, tile_size, batch)
    per_call, last = len(groups[0]), groups[-1]
    table = jnp.array([*groups[:-1], last + last[-1:] * (per_call - len(last))], jnp.int32)  # (calls, per_call, 2)
    counted = jnp.array([[1.0] * len(g) + [0.0] * (per_call - len(g)) for g in groups])  # a repeated tile rewrites
    # the same gradient, but its score must not count twice

    def call(g, carry):
        result, total = carry
        tiles = jax.vmap(lambda yx: jax.lax.dynamic_slice(images, (0, yx[0], yx[1], 0), (count, th, tw, 3)))(table[g])
        grads, scores = gradient(tiles.reshape(per_call * count, th, tw, 3))
        total = total + jnp.sum(scores.reshape(per_call, count) * counted[g][:, None], axis=0)
        for k in range(per_call):  # in order: where tiles overlap, the later one's gradient stays, as unrolled
            result = jax.lax.dynamic_update_slice(result, grads[k * count:(k + 1) * count],
                                                  (0, table[g, k, 0], table[g, k, 1], 0))
        return result, total

    return jax.lax.fori_loop(0, len(groups), call, (jnp.zeros_like(images), jnp.zeros(count, jnp.float32)))


class Stepper:
    """Advances a dream by a few steps in one compiled call; `compiles` counts the programs traced.

    `whole_octaves`: the engine hands it an octave's steps in one call, keeping the images its frames need
    (the default); else one call per frame, as the TensorFlow stepper takes them. `one_shape`: every octave
    of a render is padded to one square canvas, the bucket of its long side, so that a render compiles one
    program, not one per octave bucket, and photos of any shape whose long sides share a bucket dream
    together in that program, at the price of more pixels per step in the lower octaves and in photos that
    are not square. By default (None) it does so on an accelerator when the canvas fits in one tile: there a
    compile costs ~20 s (cuDNN autotuning) and small octaves, bound by kernel launches, cost little more
    padded (bench/RESULTS.md, run 3); on a CPU, where compiles are cheap and every pixel costs, and for photos
    of several tiles, it keeps 64-px buckets."""

    def __init__(self, extract, objective, xla: bool = True, whole_octaves: bool = True,
                 one_shape: bool | None = None):  # JAX always uses XLA
        self.extract = extract
        self.whole_octaves = whole_octaves
        self.one_shape = one_shape
        self.compiles = 0

        def total(images, trainable, non_trainable):
            activations, _ = extract.stateless_call(trainable, non_trainable, images)
            scores = objective({**activations, INPUT: images})
            return jnp.sum(scores), scores

        gradient_of = jax.grad(total, has_aux=True)
        self._gradient_of = gradient_of
        self._tile_bytes = {}

        def advance(buffers, sizes, shifts, slots, trainable, non_trainable, step_size, tile_size, batch, lapnorm,
                    copies, kept_slots):
            self.compiles += 1
            inside = ((jnp.arange(buffers.shape[1])[None, :, None] < sizes[:, 0, None, None])
                      & (jnp.arange(buffers.shape[2])[None, None, :] < sizes[:, 1, None, None]))[..., None]
            pixels = jnp.sum(inside, axis=(1, 2, 3), keepdims=True) * 3

            def gradient(tiles):
                return gradient_of(tiles, trainable, non_trainable)

            def step(i, images):
                grads, scores = _looped_tiles(gradient, _periodic_views(images, sizes, shifts[i]), tile_size, batch)
                grad = _fold_views(grads, sizes, shifts[i], copies) * inside
                if lapnorm:
                    grad = laplacian_normalize(grad) * inside
                mean = jnp.sum(grad, axis=(1, 2, 3), keepdims=True) / pixels
                std = jnp.sqrt(jnp.sum(jnp.square(grad - mean) * inside, axis=(1, 2, 3), keepdims=True) / pixels)
                return jnp.clip(images + step_size * grad / (std + 1e-8), -1.0, 1.0), scores

            def body(i, carry):  # the new images also go to slot slots[i]: a kept one's, or the spare last slot
                images, scores = step(i, carry[0])
                return images, scores, jax.lax.dynamic_update_index_in_dim(carry[2], images, slots[i], 0)

            scores = jnp.zeros(buffers.shape[0], jnp.float32)
            if not kept_slots:
                return (*jax.lax.fori_loop(0, shifts.shape[0], lambda i, c: step(i, c[0]), (buffers, scores)), None)
            kept = jnp.zeros((kept_slots + 1, *buffers.shape), buffers.dtype)
            images, scores, kept = jax.lax.fori_loop(0, shifts.shape[0], body, (buffers, scores, kept))
            return images, scores, kept[:-1]

        self._advance = jax.jit(advance, static_argnums=(6, 7, 8, 9, 10, 11))

    def _weights(self):
        return ([v.value for v in self.extract.trainable_variables],
                [v.value for v in self.extract.non_trainable_variables])

    def tile_bytes(self, height: int, width: int, tile_size: int) -> int:
        """Device memory one tile's gradient needs at most, for images of height x width dreamed in tiles of
        `tile_size`: the sizes of every value its trace takes (the tile, the weights) or computes. Tracing
        compiles nothing (a GPU compile takes seconds); XLA fuses and reuses buffers, so its program needs
        less (measured by bench_gpu.py, which prints both)."""
        shape = tuple(min(tile_size, _bucketed(side)) for side in (height, width))
        if shape not in self._tile_bytes:
            tile = jax.ShapeDtypeStruct((1, *shape, 3), jnp.float32)
            jaxpr = jax.make_jaxpr(self._gradient_of)(tile, *self._weights()).jaxpr
            values = jaxpr.invars + [value for equation in jaxpr.eqns for value in equation.outvars]
            self._tile_bytes[shape] = sum(math.prod(value.aval.shape) * value.aval.dtype.itemsize for value in values)
        return self._tile_bytes[shape]

    def canvas(self, octaves, tile_size: int) -> tuple[int, int] | None:
        """The square buffer (side, side) every octave of a render of these octave shapes is padded to (see
        `one_shape`), or None when each octave keeps its own 64-px bucket. Renders of one canvas can dream
        together whatever their shapes."""
        side = max(_bucketed(side) for shape in octaves for side in shape)
        if self.one_shape is None:
            pads = jax.default_backend() != "cpu" and side <= tile_size
        else:
            pads = self.one_shape
        return (side, side) if pads else None

    def _arguments(self, groups, shifts, step_size: float, tile_size: int, batch: int, lapnorm: bool,
                   keep=(), octaves=()) -> tuple:
        """What the compiled program takes for `advance`'s arguments: the groups' images padded into one buffer,
        each image's true size, shifts, each step's slot for its images, weights, then the numbers that select
        a program."""
        sizes = [tuple(images.shape[1:3]) for images in groups]
        canvas = self.canvas(octaves, tile_size) if len(octaves) else None
        padded = canvas or (_bucketed(max(h for h, _ in sizes)), _bucketed(max(w for _, w in sizes)))
        if canvas:  # the roll's copies: enough for every octave any photo on this canvas has, so one program
            smallest = (min(MIN_OCTAVE_SIDE, *(side for shape in octaves for side in shape)),) * 2
        else:
            smallest = (min(h for h, _ in sizes), min(w for _, w in sizes))
        buffers = [jnp.asarray(images, jnp.float32) for images in groups]
        buffers = [images if (h, w) == padded else jnp.pad(images, ((0, 0), (0, padded[0] - h), (0, padded[1] - w),
                                                                   (0, 0)))
                   for images, (h, w) in zip(buffers, sizes)]
        buffers = buffers[0] if len(buffers) == 1 else jnp.concatenate(buffers)
        kept_slots = -(-len(keep) // KEEP_SLOTS) * KEEP_SLOTS
        slots = np.full(len(shifts), kept_slots, np.int32)  # on the host: numpy
        slots[np.asarray(keep, int) - 1] = np.arange(len(keep))
        rows = np.array([size for images, size in zip(groups, sizes) for _ in range(images.shape[0])], np.int32)
        return (buffers, rows, np.asarray(shifts, np.int32), slots, *self._weights(),
                float(step_size), int(tile_size), int(batch), bool(lapnorm),
                (-(-padded[0] // smallest[0]), -(-padded[1] // smallest[1])), kept_slots)

    def compiled(self, groups, shifts, step_size: float, tile_size: int, batch: int = 1, lapnorm: bool = False,
                 keep=(), octaves=()):
        """The compiled program `advance` runs for these arguments (to read its HLO text or memory use)."""
        arguments = self._arguments(groups, shifts, step_size, tile_size, batch, lapnorm, keep, octaves)
        return self._advance.lower(*arguments).compile()

    def advance(self, groups, shifts, step_size: float, tile_size: int, batch: int = 1, lapnorm: bool = False,
                keep=(), octaves=()):
        """Take one ascent step of the images in `groups` (a list of (B_g, H_g, W_g, 3) stacks, one size each)
        per row of `shifts` (steps, B, 2, the groups' images in order), all in one buffer; return (the groups'
        new images, scores per image of the last step, per group the images after each step k in `keep` stacked
        (K, B_g, H_g, W_g, 3), or None). `octaves`: the shapes of all the groups' octaves (for `one_shape`)."""
        buffers, scores, kept = self._advance(*self._arguments(groups, shifts, step_size, tile_size, batch, lapnorm,
                                                               keep, octaves))
        first = np.cumsum([0] + [images.shape[0] for images in groups])
        parts = [(slice(a, b), slice(0, images.shape[1]), slice(0, images.shape[2]))
                 for a, b, images in zip(first, first[1:], groups)]
        whole = len(groups) == 1 and tuple(groups[0].shape[1:3]) == buffers.shape[1:3]
        return ([buffers if whole else buffers[part] for part in parts], scores,
                [kept[(slice(0, len(keep)), *part)] for part in parts] if len(keep) else None)


def fused(fn, static_argnums: tuple = ()):
    """`fn` jitted: one program per argument shape instead of a small program for each of its eager ops."""
    return jax.jit(fn, static_argnums=static_argnums)


def parameter_gradient(loss):
    """`step(params, *args) -> (d loss / d params, loss)` for a scalar `loss(params, *args)`, compiled once
    per argument shape (the network's weights are baked in as constants)."""
    value_and_grad = jax.jit(jax.value_and_grad(loss))

    def step(params, *args):
        value, gradient = value_and_grad(params, *args)
        return gradient, value

    return step
