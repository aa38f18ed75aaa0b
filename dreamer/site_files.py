"""The files of a gallery's output folder that are Dreamer's: exactly those its manifest records.

A build replaces or deletes only such files; any other file at a path it needs stops the build before it
writes anything. Writes are atomic and recorded (size, sha256) as they land. The state folder keeps a copy of
that record, so that a lost or garbled manifest still leaves the build knowing which files are its own.
"""

import hashlib
import json
import os
from pathlib import Path

from dreamer.atomic import temp_target, write_bytes
from dreamer.cache import Manifest, file_digest
from dreamer.integrity import StatCache
from dreamer.safety import Inputs, UnsafeWrite, check_not_input

RENDERS, PHOTOS, MANIFEST = "renders", "photos", "manifest.json"
STATE = ".dreamer"  # the build lock, its holder and the stat cache: local, never published


class SiteFiles:
    """The output folder's own files, as `manifest.files` records them; `inputs` are never written."""

    def __init__(self, output: Path, manifest: Manifest, inputs: Inputs):
        self.output, self.manifest, self.inputs = output, manifest, inputs
        self.cache = StatCache(output / STATE / "checked.json")
        self._copy = output / STATE / "files.json"
        self._copied = None

    @property
    def names(self) -> dict:
        return self.manifest.files

    def owns(self, name: str) -> bool:
        return name in self.names

    def intact(self, name: str) -> bool:
        """Whether `name` is Dreamer's and still has the bytes it recorded."""
        return self.owns(name) and self.cache.intact(self.output, name, self.names[name])

    def adopt(self, name: str) -> None:
        """Record the file now at `name` as Dreamer's (it was just written by this build, or recognised)."""
        path = self.output / name
        st, digest = os.stat(path), file_digest(path)
        self.names[name] = {"bytes": st.st_size, "sha256": digest}
        self.cache.note(name, st, digest)

    def write(self, name: str, data: bytes) -> None:
        """Write `data` at `name` atomically and record it, unless the file already holds exactly that."""
        digest = hashlib.sha256(data).hexdigest()
        if self.names.get(name, {}).get("sha256") == digest and self.intact(name):
            return
        write_bytes(self.output / name, data)
        self.names[name] = {"bytes": len(data), "sha256": digest}
        self.cache.note(name, os.stat(self.output / name), digest)

    def claim(self, names) -> None:
        """Record `names` as Dreamer's before writing them (bytes and sha256 unknown yet), so that a build
        killed mid-write leaves files the next build knows as its own; save() to make it stick."""
        for name in names:
            self.names.setdefault(name, {"bytes": None, "sha256": None})

    def settle(self) -> None:
        """Forget claims that were never written (failed or unselected renders)."""
        for name in [n for n, r in self.names.items() if r["sha256"] is None and not (self.output / n).exists()]:
            del self.names[name]

    def remove(self, name: str) -> None:
        """Delete `name` if Dreamer wrote it (or if it is a temp file an interrupted write of Dreamer's left)."""
        if self.owns(name) or self._leftover(name):
            (self.output / name).unlink(missing_ok=True)
            self.names.pop(name, None)

    def check(self, wanted, stale) -> None:
        """Raise UnsafeWrite, before anything is written, if a path the build writes or deletes is an input,
        or a path it needs holds a file that is not Dreamer's."""
        for name in [*wanted, *stale]:
            check_not_input(self.output / name, self.inputs, "the site's file")
        for name in wanted:
            path = self.output / name
            if os.path.lexists(path) and not self.owns(name):
                raise UnsafeWrite(f"{path}: Dreamer did not write this file (it is not in {self.output / MANIFEST}) "
                                  f"but needs its name; move it out of {self.output} and build again")

    def stale(self, wanted) -> list[str]:
        """Dreamer's files that the site no longer needs, and temp files its interrupted writes left."""
        wanted = set(wanted)
        old = [name for name in self.names if name not in wanted]
        folders = {Path(name).parent for name in [*self.names, *wanted]} | {Path(".")}
        leftovers = [name for folder in sorted(folders) if (self.output / folder).is_dir()
                     for name in sorted((folder / f.name).as_posix() for f in (self.output / folder).iterdir())
                     if self._leftover(name, wanted)]
        return sorted(old) + leftovers

    def _leftover(self, name: str, wanted=()) -> bool:
        target = temp_target(Path(name).name)
        if target is None:
            return False
        target = (Path(name).parent / target).as_posix()
        return target in self.names or target in wanted or target == MANIFEST

    def recorded(self) -> dict:
        """The state folder's copy of the record, for the files still on disk ({} if there is none)."""
        try:
            names = json.loads(self._copy.read_text(encoding="utf-8"))
            return {n: r for n, r in names.items() if os.path.lexists(self.output / n)}
        except (OSError, ValueError, AttributeError):
            return {}

    def save(self) -> None:
        """The manifest, then the state folder's copy of its record and the stat cache."""
        self.manifest.save(self.output / MANIFEST)
        text = json.dumps(self.names, sort_keys=True)
        if self._copied is None and self._copy.is_file():
            self._copied = self._copy.read_text(encoding="utf-8")
        if text != self._copied:
            self._copy.parent.mkdir(parents=True, exist_ok=True)
            write_bytes(self._copy, text.encode("utf-8"))
            self._copied = text
        self.cache.save(keep=self.names)
