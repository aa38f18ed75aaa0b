#!/usr/bin/env python3
"""Build the DeepDream gallery in site/ from the photos in inputs/, as gallery.toml says.

    python build.py                  render what is new or changed, reuse the rest, write the pages
    python build.py --dry-run        say what would render and what would be deleted
    python build.py --only chelsea.jpg --only vgg16-eyes --force
"""

import argparse
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # works from a fresh clone, installed or not

from dreamer.errors import DreamerError  # noqa: E402
from dreamer.gallery import build  # noqa: E402
from dreamer.settings import load  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Build the DeepDream gallery (site/) from inputs/.")
    parser.add_argument("--config", type=Path, default=HERE / "gallery.toml", help="settings file (gallery.toml)")
    parser.add_argument("--force", action="store_true", help="render again even what is up to date")
    parser.add_argument("--only", action="append", default=[], metavar="STYLE_OR_INPUT",
                        help="render only this style or input file (repeatable); the rest is kept as it is")
    parser.add_argument("--dry-run", action="store_true", help="show what would render; write nothing")
    args = parser.parse_args(argv)
    try:
        summary = build(load(args.config), force=args.force, only=args.only, dry_run=args.dry_run)
    except DreamerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: the site shows what is finished; run build.py again to resume", file=sys.stderr)
        return 130
    return 0 if summary.ok else 1


if __name__ == "__main__":
    sys.exit(main())
