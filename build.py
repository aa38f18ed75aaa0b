#!/usr/bin/env python3
"""Build the DeepDream gallery in site/ from the photos in inputs/, as gallery.toml says.

    python build.py                  render what is new or changed, reuse the rest, write the pages
    python build.py --dry-run        say what would render and what would be deleted
    python build.py --only chelsea.jpg --only vgg16-eyes --force
    python build.py --verify         check every file of the site against the manifest's sha256
    python build.py --cluster auto   render on the Ray cluster this machine joined (ray start --address=...)

A build writes, replaces and deletes only the files its manifest records as Dreamer's; it never writes an
input, and one build at a time runs in an output folder (--wait waits for the one running).
"""

import argparse
import contextlib
import signal
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # works from a fresh clone, installed or not

from dreamer.errors import DreamerError  # noqa: E402
from dreamer.gallery import STOPPING, build  # noqa: E402
from dreamer.gallery.cluster import ClusterLost, check_address  # noqa: E402
from dreamer.lock import holding  # noqa: E402
from dreamer.settings import load  # noqa: E402
from dreamer.site_files import STATE  # noqa: E402
from dreamer.verify import verify  # noqa: E402


def _interrupt(signum, frame):
    STOPPING.set()  # seen after the current render, should the KeyboardInterrupt be swallowed on its way
    raise KeyboardInterrupt


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Build the DeepDream gallery (site/) from inputs/.")
    parser.add_argument("--config", type=Path, default=HERE / "gallery.toml", help="settings file (gallery.toml)")
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
    args = parser.parse_args(argv)
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
        print("interrupted: the site shows what is finished; run build.py again to resume", file=sys.stderr)
        return 130
    return 0 if summary.ok else 1


if __name__ == "__main__":
    signal.signal(signal.SIGINT, _interrupt)
    sys.exit(main())
