"""`dreamer styles`: every style with its network, layers and parameters."""

HELP = "list the styles with their network, layers and parameters"


def run(args) -> int:
    """Print the zoo's styles and trained networks' styles, two lines each."""
    from dreamer.networks import all_styles

    for style in all_styles().values():
        layers = ", ".join(f"{name}×{weight:g}" for name, weight in style.layers.items())
        layers = style.objective or layers or f"class {style.target_class} (--class to change)"
        print(f"{style.name:24} {style.network:14} {layers}")
        print(f"{'':24} {style.octaves} octaves ×{style.octave_scale:g}, {style.steps} steps, "
              f"step {style.step_size:g}, a frame every {style.every}: {style.description}")
    return 0
