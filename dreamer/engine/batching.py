"""How many tiles go through the network in one call: a number, or `auto`, sized from free accelerator memory.

On an accelerator under the JAX backend `auto` is as many tiles as fit in MEMORY_SHARE of the free memory, one
tile's gradient counted by the sizes of the values its trace computes (an upper bound, found without compiling).
Elsewhere (a CPU; TensorFlow, which reports no free memory to size against) it is CPU_AUTO_BATCH for images of
one tile, so that a gallery's photos of one size dream together, and 1 for bigger images, whose tiles go one at
a time to keep memory low.
"""

BATCH_CHOICES = "a whole number from 1 to 256, or 'auto'"
MAX_AUTO_BATCH = 16  # a bigger batch hardly runs faster and costs a longer compile
MEMORY_SHARE = 0.6  # of the free memory: room for the images, XLA's scratch space and other programs
CPU_AUTO_BATCH = 4  # photos of one tile a call on a CPU: 1.15x the image-steps a second of one at a time for three
# 512-px photos on our 2-core CPU (bench/bench_engine.py), each a few hundred MB more memory at most


def check_batch(value):
    """`value` as a batch setting (an int in 1..256 or 'auto'); ValueError with BATCH_CHOICES otherwise."""
    if value == "auto":
        return value
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ValueError(BATCH_CHOICES)
    try:
        number = int(value)
    except ValueError:
        raise ValueError(BATCH_CHOICES) from None
    if not 1 <= number <= 256:
        raise ValueError(BATCH_CHOICES)
    return number


def free_accelerator_bytes() -> int | None:
    """Free memory of the accelerator the JAX backend computes on; None on a CPU or another backend."""
    import keras

    if keras.backend.backend() != "jax":
        return None
    import jax

    device = jax.devices()[0]
    stats = device.memory_stats() if device.platform != "cpu" else None
    if not stats or "bytes_limit" not in stats:
        return None
    return int(stats["bytes_limit"] - stats.get("bytes_in_use", 0))


def tiles_that_fit(free_bytes: int, tile_bytes: int, cap: int = MAX_AUTO_BATCH) -> int:
    """How many tiles of `tile_bytes` each fit in MEMORY_SHARE of `free_bytes` (1 to `cap`)."""
    return max(1, min(cap, int(free_bytes * MEMORY_SHARE) // max(1, tile_bytes)))


def resolve_batch(batch, stepper, height: int, width: int, tile_size: int) -> int:
    """The tiles per network call for images of height x width: `batch` itself, or for 'auto' as many
    tiles as fit in free accelerator memory (elsewhere CPU_AUTO_BATCH for images of one tile, else 1)."""
    if batch != "auto":
        return batch
    free = free_accelerator_bytes()
    if free is None or not hasattr(stepper, "tile_bytes"):
        return CPU_AUTO_BATCH if max(height, width) <= tile_size else 1
    return tiles_that_fit(free, stepper.tile_bytes(height, width, tile_size))
