"""Gallery builds on a real multi-process Ray cluster: a head and a second node started with `ray start`
(one CPU each, token authentication on), build.py run against it as a user runs it. The cluster's renders equal a
serial build's, file for file; a worker or a node killed mid-render costs nothing; a bad photo fails once; Ctrl-C
leaves a valid site; a driver without the token is refused on one line. `local` listens on the loopback address
only, and a local Ray that dies stops the build on one line, leaving a site the next build resumes."""

import contextlib
import hashlib
import ipaddress
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import pytest
from conftest import REPO, check_site, make_tiny
from test_clips import write_source

from dreamer.engine.precision import cpu_has_native_bf16
from dreamer.gallery.cluster import RESULT, _checked
from dreamer.gallery.execute import Rendered
from dreamer.gallery.files import STATE

RAY = Path(sys.executable).with_name("ray")
# No usage report; the cluster fixture adds its token (RAY_AUTH_MODE=token, RAY_AUTH_TOKEN_PATH).
ENV = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
# Three photos x two styles, slow enough (a few seconds a render) to interrupt mid-build.
TOML = """\
size = 96
styles = ["vgg16-eyes", "hed-edges"]
batch = 1
[style.vgg16-eyes]
octaves = 2
steps = 6
every = 3
[style.hed-edges]
octaves = 2
steps = 6
every = 3
"""
PHOTOS = ("chelsea.jpg", "coffee.jpg", "rocket.jpg")
NODE = ["--num-cpus=1", "--node-ip-address=127.0.0.1", "--disable-usage-stats"]  # one worker a node
RENDERING = "ray::Renderer.render"  # a worker's process title while it renders
TEMP_DIRS = {}  # a test cluster's address -> its Ray folder, which names its processes


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """ADDRESS of a head node and a second node joined to it, with token authentication; their processes are
    stopped afterwards (only theirs: `ray stop` would stop every Ray on the machine)."""
    try:
        import ray  # noqa: F401
    except ImportError:
        message = "Ray is not installed: pip install -e '.[cluster]'"
        pytest.fail(message) if os.environ.get("CI") else pytest.skip(message)
    token = tmp_path_factory.mktemp("ray") / "token"
    token.touch(mode=0o600)
    token.write_text(secrets.token_hex(32))
    ENV.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN_PATH=str(token))
    temp = tempfile.mkdtemp(prefix="ray", dir="/tmp")  # in every process's command line; short for Ray's sockets
    try:  # port 0: Ray picks a free one and says which
        started = subprocess.run([RAY, "start", "--head", "--port=0", f"--temp-dir={temp}", "--include-dashboard=false",
                                  *NODE], env=ENV, check=True, capture_output=True, text=True, timeout=120)
        address = "127.0.0.1:" + re.search(r"--address='[^']*:(\d+)'", started.stdout + started.stderr)[1]
        TEMP_DIRS[address] = temp
        join(address)
        yield address
    finally:
        processes = ray_processes(temp)
        for process in processes:
            with contextlib.suppress(psutil.NoSuchProcess):
                process.kill()
        psutil.wait_procs(processes, timeout=60)
        shutil.rmtree(temp, ignore_errors=True)


def join(address: str) -> None:
    subprocess.run([RAY, "start", f"--address={address}", *NODE], env=ENV, check=True, capture_output=True, timeout=120)


def ray_processes(temp: str) -> list[psutil.Process]:
    """The processes of the test cluster whose Ray folder is `temp`, and their descendants."""
    found = set()
    for process in psutil.process_iter(["cmdline"]):
        with contextlib.suppress(psutil.Error):
            if temp in " ".join(process.info["cmdline"] or ()):
                found |= {process, *process.children(recursive=True)}
    return list(found)


def raylets(address: str) -> set[psutil.Process]:
    """The raylets of the test cluster: one a node."""
    return {process for process in ray_processes(TEMP_DIRS[address]) if process.name() == "raylet"}


def rendering(raylet: psutil.Process) -> bool:
    """Whether a worker of this node is rendering a group now."""
    with contextlib.suppress(psutil.Error):
        return any(" ".join(child.cmdline()).startswith(RENDERING) for child in raylet.children())
    return False


def build_py(folder: Path, *args, env=None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(REPO / "build.py"), "--config", str(folder / "gallery.toml"), *args],
                            env=env or ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def finished(proc: subprocess.Popen, timeout=600) -> tuple[int, str]:
    out, _ = proc.communicate(timeout=timeout)
    return proc.returncode, out


