#!/usr/bin/env python3
"""`python build.py [OPTIONS]`: `dreamer build` on the gallery.toml beside this file, from a clone, installed or not
(dreamer/commands/build.py says what it does)."""

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from dreamer.commands import build  # noqa: E402


def main(argv=None) -> int:
    return build.main(argv, config=HERE / "gallery.toml")


if __name__ == "__main__":
    build.stop_on_interrupt()
    sys.exit(main())
