"""The files of a gallery's output folder that are Dreamer's: those its manifest records, while they hold the
bytes it recorded.

A build replaces or deletes a recorded file only while it still holds the bytes Dreamer recorded (a render's or
photo's file under its content key that fails to verify is rendered again); a changed one is left in place with
one line. Any other file at a path the build needs stops the build before it writes anything. Every path stays
inside the output folder (no folder on the way may be a link leading out). Writes are atomic and recorded (size,
sha256) as they land. The state folder keeps a copy of that record, so that a lost or garbled manifest still
leaves the build knowing which files are its own.
"""

import hashlib
import json
import os
from pathlib import Path

from dreamer.files.atomic import temp_target, write_bytes
from dreamer.files.safety import Inputs, UnsafeWrite, check_not_input
from dreamer.gallery.integrity import StatCache
from dreamer.files.digest import file_sha256
from dreamer.gallery.manifest import MANIFEST, PHOTOS, RENDERS, STATE, STATIC, Manifest, checked_files, keyed
from dreamer.media.marks import read_mark

__all__ = ["MANIFEST", "PHOTOS", "RENDERS", "STATE", "SiteFiles"]


class SiteFiles:
    """The output folder's own files, as `manifest.files` records them; `inputs` are never written. `static`
    (name -> source file) says what the site's static files hold when Dreamer wrote them. `notes` gathers a
    warning line for each record ignored and each changed file left in place."""

    def __init__(self, output: Path, manifest: Manifest, inputs: Inputs, static=None):
        self.output, self.manifest, self.inputs = output, manifest, inputs
        self.static = dict(static or {})
        self.cache = StatCache(output / STATE / "checked.json")
        self._copy = output / STATE / "files.json"
        self._copied = None
        self.notes = list(manifest.problems)
        self._kept = set()  # changed files left in place, said once
        for name in [n for n in self.names if not self.inside(n)]:
            self._let_go(name, f"a folder on its way leads out of {output}; never touched")

    @property
    def names(self) -> dict:
        return self.manifest.files

    def owns(self, name: str) -> bool:
        return name in self.names

    def inside(self, name: str) -> bool:
        """Whether `name`'s folder is inside the output folder once links are followed."""
        root = self.output.resolve()
        return (root / name).parent.resolve().is_relative_to(root)

    def intact(self, name: str) -> bool:
        """Whether `name` is Dreamer's and still a plain file with the bytes it recorded."""
        return (self.owns(name) and not (self.output / name).is_symlink()
                and self.cache.intact(self.output, name, self.names[name]))

    def proven(self, name: str) -> bool:
        """Whether the file at `name` (one this build writes) shows it is Dreamer's: a plain file carrying Dreamer's
        mark (renders, photos, pages), a static file equal to its template's, or an empty .nojekyll."""
        path = self.output / name
        if path.is_symlink() or not path.is_file():
            return False
        if name == ".nojekyll":
            return path.stat().st_size == 0
        if name.startswith(f"{STATIC}/"):
            source = self.static.get(name.removeprefix(f"{STATIC}/"))
            return source is not None and path.read_bytes() == Path(source).read_bytes()
        return read_mark(path) is not None

    def adopt(self, name: str) -> None:
        """Record the file now at `name` as Dreamer's (it was just written by this build, or proven)."""
        path = self.output / name
        st, digest = os.stat(path), file_sha256(path)
        self.names[name] = {"bytes": st.st_size, "sha256": digest}
        self.cache.note(name, st, digest)

    def adopt_proven(self, names) -> None:
        """Record as Dreamer's each of `names` (files this build writes) that is on disk without a recorded sha256
        and proves it is Dreamer's."""
        for name in names:
            if not self.names.get(name, {}).get("sha256") and self.proven(name):
                self.adopt(name)

    def settle_claims(self, wanted) -> None:
        """Settle the files at names recorded without bytes (claimed by a build that was stopped): one that this
        build writes, or that the state folder's copy claims too (a build here claimed it, not a manifest from
        elsewhere), and that proves it is Dreamer's, is recorded; any other is not Dreamer's, and its record goes,
        with a line."""
        claimed = [n for n, r in self.names.items() if r["sha256"] is None and os.path.lexists(self.output / n)]
        if not claimed:
            return
        here = {n for n, r in self.recorded().items() if r["sha256"] is None}
        self.adopt_proven(set(claimed) & (set(wanted) | here))
        for name in claimed:
            if self.names[name]["sha256"] is None:
                self._let_go(name, "recorded by a build that was stopped, but it does not show it is Dreamer's; "
                                   "left as it is")

    def write(self, name: str, data: bytes) -> None:
        """Write `data` at `name` atomically and record it, unless the file already holds exactly that, or holds
        what Dreamer did not write there (left in place, with a line)."""
        digest = hashlib.sha256(data).hexdigest()
        if self.names.get(name, {}).get("sha256") == digest and self.intact(name):
            return
        if not self.replaceable(name):
            return
        write_bytes(self.output / name, data)
        self.names[name] = {"bytes": len(data), "sha256": digest}
        self.cache.note(name, os.stat(self.output / name), digest)

    def replaceable(self, name: str) -> bool:
        """Whether new bytes may go to `name`: nothing is there, or Dreamer's file with the bytes it recorded, or
        a render's or photo's file under its key (rendered again). Otherwise says once that it is left in place."""
        path = self.output / name
        if not os.path.lexists(path) or self.intact(name) or (self.owns(name) and keyed(name)):
            return True
        if name not in self._kept:
            self._kept.add(name)
            self.notes.append(f"warning: {path}: changed since Dreamer wrote it (or is not Dreamer's): left as it "
                              f"is; move it out of {self.output} and build again to get Dreamer's version back")
        return False

    def claim(self, names) -> None:
        """Record `names` as Dreamer's before writing them (bytes and sha256 unknown yet), so that a build
        killed mid-write leaves files the next build knows as its own; save() to make it stick."""
        for name in names:
            self.names.setdefault(name, {"bytes": None, "sha256": None})

    def settle(self) -> None:
        """Forget claims that were never written (failed or unselected renders)."""
        for name in [n for n, r in self.names.items() if r["sha256"] is None and not (self.output / n).exists()]:
            del self.names[name]

    def let_go_changed(self, wanted) -> None:
        """Let go of recorded files that the site no longer needs and that changed since Dreamer wrote them: they
        are left in place, no longer Dreamer's, with a line each."""
        wanted = set(wanted)
        for name in sorted(self.names):
            if name not in wanted and os.path.lexists(self.output / name) and not self.intact(name):
                self._let_go(name, "changed since Dreamer wrote it and no longer needed: left as it is, no longer "
                                   "Dreamer's; delete it yourself if you do not want it")

    def remove(self, name: str) -> None:
        """Delete `name` if it is Dreamer's with the bytes it recorded (or a temp file an interrupted write of
        Dreamer's left); forget a record whose file is gone."""
        path = self.output / name
        if self._leftover(name) or self.intact(name):
            path.unlink(missing_ok=True)
            self.names.pop(name, None)
        elif self.owns(name) and not os.path.lexists(path):
            del self.names[name]
        elif self.owns(name):
            self._let_go(name, "changed since Dreamer wrote it: left as it is, no longer Dreamer's")

    def check(self, wanted, stale) -> None:
        """Raise UnsafeWrite, before anything is written, if a path the build writes or deletes is an input or lies
        outside the site, or a path it needs holds a file that is not Dreamer's."""
        for name in [*wanted, *stale]:
            if not self.inside(name):
                raise UnsafeWrite(f"{(self.output / name).parent} leads out of {self.output} (a link): Dreamer "
                                  "writes only inside its site; make it a plain folder and build again")
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

    def _let_go(self, name: str, why: str) -> None:
        """Forget the record of `name`, saying why in a line; the file itself is not touched."""
        del self.names[name]
        self.notes.append(f"warning: {self.output / name}: {why}")

    def recorded(self) -> dict:
        """The state folder's copy of the record, its well-formed entries for files still on disk ({} if none)."""
        try:
            names = json.loads(self._copy.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        names, _ = checked_files(names, self._copy)
        return {n: r for n, r in names.items() if os.path.lexists(self.output / n) and self.inside(n)}

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