def verified(folder: Path) -> None:
    """Assert `build.py --verify` finds every file of the site intact."""
    code, out = finished(build_py(folder, "--verify"))
    assert code == 0 and "all intact" in out, out


def site_bytes(site: Path) -> dict[str, str]:
    """Every published file of a site but its manifest (which records how long each render took) -> its sha256."""
    return {str(path.relative_to(site)): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(site.rglob("*")) if path.is_file() and path.name != "manifest.json"
            and path.relative_to(site).parts[0] != STATE}


def wait_for_line(proc: subprocess.Popen, text: str) -> list[str]:
    """Read the build's output until a line containing `text`; the lines read."""
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if text in line:
            return lines
    raise AssertionError(f"the build ended before {text!r}: {''.join(lines)}")


def listening(pid: int) -> list[tuple[str, str]]:
    """(process name, address) of every listening TCP and bound UDP socket of process `pid` and its descendants."""
    root, found = psutil.Process(pid), []
    for process in [root, *root.children(recursive=True)]:
        with contextlib.suppress(psutil.NoSuchProcess):
            found += [(process.name(), c.laddr.ip) for c in process.net_connections("inet")
                      if c.status == psutil.CONN_LISTEN or c.type == socket.SOCK_DGRAM]
    return found


def loopback(ip: str) -> bool:
    address = ipaddress.ip_address(ip)
    return (getattr(address, "ipv4_mapped", None) or address).is_loopback


@pytest.fixture(scope="module")
def serial_site(tmp_path_factory):
    folder = make_tiny(tmp_path_factory.mktemp("serial"), TOML, photos=PHOTOS)
    code, out = finished(build_py(folder))
    assert code == 0, out
    return folder / "site"


def test_a_cluster_build_equals_a_serial_one(cluster, serial_site, tmp_path):
    """Both nodes render, with the token; every file is the serial build's, byte for byte, and verifies."""
    folder = make_tiny(tmp_path, TOML, photos=PHOTOS)
    code, out = finished(build_py(folder, "--cluster", cluster))
    assert code == 0, out
    assert "rendered 6, reused 0, failed 0" in out
    nodes = {line.rsplit(" on ", 1)[1].strip() for line in out.splitlines()
             if line.startswith("rendered ") and " · " in line}
    assert len(nodes) == 2, out
    assert site_bytes(folder / "site") == site_bytes(serial_site)
    check_site(folder / "site")
    verified(folder)


def test_local_listens_on_loopback_only(serial_site, tmp_path):
    """While it renders, every socket of the Ray that `local:2` starts listens on the loopback address only; the
    build equals a serial one."""
    folder = make_tiny(tmp_path, TOML, photos=PHOTOS)
    proc = build_py(folder, "--cluster", "local:2")
    lines = wait_for_line(proc, "rendered ")
    sockets = listening(proc.pid)
    code, out = finished(proc)
    assert code == 0, "".join(lines) + out
    assert {"gcs_server", "raylet"} <= {name for name, _ in sockets}, sockets
    assert all(loopback(ip) for _, ip in sockets), sockets
    assert site_bytes(folder / "site") == site_bytes(serial_site)
    verified(folder)


def test_a_worker_killed_mid_build_costs_nothing(cluster, serial_site, tmp_path):
    folder = make_tiny(tmp_path, TOML, photos=PHOTOS)
    proc = build_py(folder, "--cluster", cluster)
    lines = wait_for_line(proc, "rendered ")
    busy = [child for raylet in raylets(cluster) for child in raylet.children()
            if " ".join(child.cmdline()).startswith(RENDERING)]
    assert busy, "no worker was rendering"
    busy[0].kill()
    code, out = finished(proc)
    out = "".join(lines) + out
    assert code == 0, out
    assert "rendered 6, reused 0, failed 0" in out and out.count("rendered ") == 6 + 1
    assert site_bytes(folder / "site") == site_bytes(serial_site)
    verified(folder)


def test_a_node_lost_mid_build_costs_nothing(cluster, serial_site, tmp_path):
    """A third node joins, its worker takes groups; while it renders one, the node dies (its raylet killed): its
    groups go to the other workers, and the build ends whole."""
    before = raylets(cluster)
    join(cluster)
    (raylet,) = raylets(cluster) - before
    folder = make_tiny(tmp_path, TOML, photos=PHOTOS)
    proc = build_py(folder, "--cluster", cluster)
    while not rendering(raylet):  # ends when the third node renders, or fails when the build ends first
        assert proc.poll() is None, "the third node never rendered"
        time.sleep(0.05)  # a poll's pause, not a synchronisation: the condition is what is waited for
    raylet.kill()
    code, out = finished(proc)
    assert code == 0 and "rendered 6, reused 0, failed 0" in out, out
    assert site_bytes(folder / "site") == site_bytes(serial_site)
    verified(folder)


