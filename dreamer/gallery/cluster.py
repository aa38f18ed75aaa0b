"""Renders on a Ray cluster (the optional `cluster` extra): one actor per GPU, else one per CPU, each keeping
its networks loaded across jobs; photos travel once each through the object store, results come back as bytes
for the driver to write (dreamer.gallery.write), so no shared file system is needed.

A worker (process or node) that dies mid-render costs only its in-flight groups: the driver sends them to the
other workers and starts a replacement where the cluster has room. A render that fails on its input comes back
as an error line and is never retried.
"""

import collections
import os
import re
import socket

from dreamer.errors import DreamerError, one_line

ADDRESS = re.compile(r"^(auto|local(:[1-9][0-9]*)?|ray://\S+|[\w.-]+:[0-9]+)$")
IN_FLIGHT = 2  # groups queued on one actor: the next is there when one ends
RETRIES = 3  # times a group is sent again after its worker died
START_TIMEOUT = 60  # seconds for a replacement worker to start; else the cluster has no room for it


class ClusterError(DreamerError):
    """A cluster that cannot be used: not installed, not reachable, or no worker that can render."""


def check_address(address: str) -> str:
    """`address` if it is one --cluster understands, else ClusterError naming the forms."""
    if not ADDRESS.match(address):
        raise ClusterError(f"cluster {address!r}: use auto, local, local:N, ray://HOST:PORT or HOST:PORT")
    return address


def _renderer_class(ray):
    @ray.remote
    class Renderer:
        """A worker process: renders groups of one style (dreamer.gallery.execute.render_group)."""

        def describe(self) -> dict:
            from dreamer.backends import activate, chosen_backend
            from dreamer.precision import resolve

            activate()
            return {"backend": chosen_backend(), "precision": resolve("auto"), "node": _node(ray)}

        def render(self, sources, style, settings) -> list:
            from dreamer.gallery.execute import render_group, render_options

            data = [(name, None if ref is None else ray.get(ref)) for name, ref in sources]
            results = render_group(data, style, render_options(settings))
            for result in results:
                if not isinstance(result, str):
                    result.node = _node(ray)
            return results

    return Renderer


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


class Cluster:
    """The executor of a build on Ray at `address`: auto (the cluster this machine joined), ray://HOST:PORT
    (Ray Client), HOST:PORT, or local[:N] (start Ray here with N worker processes, default one per CPU)."""

    names_nodes = True

    def __init__(self, address: str):
        check_address(address)
        try:
            import ray
        except ImportError:
            raise ClusterError(f"--cluster {address}: Ray is not installed; pip install -e '.[cluster]'") from None
        self.ray, self.address, self._started = ray, address, address.startswith("local")
        _check_reachable(address)
        try:
            if self._started:
                workers = int(address.split(":")[1]) if ":" in address else os.cpu_count()
                ray.init(address="local", num_cpus=workers, include_dashboard=False, log_to_driver=False,
                         configure_logging=False)  # a new Ray here, even where `ray start` runs one
            else:
                ray.init(address=address, log_to_driver=False, configure_logging=False)
        except Exception as exc:  # Ray raises ConnectionError, RuntimeError, ValueError... for a bad address
            raise ClusterError(f"--cluster {address}: cannot connect ({one_line(exc)[:300]}); start one with "
                               "`ray start --head`, or use --cluster local") from None
        self.actors = self._start_actors()

    def _start_actors(self) -> list:
        ray = self.ray
        resources = ray.cluster_resources()
        gpus, cpus = int(resources.get("GPU", 0)), int(resources.get("CPU", 0))
        if not gpus and not cpus:
            self.close()
            raise ClusterError(f"--cluster {self.address}: no worker has a GPU or CPU to render on")
        self._renderer = _renderer_class(ray).options(**({"num_gpus": 1, "num_cpus": 0} if gpus else {"num_cpus": 1}))
        actors = [self._renderer.remote() for _ in range(gpus or cpus)]
        described = ray.get([actor.describe.remote() for actor in actors], timeout=600)
        kinds = collections.Counter((seen["backend"], seen["precision"]) for seen in described)
        self.kind = backend, precision = kinds.most_common(1)[0][0]  # the most workers' (backend, precision)
        self.notes = self._plan_as(backend, precision)
        usable = [actor for actor, seen in zip(actors, described) if (seen["backend"], seen["precision"]) ==
                  (backend, precision)]  # only workers that make the keys this build plans
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
        from dreamer.backends import chosen_backend
        from dreamer.precision import plan_auto_as, resolve

        here = (chosen_backend(), resolve("auto"))
        os.environ["KERAS_BACKEND"] = backend  # what chosen_backend() answers from now on: planning imports no Keras
        plan_auto_as(precision)
        if here == (backend, precision):
            return []
        return [f"note: planning with the cluster's workers: {backend} {precision} (here: {here[0]} {here[1]})"]

    def photos_together(self, batch) -> int:
        """Photos of one style sent together: `batch`, or for 'auto' as many as one worker's renderer takes."""
        from dreamer.batching import CPU_AUTO_BATCH, MAX_AUTO_BATCH

        return batch if batch != "auto" else MAX_AUTO_BATCH if self.gpus else CPU_AUTO_BATCH

    def run(self, groups, settings):
        """Send the groups to the actors, at most IN_FLIGHT queued on each; yield (jobs, results) as they end."""
        ray, queue = self.ray, collections.deque(groups)
        photos = {}  # a photo's name -> its bytes in the object store, put once
        pending, load = {}, {actor: 0 for actor in self.actors}

        def sources(jobs):
            out = []
            for job in jobs:
                name = str(job.photo.path)
                if name not in photos:  # static (noise:WxH) is made from its name, not from a file
                    photos[name] = ray.put(job.photo.path.read_bytes()) if job.photo.path.is_file() else None
                out.append((name, photos[name]))
            return out

        lost = collections.Counter()  # a group's id -> the times its worker died under it
        while queue or pending:
            while queue and self.actors and load[actor := min(self.actors, key=load.get)] < IN_FLIGHT:
                jobs = queue.popleft()  # to the least loaded worker
                pending[actor.render.remote(sources(jobs), jobs[0].style, settings)] = (jobs, actor)
                load[actor] += 1
            if not pending:  # no worker left
                for jobs in queue:
                    yield jobs, ["no worker of the cluster is left; run build.py again"] * len(jobs)
                return
            (ref,), _ = ray.wait(list(pending), num_returns=1)
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
                results = [f"lost with {RETRIES + 1} workers of the cluster ({one_line(exc)[:200]})"] * len(jobs)
            except ray.exceptions.RayError as exc:
                results = [f"lost on the cluster ({one_line(exc)[:200]}); run build.py again"] * len(jobs)
            yield jobs, results

    def _replace(self, dead, load: dict) -> None:
        """Drop a dead worker and start another in its place, if the cluster has room for it in START_TIMEOUT."""
        ray = self.ray
        self.actors.remove(dead)
        del load[dead]
        ray.kill(dead, no_restart=True)
        new = self._renderer.remote()
        try:
            seen = ray.get(new.describe.remote(), timeout=START_TIMEOUT)
        except (ray.exceptions.GetTimeoutError, ray.exceptions.RayError):
            ray.kill(new, no_restart=True)
            return
        if (seen["backend"], seen["precision"]) == self.kind:
            self.actors.append(new)
            load[new] = 0

    def close(self):
        """Stop the actors (what they were doing is dropped) and disconnect; a local Ray is shut down."""
        for actor in getattr(self, "actors", []):
            self.ray.kill(actor, no_restart=True)
        self.actors = []
        self.ray.shutdown()
