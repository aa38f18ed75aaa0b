"""`dreamer networks`: the networks `dreamer train` saved, with their classes and held-out accuracy."""

HELP = "list the networks you trained"


def run(args) -> int:
    """Print each trained network, two lines each (or where they would be)."""
    from dreamer.networks.trained import descriptions, networks_dir

    found = descriptions()
    if not found:
        print(f"no trained networks in {networks_dir()}; `dreamer train NAME ART_FOLDER` makes one")
    for name, d in found.items():
        print(f"{name:24} {d['base']:14} {len(d['classes'])} classes: {', '.join(d['classes'])}")
        print(f"{'':24} held-out accuracy {d['held_out_accuracy']:.0%} (chance {d['chance']:.0%}), "
              f"{sum(d['images'].values())} images at {d['side']} px, trained {d['created']}")
    return 0
