"""One build at a time in an output folder: an operating-system lock (filelock) held for the whole build.

The kernel drops the lock when its process ends, however it ends (kill -9 too), so no stale lock is left.
Beside it the holder writes who it is, so that a second build can name the process it waits for.
"""

import contextlib
import json
import os
import socket
import sys
import time
from pathlib import Path

from filelock import FileLock, Timeout

from dreamer.errors import DreamerError
from dreamer.files.atomic import write_text


class Busy(DreamerError):
    """Another build holds the output folder."""


def _holder(path: Path) -> str:
    try:
        who = json.loads(path.read_text(encoding="utf-8"))
        return (f"process {who['pid']} on {who['host']} (`{who['command']}`, since "
                f"{time.strftime('%H:%M:%S', time.localtime(who['since']))})")
    except (OSError, ValueError, KeyError, TypeError):
        return "another process"


@contextlib.contextmanager
def holding(state: Path, output: Path, wait: bool = False, out=sys.stderr):
    """Hold the lock of `output` (files in its state folder `state`) for the block; a second holder fails at
    once on one line naming the first, or with `wait` waits for it."""
    state.mkdir(parents=True, exist_ok=True)
    lock, holder = FileLock(state / "lock", timeout=0), state / "holder"
    try:
        lock.acquire()
    except Timeout:
        if not wait:
            raise Busy(f"{output}: {_holder(holder)} is building this site; wait for it to finish, "
                       "or pass --wait") from None
        print(f"waiting for {_holder(holder)}, which is building {output}", file=out)
        lock.acquire(timeout=-1)
    try:
        write_text(holder, json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "since": time.time(),
                                       "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]])}))
        yield
    finally:
        holder.unlink(missing_ok=True)
        lock.release()
