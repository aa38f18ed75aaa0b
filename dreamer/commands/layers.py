"""`dreamer layers NETWORK`: a network's layers and their output shapes, to pick a style's layers from."""

HELP = "list a network's layers with their output shapes"


def arguments(parser) -> None:
    """`dreamer layers`'s argument on `parser`."""
    parser.add_argument("network", help="a network name (vgg16, hed, effnet-lite0) or source (keras:NAME, ...)")


def run(args) -> int:
    """Print the network's layers, one a line."""
    from dreamer.engine.backends import activate

    activate()
    from dreamer.networks import load_network

    for name, shape in load_network(args.network).layer_shapes():
        print(f"{name:32} {shape}")
    return 0
