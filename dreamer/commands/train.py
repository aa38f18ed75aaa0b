"""`dreamer train NAME ART_FOLDER`: fine-tune a zoo network on your art; its styles join `dreamer styles`."""

import sys

from dreamer.commands.argtypes import whole_number
from dreamer.gallery.settings import MAX_SEED
from dreamer.networks.trained import BASES

HELP = "fine-tune a network on your art; its styles join `dreamer styles`"


def arguments(parser) -> None:
    """`dreamer train`'s options on `parser`."""
    parser.add_argument("name", help="the new network's name (its styles: NAME-mid, NAME-deep, NAME-class)")
    parser.add_argument("art", metavar="ART_FOLDER",
                        help="a folder of class folders (movements, artists), or of art to tell from photos")
    parser.add_argument("--photos", metavar="FOLDER",
                        help="photos to tell the art from, for an art folder without class folders "
                             "(default: the gallery's inputs)")
    parser.add_argument("--network", default="effnet-lite0", choices=BASES,
                        help="the zoo network to fine-tune (effnet-lite0)")
    parser.add_argument("--epochs", type=whole_number(1, 1000), default=10,
                        help="at most this many passes over the images; stops early when held-out loss stalls (10)")
    parser.add_argument("--side", type=whole_number(32, 1024, "pixels"), default=224,
                        help="the square the network learns from (224)")
    parser.add_argument("--seed", type=whole_number(0, MAX_SEED), default=0, help="random seed (0)")


def run(args) -> int:
    """Train, save, and print the held-out accuracy and the new styles."""
    from dreamer.engine.backends import activate

    activate()
    from dreamer.gallery.settings import gallery_inputs
    from dreamer.training import train

    photos = args.photos or gallery_inputs()
    found = train(args.name, args.art, photos, base=args.network, epochs=args.epochs, side=args.side, seed=args.seed,
                  warn=lambda line: print(line, file=sys.stderr)).description
    print(f"{found['name']}: held-out accuracy {found['held_out_accuracy']:.0%} on {found['held_out_images']} "
          f"images (chance {found['chance']:.0%}), {', '.join(f'{c} {n}' for c, n in found['images'].items())}; "
          f"styles {found['name']}-mid, {found['name']}-deep, {found['name']}-class")
    return 0
