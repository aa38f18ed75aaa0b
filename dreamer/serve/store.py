"""Finished dreams on disk, content-addressed by render key, and the journal of dreams in flight.

An entry is `<key>.json` (its record: what made it, and each file's name, bytes and sha256) beside its files, named
as a gallery build names a render's (`<key>.gif`, `<key>.jpg`, `<key>.webm`, `<key>-small.mp4`, ...) and the photo
it was dreamed from (`<key>-photo.jpg`). Every file is written atomically and the record last, so an entry is whole
or absent. A file read back is checked against its record's sha256: a damaged entry is dropped, never served. The
record's modification time is the entry's last use: past the size limit the least recently used go first. Only
names of those shapes are ever deleted; anything else in the folder is left alone.

The journal (`journal/<server>/<dream id>.json`, the server holding `journal/<server>.lock`) lists the dreams a
server has in flight. The kernel drops a lock however its process ends (kill -9 too): a journal whose lock is free
belongs to a server that stopped, and its dreams were interrupted.
"""

import contextlib
import hashlib
import json
import os
import re
import secrets
import shutil
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock, Timeout

from dreamer.errors import DreamerError
from dreamer.files.atomic import temp_target, write_bytes, write_text
from dreamer.files.digest import file_sha256
from dreamer.files.paths import cache_dir
from dreamer.gallery.keys import KEY_CHARS
from dreamer.gallery.manifest import render_files

ENV = "DREAMER_DREAMS"  # names the folder to a build (`dreamer serve` sets it for the builds it starts)
RECORD_VERSION = 1
PHOTO_SUFFIXES = ("jpg", "png", "gif", "webp", "tif", "bmp")  # a photo's type, from its content
_KEY = f"[0-9a-f]{{{KEY_CHARS}}}"
_OWN = re.compile(f"^(?P<key>{_KEY})(\\.(gif|jpg|webm|mp4|json)|-small\\.(webm|mp4)|-photo\\.({'|'.join(PHOTO_SUFFIXES)}))$")
_FACTS = {  # what a record must say of its render (a build's manifest entry needs them)
    **{name: lambda v: isinstance(v, int) and not isinstance(v, bool) and 0 < v <= 100_000
       for name in ("frames", "gif_frames", "width", "height", "size")},
    "seconds": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v < 1e9,
    **{name: lambda v: isinstance(v, str) and len(v) < 200 for name in ("style", "backend", "precision")},
}
_ID = re.compile(r"^[A-Za-z0-9_-]{8,64}$")


def default_folder() -> Path:
    """Where finished dreams are kept unless `dreamer serve --cache` says: $DREAMER_DREAMS, else `dreams` in the
    Dreamer cache folder. A gallery build looks here for dreams it can reuse."""
    return Path(os.environ.get(ENV) or cache_dir() / "dreams")


def file_name(key: str, role: str) -> str:
    """The name of an entry's file in a role: a render's as a build names it ("gif", "still", "webm", "mp4-small",
    ...), or "photo.EXT", the photo it was dreamed from."""
    if role.startswith("photo."):
        return f"{key}-photo.{role.split('.', 1)[1]}"
    return render_files(key)[role].rsplit("/", 1)[-1]


def _signature(path: Path):
    stat = path.stat()
    return stat.st_size, stat.st_mtime_ns, stat.st_ino


@dataclass(frozen=True)
class Entry:
    """A finished dream in the store: its record and its files by role."""

    key: str
    record: dict
    files: dict  # role -> Path


