"""The `dreamer` command: one module a verb in dreamer.commands (render, styles, layers, train, networks, build,
serve, export, init, fetch), each with its HELP, its arguments and its run."""

import argparse
import sys

from dreamer.commands import build, export, fetch, init, layers, networks, render, serve, styles, train
from dreamer.errors import DreamerError

VERBS = {"render": render, "styles": styles, "layers": layers, "train": train, "networks": networks,
         "build": build, "serve": serve, "export": export, "init": init, "fetch": fetch}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dreamer", description="DeepDream GIFs from photos.")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, verb in VERBS.items():
        verb_parser = sub.add_parser(name, help=verb.HELP)
        if hasattr(verb, "arguments"):
            verb.arguments(verb_parser)
    return parser


def main(argv=None) -> int:
    """Entry point of `dreamer` and `python -m dreamer`."""
    args = _parser().parse_args(argv)
    try:
        if args.command == "build":
            build.stop_on_interrupt()
        return VERBS[args.command].run(args)
    except DreamerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