def test_a_bad_photo_fails_once_and_a_clip_is_refused(cluster, tmp_path):
    """A photo that cannot be read fails once; a clip's row fails on one line saying to build it without --cluster
    (a clip dreams frame after frame, here); the good photo renders on the cluster."""
    folder = make_tiny(tmp_path, TOML, photos=PHOTOS[:1])
    (folder / "inputs" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a JPEG")
    write_source(folder / "inputs" / "pan.mp4", count=2)
    code, out = finished(build_py(folder, "--cluster", cluster))
    assert code == 1 and "Traceback" not in out, out
    assert "rendered 2, reused 0, failed 4" in out
    # its line when the photo is read, and once in the summary's problems: never sent to a worker, never retried
    assert out.count("broken.jpg: truncated or damaged") == 2, out
    for style in ("vgg16-eyes", "hed-edges"):  # its error line, and once in the summary's problems
        refused = f"pan.mp4 · {style}: clips render without --cluster (one dreams frame after frame, here); build " \
                  "without it"
        assert out.count(f"error: {refused}\n") == 1 and out.count(f"  {refused}\n") == 1, out
    renders = check_site(folder / "site")["renders"]
    assert sorted(entry["input"] for entry in renders.values()) == ["chelsea.jpg"] * 2


def test_ctrl_c_leaves_a_valid_site_that_resumes(cluster, tmp_path):
    folder = make_tiny(tmp_path, TOML, photos=PHOTOS)
    proc = build_py(folder, "--cluster", cluster)
    lines = wait_for_line(proc, "rendered ")
    proc.send_signal(signal.SIGINT)
    code, out = finished(proc, timeout=120)
    assert code == 130, "".join(lines) + out
    manifest = check_site(folder / "site")
    done = len(manifest["renders"])
    assert 1 <= done < 6
    verified(folder)
    code, out = finished(build_py(folder, "--cluster", cluster))
    assert code == 0 and f"rendered {6 - done}, reused {done}, failed 0" in out, out


def test_a_local_ray_that_dies_stops_the_build_on_one_line(tmp_path):
    """The build's own Ray loses its raylet mid-build: one line says what died and how many renders are left,
    exit 1; the site is valid, and the next build would render only what is left."""
    folder = make_tiny(tmp_path, TOML, photos=PHOTOS)
    proc = build_py(folder, "--cluster", "local:1")
    for _ in range(2):  # then every photo is in Ray's object store, and the driver waits for the third render
        wait_for_line(proc, "rendered ")
    (raylet,) = [child for child in psutil.Process(proc.pid).children() if child.name() == "raylet"]
    raylet.kill()
    code, out = finished(proc)
    errors = [line for line in out.splitlines() if line.startswith("error:")]
    assert code == 1 and "Traceback" not in out, out
    said = re.fullmatch(r"error: --cluster local:1: Ray's raylet \(pid \d+\) ended; (\d) render\(s\) left; "
                        r"the site is valid: run build.py again to resume", errors[0]) if len(errors) == 1 else None
    assert said, out
    left = int(said[1])
    done = len(check_site(folder / "site")["renders"])
    assert done + left == 6, out
    verified(folder)
    code, out = finished(build_py(folder, "--dry-run"))
    assert code == 0 and f"dry run: would render {left}, reuse {done}, skip 0" in out, out


def test_a_driver_without_the_token_is_refused_on_one_line(cluster, tmp_path):
    folder = make_tiny(tmp_path, TOML, photos=PHOTOS[:1])
    # no token here; Ray's own connection retries shortened from 20
    env = {**ENV, "RAY_AUTH_MODE": "disabled", "RAY_NUM_REDIS_GET_RETRIES": "2"}
    code, out = finished(build_py(folder, "--cluster", cluster, env=env))
    assert code == 2 and out.strip() == f"error: --cluster {cluster}: the cluster refused this machine: it takes " \
        "token authentication; set RAY_AUTH_MODE=token and its token here (RAY_AUTH_TOKEN_PATH, or " \
        "~/.ray/auth_token)", out
    assert not (folder / "site").exists()


def test_cluster_errors_are_one_line_and_write_nothing(tmp_path):
    folder = make_tiny(tmp_path, TOML, photos=PHOTOS[:1])
    with socket.socket() as bound:  # bound and never listening: a connection to it is refused
        bound.bind(("127.0.0.1", 0))
        code, out = finished(build_py(folder, "--cluster", f"127.0.0.1:{bound.getsockname()[1]}"))
    assert code == 2 and out.startswith("error: --cluster 127.0.0.1:") and "cannot connect" in out, out
    assert not (folder / "site").exists()
    code, out = finished(build_py(folder, "--cluster", "nowhere"))
    assert code == 2 and "use auto, local, local:N, ray://HOST:PORT or HOST:PORT" in out, out
    # without the extra: Ray hidden from the build
    hide = "import sys; sys.modules['ray'] = None; sys.argv = sys.argv[1:]; import runpy; " \
           "runpy.run_path(sys.argv[0], run_name='__main__')"
    proc = subprocess.run([sys.executable, "-c", hide, str(REPO / "build.py"), "--config", str(folder / "gallery.toml"),
                           "--cluster", "local"], env=ENV, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stderr.strip() == \
        "error: --cluster local: Ray is not installed; pip install -e '.[cluster]'", proc.stderr
    assert not (folder / "site").exists()


def test_the_driver_plans_with_the_workers_backend(cluster, serial_site, tmp_path):
    """This machine would plan JAX keys; the cluster's workers render with TensorFlow: the build plans theirs,
    says so, and makes the serial TensorFlow build's files."""
    folder = make_tiny(tmp_path, TOML, photos=PHOTOS)
    code, out = finished(build_py(folder, "--cluster", cluster, env={**ENV, "KERAS_BACKEND": "jax"}))
    assert code == 0, out
    here = "bfloat16" if cpu_has_native_bf16() else "float32"  # auto on this CPU (AMX or not), workers' and ours
    assert f"note: planning with the cluster's workers: tensorflow {here} (here: jax {here})" in out
    assert site_bytes(folder / "site") == site_bytes(serial_site)


class Evil:
    """Not a render's result: an object the driver must not take for one."""


GOOD = {"key": "k1", "files": {"gif": b"GIF89a", "still": b"\xff\xd8\xff"}, "frames": 5, "gif_frames": 9,
        "width": 96, "height": 64, "seconds": 1.5, "backend": "tensorflow", "precision": "float32", "node": "vm:1"}


@pytest.mark.parametrize("bad, problem", [
    (Evil(), "not a render's fields"),
    ({**GOOD, "extra": 1}, "not a render's fields"),
    ({**GOOD, "frames": True}, "frames is not int"),
    ({**GOOD, "files": [b"GIF89a"]}, "files is not dict"),
    ({**GOOD, "key": "k2"}, "the render k2, where k1 was asked"),
    ({**GOOD, "files": {"gif": b"GIF89a"}}, "files gif, where gif, still were asked"),
    ({**GOOD, "files": {**GOOD["files"], "../../x": b"1"}}, "files ../../x, gif, still, where gif, still were asked"),
    ({**GOOD, "files": {**GOOD["files"], "still": "text"}}, "a file that is not bytes, is empty or is over 1024 MiB"),
    ({**GOOD, "files": {**GOOD["files"], "still": b""}}, "a file that is not bytes, is empty or is over 1024 MiB"),
    ({**GOOD, "width": 0}, "no frames or no pixels"),
    ({**GOOD, "seconds": float("nan")}, "a time that is no time"),
    ({**GOOD, "precision": "bfloat16"}, "rendered with tensorflow bfloat16, not tensorflow float32"),
    ({**GOOD, "node": "vm\x1b[2J"}, "a node's name that is not one line of text"),
])
def test_a_bad_result_from_a_worker_fails_its_job_on_one_line(bad, problem):
    """A worker's result is checked before anything is written: a bad one becomes its job's error line."""
    assert _checked(bad, "k1", {"gif", "still"}, ("tensorflow", "float32")) == \
        f"the cluster sent back a bad result ({problem}); nothing written"
    assert _checked("bad\nphoto\x1b[2J", "k1", set(), ()) == "bad photo [2J"  # a worker's error: one printable line
    good = _checked(GOOD, "k1", {"gif", "still"}, ("tensorflow", "float32"))
    assert isinstance(good, Rendered) and good.files == GOOD["files"] and set(RESULT) == set(GOOD)
