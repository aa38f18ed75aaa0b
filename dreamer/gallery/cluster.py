"""Renders on a Ray cluster (the optional `cluster` extra): one actor per GPU, else one per CPU, each keeping
its networks loaded across jobs; photos travel once each through the object store, results come back as bytes
for the driver to write (dreamer.gallery.write), so no shared file system is needed.

Members of a Ray cluster run each other's code. A Ray that `local` starts listens on the loopback address only and
takes a token that only this build holds. A worker's result is plain values (bytes, numbers, text), checked
(types, sizes, the key asked for, the roles of its files) before anything is written.

A worker (process or node) that dies mid-render costs only its in-flight groups: the driver sends them to the
other workers and starts a replacement where the cluster has room. A render that fails on its input comes back
as an error line and is never retried. A cluster left with no worker (or a local Ray that died) stops the build
(ClusterLost): the renders already written stay, and the next build resumes.
"""

import collections
import contextlib
import ipaddress
import math
import os
import secrets
import socket
import sys
import tempfile
import threading
from typing import get_type_hints

from dreamer.errors import DreamerError, one_line
from dreamer.gallery.execute import Rendered
from dreamer.gallery.settings import check_address

IN_FLIGHT = 2  # groups on one actor at once: one dreams while the other is encoded (or waits to dream)
RETRIES = 3  # times a group is sent again after its worker died
START_TIMEOUT = 60  # seconds for a replacement worker to start; else the cluster has no room for it
WATCH_EVERY = 1.0  # seconds between checks, while renders are out, that a local Ray still runs
RESULT = {"key": str, **get_type_hints(Rendered)}  # a worker's result: exactly these fields, of these types
MAX_FILE_BYTES = 2**30  # a result's file over this is refused
MAX_TEXT = 300  # characters kept of a worker's text (an error, a node's name)
# Ray's processes that a local Ray dies with; ray.init starts them as this process's children
LOCAL_RAY = ("gcs_server", "raylet")


class ClusterError(DreamerError):
    """A cluster that cannot be used: not installed, not reachable, or no worker that can render."""


class ClusterLost(ClusterError):
    """The cluster died or has no worker left mid-build: what died and how many renders are left."""


def _renderer_class(ray):
    @ray.remote
    class Renderer:
        """A worker process: renders groups of one style (dreamer.gallery.execute.render_group), IN_FLIGHT at
        once on its threads, one dreaming at a time: a group is encoded while the next one dreams."""

        def __init__(self):
            self.dreaming = threading.Lock()

        def describe(self) -> dict:
            return describe_worker(ray)

        def render(self, sources, style, settings) -> list:
            """[(name, photo's object or None, key)] -> each render's fields (RESULT) or its error line."""
            from dataclasses import asdict

            from dreamer.gallery.execute import render_group, render_options

            data = [(name, None if ref is None else ray.get(ref)) for name, ref, _ in sources]
            results = render_group(data, style, render_options(settings), self.dreaming)
            return [result if isinstance(result, str) else asdict(result) | {"key": key, "node": _node(ray)}
                    for result, (_, _, key) in zip(results, sources)]

    return Renderer


def describe_worker(ray) -> dict:
    """What a worker says of itself: the backend and precision it renders with, and its node."""
    from dreamer.engine.backends import activate, chosen_backend
    from dreamer.engine.precision import resolve

    activate()
    return {"backend": chosen_backend(), "precision": resolve("auto"), "node": _node(ray)}


def _check_reachable(address: str) -> None:
    """ClusterError unless HOST:PORT (or ray://HOST:PORT) takes a TCP connection: Ray itself retries a dead address
    for a long time."""
    if address == "auto" or address.startswith("local"):  # Ray finds auto or says at once that it cannot
        return
    host, _, port = address.removeprefix("ray://").rpartition(":")
    try:
        socket.create_connection((host, int(port)), timeout=10).close()
    except OSError as exc:
        raise ClusterError(f"--cluster {address}: cannot connect ({exc.strerror or exc}); start one with "
                           "`ray start --head`, or use --cluster local") from None


def _node(ray) -> str:
    return f"{socket.gethostname()}:{ray.get_runtime_context().get_node_id()[:8]}"


