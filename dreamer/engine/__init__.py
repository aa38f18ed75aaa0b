"""The dream itself: the octave loop and its schedule (loop), one ascent step in tiles (step, tiles, lapnorm),
what is maximised (objectives), how the picture is parameterised and jittered (parameterization, transforms,
visualize), the backends that run it (backends, backend_tf, backend_jax, steppers, hlo, precision, batching), and a
clip's frames carried one to the next along their optical flow (coherence).
It reads no file and writes none: dreamer.dreaming feeds it images and encodes what it yields."""

# Bump when a change to the engine alters the pictures it makes: it is part of every render's key.
ENGINE_VERSION = "1"
