"""The octaves of a dream: the image sizes it dreams at, from the smallest to the full size."""

MIN_OCTAVE_SIDE = 32  # smaller octaves than this would shrink the deepest layers to nothing


def octave_shapes(height: int, width: int, octaves: int, scale: float) -> list[tuple[int, int]]:
    """Image shapes from the smallest octave to the full size (the short side kept >= MIN_OCTAVE_SIDE)."""
    shapes = []
    for i in range(octaves):
        factor = max(scale ** -(octaves - 1 - i), min(1.0, MIN_OCTAVE_SIDE / min(height, width)))
        shapes.append((max(1, round(height * factor)), max(1, round(width * factor))))
    return shapes