def _loopback_only() -> None:
    """Make the Ray that this process starts listen on 127.0.0.1 only (Ray's switch for a machine that joins no
    cluster, read when Ray is imported), with a token of its own that Ray's processes get through their
    environment, never from a file."""
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    os.environ["RAY_AUTH_MODE"] = "token"
    os.environ["RAY_AUTH_TOKEN"] = secrets.token_hex(32)


@contextlib.contextmanager
def _stderr_into(file):
    """This process's stderr (file descriptor 2, where Ray's C++ core writes its retries) into `file`."""
    sys.stderr.flush()
    saved = os.dup(2)
    os.dup2(file.fileno(), 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _last_line(exc: BaseException) -> str:
    """The last line of an exception's text: where Ray puts a worker's own error."""
    lines = [line for line in str(exc).splitlines() if line.strip()] or [type(exc).__name__]
    return _line(lines[-1])


def _line(text: str) -> str:
    """A worker's text as one printable line of at most MAX_TEXT characters."""
    return " ".join("".join(c if c.isprintable() else " " for c in text).split())[:MAX_TEXT]


class Cluster:
    """The executor of a build on Ray at `address`: auto (the cluster this machine joined), ray://HOST:PORT
    (Ray Client), HOST:PORT, or local[:N] (start Ray here with N worker processes, default one per CPU)."""

    names_nodes = True
    worker_class = staticmethod(_renderer_class)  # (ray) -> the actor class of the workers (it has describe())

    def __init__(self, address: str):
        check_address(address)
        self.address, self._started = address, address.startswith("local")
        if self._started:
            _loopback_only()
        try:
            import ray
        except ImportError:
            raise ClusterError(f"--cluster {address}: Ray is not installed; pip install -e '.[cluster]'") from None
        self.ray = ray
        _check_reachable(address)
        self._connect()
        self._local_ray = self._local_processes() if self._started else {}
        self.actors = self._start_actors()

    def _connect(self) -> None:
        """ray.init at the address; ClusterError on one line if Ray cannot (its retries kept off stderr)."""
        ray, address = self.ray, self.address
        with tempfile.TemporaryFile("w+") as said:
            try:
                if self._started:
                    workers = int(address.split(":")[1]) if ":" in address else os.cpu_count()
                    ray.init(address="local", num_cpus=workers, include_dashboard=False, log_to_driver=False,
                             configure_logging=False)  # a new Ray here, even where `ray start` runs one
                else:
                    with _stderr_into(said):
                        ray.init(address=address, log_to_driver=False, configure_logging=False)
            except Exception as exc:  # Ray raises ConnectionError, RuntimeError, ValueError... for a bad address
                said.seek(0)
                if "Unauthenticated" in said.read():
                    raise ClusterError(f"--cluster {address}: the cluster refused this machine: it takes token "
                                       "authentication; set RAY_AUTH_MODE=token and its token here "
                                       "(RAY_AUTH_TOKEN_PATH, or ~/.ray/auth_token)") from None
                raise ClusterError(f"--cluster {address}: cannot connect ({one_line(exc)[:300]}); start one with "
                                   "`ray start --head`, or use --cluster local") from None

    def _local_processes(self) -> dict:
        """The Ray processes a local Ray dies with (LOCAL_RAY) -> their names; ClusterError if it would listen
        beyond this machine."""
        import psutil  # after Ray: its own copy where none is installed

        if not ipaddress.ip_address(self.ray.util.get_node_ip_address()).is_loopback:
            self.close()
            raise ClusterError(f"--cluster {self.address}: Ray would listen beyond this machine (it was imported "
                               "before the build could keep it on 127.0.0.1)")
        return {child: child.name() for child in psutil.Process().children() if child.name() in LOCAL_RAY}

    def _start_actors(self) -> list:
        ray = self.ray
        resources = ray.cluster_resources()
        gpus, cpus = int(resources.get("GPU", 0)), int(resources.get("CPU", 0))
        if not gpus and not cpus:
            self.close()
            raise ClusterError(f"--cluster {self.address}: no worker has a GPU or CPU to render on")
        self._renderer = self.worker_class(ray).options(max_concurrency=IN_FLIGHT,
                                                        **({"num_gpus": 1, "num_cpus": 0} if gpus else {"num_cpus": 1}))
        actors = [self._renderer.remote() for _ in range(gpus or cpus)]
        try:
            described = [_kind(seen) for seen in ray.get([actor.describe.remote() for actor in actors], timeout=600)]
        except ray.exceptions.RayError as exc:
            self.close()
            raise ClusterError(f"--cluster {self.address}: its workers cannot start ({_last_line(exc)})") from None
        kinds = collections.Counter(kind for kind in described if kind)
        if not kinds:
            self.close()
            raise ClusterError(f"--cluster {self.address}: no worker says what it renders with")
        self.kind = backend, precision = kinds.most_common(1)[0][0]  # the most workers' (backend, precision)
        self.notes = self._plan_as(backend, precision)
        usable = [actor for actor, kind in zip(actors, described)
                  if kind == self.kind]  # only workers that make the keys this build plans
        if len(usable) < len(actors):
            self.notes.append(f"note: {len(actors) - len(usable)} of the cluster's {len(actors)} workers render "
                              f"otherwise than {backend} {precision}: left out")
        for actor in set(actors) - set(usable):
            ray.kill(actor, no_restart=True)
        self.gpus = gpus
        return usable

    @staticmethod
    def _plan_as(backend: str, precision: str) -> list[str]:
        """Plan the build's keys with the workers' backend and precision (this machine may differ: a laptop
        driving GPUs); the note saying so, if they differ."""
        from dreamer.engine.backends import chosen_backend
        from dreamer.engine.precision import plan_auto_as, resolve

        here = (chosen_backend(), resolve("auto"))
        os.environ["KERAS_BACKEND"] = backend  # what chosen_backend() answers from now on: planning imports no Keras
        plan_auto_as(precision)
        if here == (backend, precision):
            return []
        return [f"note: planning with the cluster's workers: {backend} {precision} (here: {here[0]} {here[1]})"]

    def photos_together(self, batch) -> int:
        """Photos of one style sent together: `batch`, or for 'auto' as many as one worker's renderer takes."""
        from dreamer.engine.batching import CPU_AUTO_BATCH, MAX_AUTO_BATCH

        return batch if batch != "auto" else MAX_AUTO_BATCH if self.gpus else CPU_AUTO_BATCH

    def run(self, groups, settings):
        """Send the groups to the actors, at most IN_FLIGHT queued on each; yield (jobs, results) as they end, each
        result a Rendered or an error line. ClusterLost when no worker is left or a local Ray died."""
        groups = list(groups)
        for jobs in (g for g in groups if g[0].photo.clip):  # a clip streams: it renders here, not on a cluster
            refused = "clips render without --cluster (one dreams frame after frame, here); build without it"
            yield jobs, [refused] * len(jobs)
        ray, queue = self.ray, collections.deque(g for g in groups if not g[0].photo.clip)
        photos = {}  # a photo's name -> its bytes in the object store, put once
        pending, load = {}, {actor: 0 for actor in self.actors}

        def sources(jobs):
            out = []
            for job in jobs:
                name = str(job.photo.path)
                if name not in photos:  # static (noise:WxH) is made from its name, not from a file
                    photos[name] = ray.put(job.photo.path.read_bytes()) if job.photo.path.is_file() else None
                out.append((name, photos[name], job.key))
            return out

        def left() -> int:
            return sum(map(len, queue)) + sum(len(jobs) for jobs, _ in pending.values())

        lost = collections.Counter()  # a group's id -> the times its worker died under it
        while queue or pending:
            self._check_running(left)  # before the object store is touched: Ray ends a process whose store died
            while queue and self.actors and load[actor := min(self.actors, key=load.get)] < IN_FLIGHT:
                jobs = queue.popleft()  # to the least loaded worker
                pending[actor.render.remote(sources(jobs), jobs[0].style, settings)] = (jobs, actor)
                load[actor] += 1
            if not pending:
                raise ClusterLost(f"--cluster {self.address}: no worker of the cluster is left; {_left(left())}")
            ref = self._first(pending, left)
            jobs, actor = pending.pop(ref)
            if actor in load:
                load[actor] -= 1
            try:
                results = ray.get(ref)
            except ray.exceptions.RayActorError as exc:  # its worker died: the group goes again, elsewhere
                if actor in load:
                    self._replace(actor, load)
                lost[id(jobs)] += 1
                if lost[id(jobs)] <= RETRIES:
                    queue.appendleft(jobs)
                    continue
                results = [f"lost with {RETRIES + 1} workers of the cluster ({_last_line(exc)})"] * len(jobs)
            except ray.exceptions.RayError as exc:
                results = [f"lost on the cluster ({_last_line(exc)}); run build.py again"] * len(jobs)
            yield jobs, self._results(jobs, results, settings)

    def _first(self, pending: dict, left):
        """The first of the pending renders to end, checking every WATCH_EVERY seconds that a local Ray runs."""
        while True:
            ready, _ = self.ray.wait(list(pending), num_returns=1, timeout=WATCH_EVERY)
            self._check_running(left)
            if ready:
                return ready[0]

    def _check_running(self, left) -> None:
        """ClusterLost if a process of the local Ray this build started has ended."""
        import psutil

        for process, name in self._local_ray.items():
            try:
                running = process.status() != psutil.STATUS_ZOMBIE
            except psutil.NoSuchProcess:
                running = False
            if not running:
                raise ClusterLost(f"--cluster {self.address}: Ray's {name} (pid {process.pid}) ended; {_left(left())}")

    def _results(self, jobs, results, settings) -> list:
        """A worker's results for `jobs` as Rendereds or error lines: each checked before anything is written."""
        if not isinstance(results, list) or len(results) != len(jobs):
            return ["the cluster sent back something else than this group's renders; nothing written"] * len(jobs)
        return [_checked(result, job.key, set(job.roles(settings)), self.kind) for job, result in zip(jobs, results)]

    def _replace(self, dead, load: dict) -> None:
        """Drop a dead worker and start another in its place, if the cluster has room for it in START_TIMEOUT."""
        ray = self.ray
        self.actors.remove(dead)
        del load[dead]
        ray.kill(dead, no_restart=True)
        new = self._renderer.remote()
        try:
            kind = _kind(ray.get(new.describe.remote(), timeout=START_TIMEOUT))
        except ray.exceptions.RayError:  # GetTimeoutError included
            kind = None
        if kind == self.kind:
            self.actors.append(new)
            load[new] = 0
        else:
            ray.kill(new, no_restart=True)

    def close(self):
        """Stop the actors (what they were doing is dropped) and disconnect; a local Ray is shut down."""
        for actor in getattr(self, "actors", []):
            self.ray.kill(actor, no_restart=True)
        self.actors = []
        self.ray.shutdown()


def _left(renders: int) -> str:
    return f"{renders} render(s) left; the site is valid: run build.py again to resume"


def _kind(seen) -> tuple[str, str] | None:
    """A worker's (backend, precision) from what it says of itself, or None if that is no such pair of names."""
    if not isinstance(seen, dict):
        return None
    kind = seen.get("backend"), seen.get("precision")
    return kind if all(isinstance(name, str) and name == _line(name) for name in kind) else None


def _checked(result, key: str, roles: set, kind: tuple) -> Rendered | str:
    """A worker's result for the render `key` with files of `roles` as a Rendered, or the job's error line."""
    if isinstance(result, str):
        return _line(result)
    problem = _problem(result, key, roles, kind)
    if problem:
        return _line(f"the cluster sent back a bad result ({problem}); nothing written")
    return Rendered(**{name: result[name] for name in RESULT if name != "key"})


def _problem(result, key: str, roles: set, kind: tuple) -> str | None:
    """What makes a worker's result unfit to write, or None."""
    if not isinstance(result, dict) or result.keys() != RESULT.keys():
        return "not a render's fields"
    wrong = [name for name, kind_of in RESULT.items() if type(result[name]) is not kind_of]  # bool is no int
    if wrong:
        return f"{wrong[0]} is not {RESULT[wrong[0]].__name__}"
    files = result["files"]
    if result["key"] != key:
        return f"the render {result['key'][:40]}, where {key} was asked"
    if files.keys() != roles:
        return f"files {', '.join(sorted(map(str, files)))}, where {', '.join(sorted(roles))} were asked"
    if not all(type(data) is bytes and 0 < len(data) <= MAX_FILE_BYTES for data in files.values()):
        return f"a file that is not bytes, is empty or is over {MAX_FILE_BYTES >> 20} MiB"
    if not all(result[name] > 0 for name in ("frames", "gif_frames", "width", "height")):
        return "no frames or no pixels"
    if not 0 <= result["seconds"] < math.inf:
        return "a time that is no time"
    if (result["backend"], result["precision"]) != kind:
        return f"rendered with {result['backend'][:40]} {result['precision'][:40]}, not {' '.join(kind)}"
    if result["node"] != _line(result["node"]):
        return "a node's name that is not one line of text"
    return None