class Store:
    """The finished dreams in `folder`, at most `limit` bytes (least recently used evicted), and this server's
    journal of dreams in flight (after open())."""

    def __init__(self, folder: Path, limit: int):
        self.folder, self.limit = Path(folder).absolute(), limit
        self.lock = threading.RLock()
        self._checked = {}  # path -> (size, mtime, inode) when its bytes last matched the record
        self._journal: Path | None = None
        self._held: FileLock | None = None

    # Entries

    def get(self, key: str) -> Entry | None:
        """The entry of `key` with every file checked against its record (a damaged one is dropped), its last use
        now; None if there is none."""
        with self.lock:
            entry = self.read(key)
            if entry is None:
                return None
            if not all(self.intact(entry, role) for role in entry.files):
                self.drop(key)
                return None
            with contextlib.suppress(OSError):
                os.utime(self.folder / f"{key}.json")
            return entry

    def read(self, key: str) -> Entry | None:
        """The entry of `key` as its record says, unchecked; None if absent or its record is not one of ours."""
        if not re.fullmatch(_KEY, key or ""):
            return None
        try:
            record = json.loads((self.folder / f"{key}.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        files = record.get("files") if isinstance(record, dict) and record.get("version") == RECORD_VERSION else None
        if not isinstance(files, dict) or not files or not all(check(record.get(k)) for k, check in _FACTS.items()):
            return None
        paths = {}
        for role, info in files.items():
            try:
                name = file_name(key, role)
            except (KeyError, IndexError, AttributeError):
                return None
            if not (isinstance(info, dict) and info.get("name") == name and _OWN.match(name)
                    and isinstance(info.get("sha256"), str) and isinstance(info.get("bytes"), int)):
                return None
            paths[role] = self.folder / name
        return Entry(key, record, paths)

    def intact(self, entry: Entry, role: str) -> bool:
        """Whether the file in `role` holds the bytes its record names (hashed again only when it changed)."""
        path, info = entry.files[role], entry.record["files"][role]
        try:
            signature = _signature(path)
            if self._checked.get(path) == signature:
                return True
            ok = signature[0] == info["bytes"] and file_sha256(path) == info["sha256"]
        except OSError:
            ok = False
        if ok:
            self._checked[path] = signature
        else:
            self._checked.pop(path, None)
        return ok

    def opened(self, entry: Entry, role: str):
        """The file in `role` open for reading, checked against its record first; None (the entry dropped) if it
        is damaged or gone, as when it was evicted since `entry` was read. Open, it is read whole even if it is
        evicted afterwards."""
        with self.lock:
            try:
                if self.intact(entry, role):
                    return open(entry.files[role], "rb")
            except OSError:
                pass
            self.drop(entry.key)
            return None

    def put(self, key: str, files: dict, record: dict) -> Entry:
        """Copy `files` (role -> a file's path, or bytes) in as the entry of `key`, each atomically and the record
        (`record` and the files' names, bytes and sha256) last; then evict the least recently used past the limit."""
        with self.lock:
            described = {}
            for role, source in files.items():
                name = file_name(key, role)
                data = source if isinstance(source, bytes) else Path(source).read_bytes()
                write_bytes(self.folder / name, data)
                described[role] = {"name": name, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
            whole = {**record, "version": RECORD_VERSION, "key": key, "created": time.time(), "files": described}
            write_text(self.folder / f"{key}.json", json.dumps(whole, indent=1, sort_keys=True))
            self.evict(keep=key)
            return self.read(key)

    def drop(self, key: str) -> None:
        """Delete the entry of `key`: its record first (it is then absent), then its files."""
        with self.lock:
            entry = self.read(key)
            (self.folder / f"{key}.json").unlink(missing_ok=True)
            for path in (entry.files.values() if entry else ()):
                self._checked.pop(path, None)
                path.unlink(missing_ok=True)

    def evict(self, keep: str | None = None) -> None:
        """Drop the least recently used entries (not `keep`) until the store is within its limit."""
        with self.lock:
            entries = []
            for record in self.folder.glob("*.json"):
                match = _OWN.match(record.name)
                entry = self.read(match["key"]) if match else None
                if entry is not None:
                    with contextlib.suppress(OSError):
                        size = record.stat().st_size + sum(info["bytes"] for info in entry.record["files"].values())
                        entries.append((record.stat().st_mtime, size, entry.key))
            total = sum(size for _, size, _ in entries)
            for _, size, key in sorted(entries):
                if total <= self.limit:
                    break
                if key != keep:
                    self.drop(key)
                    total -= size

    def _sweep(self) -> None:
        """Remove what an interrupted put of a stopped server left: our files without a record, our temp files."""
        records = {path.stem for path in self.folder.glob("*.json")}
        for path in self.folder.iterdir():
            match = _OWN.match(temp_target(path.name) or path.name)
            if match and (path.name != match[0] or match["key"] not in records) and path.is_file():
                path.unlink(missing_ok=True)

    # The journal

    def open(self) -> list[dict]:
        """Make the folder, take this server's journal; the journals of servers that stopped are read and removed
        (their dreams were interrupted: returned, as begin() wrote them) and what their puts left is swept.
        DreamerError (one line) if the folder cannot be written."""
        journals = self.folder / "journal"
        try:
            journals.mkdir(parents=True, exist_ok=True)
            interrupted = []
            for lock_path in sorted(journals.glob("*.lock")):
                lock = FileLock(lock_path, timeout=0)
                try:
                    lock.acquire()
                except Timeout:
                    continue  # a server still running
                try:
                    folder = lock_path.with_suffix("")
                    for path in sorted(folder.glob("*.json")) if folder.is_dir() else ():
                        with contextlib.suppress(OSError, ValueError):
                            interrupted.append(json.loads(path.read_text(encoding="utf-8")))
                    shutil.rmtree(folder, ignore_errors=True)
                    lock_path.unlink(missing_ok=True)
                finally:
                    lock.release()
            if not any(journals.glob("*.lock")):
                self._sweep()  # no other server is writing here
            name = secrets.token_hex(8)
            self._held = FileLock(journals / f"{name}.lock", timeout=0)
            self._held.acquire()
            self._journal = journals / name
            self._journal.mkdir()
        except OSError as exc:
            raise DreamerError(f"--cache {self.folder}: cannot keep dreams there ({exc.strerror or exc}); "
                               "choose a folder you can write") from None
        return [data for data in interrupted if isinstance(data, dict) and _ID.match(str(data.get("id", "")))]

    def close(self) -> None:
        """Let go of the journal: what is still in it is reported as interrupted by the next server."""
        if self._held is not None:
            self._held.release()

    def begin(self, dream_id: str, data: dict) -> None:
        """Note a dream in flight (`data` must name its `id`)."""
        write_text(self._journal / f"{dream_id}.json", json.dumps({**data, "id": dream_id}))

    def end(self, dream_id: str) -> None:
        """The dream has finished (done, failed or cancelled): out of the journal."""
        (self._journal / f"{dream_id}.json").unlink(missing_ok=True)
