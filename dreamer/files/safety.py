"""What Dreamer may write: never an input, and over an existing file only where that file is its own.

Inputs are compared on resolved paths and on the file itself (device and inode), so a symbolic or hard
link to an input is that input. Every check runs before anything is written.
"""

import os
from pathlib import Path

from dreamer.errors import DreamerError
from dreamer.media.marks import read_mark


class UnsafeWrite(DreamerError):
    """A write that would replace an input or a file that is not Dreamer's; nothing was written."""


class Inputs:
    """The files a command reads (photos, guide and style images, gallery.toml): never to be written."""

    def __init__(self, paths):
        self._by_path, self._by_inode = {}, {}
        for path in paths:
            path = Path(path)
            self._by_path[path.resolve()] = path
            try:
                st = os.stat(path)
            except OSError:  # noise:WxH, or a missing file that fails later on its own line
                continue
            self._by_inode[(st.st_dev, st.st_ino)] = path

    def find(self, path) -> Path | None:
        """The input that writing `path` would replace (the same path, or a link to the same file), if any."""
        path = Path(path)
        if path.resolve() in self._by_path:
            return self._by_path[path.resolve()]
        try:
            st = os.stat(path)
        except OSError:
            return None
        return self._by_inode.get((st.st_dev, st.st_ino))


def check_not_input(path, inputs: Inputs, what: str = "the output", fix: str = "choose another output name") -> None:
    """Raise UnsafeWrite if `path` is one of `inputs` (or a link to one)."""
    source = inputs.find(path)
    if source is not None:
        how = "would replace" if os.path.abspath(source) == os.path.abspath(path) else "is the same file as"
        raise UnsafeWrite(f"{what} {path} {how} the input {source}: Dreamer never writes over an input; {fix}")


def check_outputs(outputs, inputs: Inputs, overwrite: bool = False) -> None:
    """Check the files a `dreamer render` will write, [(what, path)], before it renders: none may be an input,
    two may not be one file, and an existing file is replaced only if Dreamer wrote it (or with `overwrite`)."""
    seen = set()
    for what, path in outputs:
        check_not_input(path, inputs, what, "choose another -o" + (", or pass --no-still" if what == "the still" else ""))
        if Path(path).resolve() in seen:
            raise UnsafeWrite(f"{what} {path} would be written twice in this command; give the inputs different "
                              "names or render them into different folders")
        seen.add(Path(path).resolve())
        if not overwrite and os.path.lexists(path) and not os.path.isdir(path) and read_mark(path) is None:
            raise UnsafeWrite(f"{what} {path} exists and Dreamer did not write it; choose another output name, "
                              "or pass --overwrite to replace it")


def output_problem(output: Path, keep: dict) -> str | None:
    """Why a gallery's `output` folder may not be used, or None: it may not be, or contain, any folder of
    `keep` {what: folder} (its inputs, the project, the home folder; `/` contains them all)."""
    output = Path(output).resolve()
    folders = {what: Path(folder).resolve() for what, folder in keep.items() if folder is not None}
    for where, clash in (("is", lambda f: f == output), ("contains", lambda f: f.is_relative_to(output))):
        for what, folder in folders.items():
            if clash(folder):
                return f"{output} {where} {what} ({folder}); set output to a folder of its own, such as \"site\""
    return None
