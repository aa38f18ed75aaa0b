"""`dreamer init FOLDER`: a new gallery, ready to build and publish: a commented gallery.toml, inputs/ (with a
CREDITS.md to fill in), the GitHub Pages workflow and a .gitignore, as `mkdocs new` and `sigal init` do.
It writes only files that are not there yet: where any of them exists, it writes nothing and says which."""

from pathlib import Path

from dreamer.errors import DreamerError
from dreamer.files.atomic import write_bytes

STARTER = Path(__file__).resolve().parent.parent / "starter"  # package data
# What a new gallery holds: its path in the gallery -> the starter file it copies.
FILES = {"gallery.toml": "gallery.toml", "inputs/CREDITS.md": "CREDITS.md",
         ".github/workflows/pages.yml": "pages.yml", ".gitignore": "gitignore"}

HELP = "start a new gallery in FOLDER: gallery.toml, inputs/, the Pages workflow"


def arguments(parser) -> None:
    """`dreamer init`'s argument on `parser`."""
    parser.add_argument("folder", type=Path, metavar="FOLDER", help="a new or empty folder")


def run(args) -> int:
    """Write the new gallery in args.folder; DreamerError (one line, nothing written) if a file is there."""
    folder = Path(args.folder)
    there = [name for name in FILES if (folder / name).exists() or (folder / name).is_symlink()]
    if there:
        raise DreamerError(f"{folder / there[0]} exists: dreamer init writes a new gallery and never replaces a "
                           "file; choose a new or empty folder")
    for name, starter in FILES.items():
        try:
            write_bytes(folder / name, (STARTER / starter).read_bytes())
        except OSError as exc:
            raise DreamerError(f"{exc.filename or folder / name}: {exc.strerror or exc}; choose a folder you can "
                               "write to") from None
    print(f"a new gallery in {folder}: put photos in {folder / 'inputs'}, then\n"
          f"  cd {folder} && dreamer build      # renders them into site/; open site/index.html\n"
          "  git init, commit, push to GitHub, and set Settings -> Pages -> Source: GitHub Actions to publish it")
    return 0
