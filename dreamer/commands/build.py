"""`dreamer build` (and `python build.py`): build the gallery's site from its inputs, as gallery.toml says.

    dreamer build                  render what is new or changed, reuse the rest, write the pages
    dreamer build --dry-run        say what would render and what would be deleted
    dreamer build --only chelsea.jpg --only vgg16-eyes --force
    dreamer build --verify         check every file of the site against the manifest's sha256
    dreamer build --cluster auto   render on the Ray cluster this machine joined (ray start --address=...)

A build writes, replaces and deletes only the files its manifest records as Dreamer's; it never writes an
input, and one build at a time runs in an output folder (--wait waits for the one running).
"""

import argparse
import contextlib
import signal
import sys
from pathlib import Path

from dreamer.errors import DreamerError

HELP = "build the gallery's site: render what changed, write the pages"


def arguments(parser: argparse.ArgumentParser, config: Path = Path("gallery.toml")) -> argparse.ArgumentParser:
    """The build's options on `parser`; `config` is the gallery.toml used without --config."""
    parser.add_argument("--config", type=Path, default=config, help=f"settings file ({config})")
    parser.add_argument("--force", action="store_true", help="render again even what is up to date")
    parser.add_argument("--only", action="append", default=[], metavar="STYLE_OR_INPUT",
                        help="render only this style or input file (repeatable); the rest is kept as it is")
    parser.add_argument("--dry-run", action="store_true", help="show what would render; write nothing")
    parser.add_argument("--verify", action="store_true",
                        help="check every file's sha256 and every GIF's frames against the manifest; build nothing")
    parser.add_argument("--wait", action="store_true", help="if another build holds the site, wait for it")
    parser.add_argument("--cluster", metavar="ADDRESS",
                        help="render on Ray (pip install -e '.[cluster]'): auto, ray://HOST:PORT, HOST:PORT, local or "
                             "local:N (default: gallery.toml's cluster, else here, one render at a time)")
    return parser


def run(args) -> int:
    """Build (or verify) the site; 0 when every render is there, 1 when one failed, 2 on bad settings."""
    from dreamer.gallery import build
    from dreamer.gallery.cluster import ClusterLost
    from dreamer.gallery.files import STATE
    from dreamer.gallery.lock import holding
    from dreamer.gallery.settings import check_address, load
    from dreamer.gallery.verify import verify

    try:
        settings = load(args.config)
        if args.verify:
            lock = holding(settings.output / STATE, settings.output, wait=args.wait) if settings.output.is_dir() \
                else contextlib.nullcontext()
            with lock:
                return 1 if verify(settings.output, sys.stdout) else 0
        address = check_address(args.cluster) if args.cluster else settings.cluster
        executor = None
        if address and not args.dry_run:
            from dreamer.gallery.cluster import Cluster  # Ray is imported only here

            executor = Cluster(address)
            for note in executor.notes:
                print(note, file=sys.stderr)
        summary = build(settings, force=args.force, only=args.only, dry_run=args.dry_run, wait=args.wait,
                        executor=executor)
    except DreamerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1 if isinstance(exc, ClusterLost) else 2  # lost mid-build: a build that failed, not bad input
    except KeyboardInterrupt:
        print("interrupted: the site shows what is finished; run the build again to resume", file=sys.stderr)
        return 130
    return 0 if summary.ok else 1


def main(argv=None, config: Path = Path("gallery.toml")) -> int:
    """`dreamer build`'s options and run, for build.py."""
    parser = argparse.ArgumentParser(prog="build.py", description="Build the DeepDream gallery (site/) from inputs/.")
    return run(arguments(parser, config).parse_args(argv))


def stop_on_interrupt() -> None:
    """Ctrl-C stops the build after the render it is on, even where Python swallows the KeyboardInterrupt (raised
    inside a garbage-collector callback, it is only printed): for a command's own process only."""
    from dreamer.gallery import STOPPING

    def interrupt(signum, frame):
        STOPPING.set()
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, interrupt)
