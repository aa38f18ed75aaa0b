"""Gallery builds on a real multi-process Ray cluster: a head and a second node started with `ray start`
(one CPU each), build.py run against it as a user runs it. The cluster's renders equal a serial build's (keys
and bytes); a worker killed mid-build costs nothing; a bad photo fails once; Ctrl-C leaves a valid site."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dreamer.precision import cpu_has_native_bf16

from conftest import REPO, check_site, make_tiny

RAY = Path(sys.executable).with_name("ray")
# A loopback test cluster: no usage report, no auth token to hand round (a real cluster keeps Ray's tokens).
ENV = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled"}
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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def cluster():
    """ADDRESS of a head node and a second node joined to it, stopped afterwards."""
    try:
        import ray  # noqa: F401
    except ImportError:
        message = "Ray is not installed: pip install -e '.[cluster]'"
        pytest.fail(message) if os.environ.get("CI") else pytest.skip(message)
    address = f"127.0.0.1:{free_port()}"
    subprocess.run([RAY, "start", "--head", f"--port={address.split(':')[1]}", "--include-dashboard=false", *NODE],
                   env=ENV, check=True, capture_output=True, timeout=120)
    try:
        join(address)
        yield address
    finally:
        subprocess.run([RAY, "stop", "--force"], env=ENV, capture_output=True, timeout=120)


def join(address: str) -> None:
    subprocess.run([RAY, "start", f"--address={address}", *NODE], env=ENV, check=True, capture_output=True, timeout=120)


def raylets() -> set[int]:
    """The pids of this machine's raylets: one a node."""
    found = subprocess.run(["pgrep", "-x", "raylet"], capture_output=True, text=True).stdout.split()
    return {int(pid) for pid in found}


def build_py(folder: Path, *args, env=ENV) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(REPO / "build.py"), "--config", str(folder / "gallery.toml"), *args],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def finished(proc: subprocess.Popen, timeout=600) -> tuple[int, str]:
    out, _ = proc.communicate(timeout=timeout)
    return proc.returncode, out


def files_of(site: Path) -> dict:
    return json.loads((site / "manifest.json").read_text())["files"]


def wait_for_line(proc: subprocess.Popen, text: str, timeout=300) -> list[str]:
    """Read the build's output until a line containing `text`; the lines read."""
    lines, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        assert line, f"the build ended before {text!r}: {''.join(lines)}"
        lines.append(line)
        if text in line:
            return lines
    raise AssertionError(f"no {text!r} in {timeout} s")


@pytest.fixture(scope="module")
def serial_site(tmp_path_factory):
    folder = make_tiny(tmp_path_factory.mktemp("serial"), TOML, photos=PHOTOS)
    code, out = finished(build_py(folder))
    assert code == 0, out
    return folder / "site"


@pytest.mark.parametrize("where", ["joined", "local:2"])
def test_a_cluster_build_equals_a_serial_one(cluster, serial_site, tmp_path, where):
    """On the two-node cluster, and on a Ray started by the build itself with two workers."""
    folder = make_tiny(tmp_path, TOML, photos=PHOTOS)
    code, out = finished(build_py(folder, "--cluster", cluster if where == "joined" else where))
    assert code == 0, out
    assert "rendered 6, reused 0, failed 0" in out
    nodes = {line.rsplit(" on ", 1)[1].strip() for line in out.splitlines() if line.startswith("rendered ") and " · " in line}
    assert len(nodes) == (2 if where == "joined" else 1), out  # both nodes rendered
    assert files_of(folder / "site") == files_of(serial_site)  # every file: same names, same sha256
    check_site(folder / "site")


def test_a_worker_killed_mid_build_costs_nothing(cluster, serial_site, tmp_path):
    folder = make_tiny(tmp_path, TOML, photos=PHOTOS)
    proc = build_py(folder, "--cluster", cluster)
    lines = wait_for_line(proc, "rendered ")
    busy = subprocess.run(["pgrep", "-f", "ray::Renderer.render"], capture_output=True, text=True).stdout.split()
    assert busy, "no worker was rendering"
    os.kill(int(busy[0]), signal.SIGKILL)
    code, out = finished(proc)
    out = "".join(lines) + out
    assert code == 0, out
    assert "rendered 6, reused 0, failed 0" in out and out.count("rendered ") == 6 + 1
    assert files_of(folder / "site") == files_of(serial_site)
    code, out = finished(build_py(folder, "--verify"))
    assert code == 0 and "all intact" in out, out


def test_a_node_lost_mid_build_costs_nothing(cluster, serial_site, tmp_path):
    """A third node joins, its worker takes groups; mid-build the node dies (its raylet killed): its groups go to
    the other workers, and the build ends whole."""
    before = raylets()
    join(cluster)
    (raylet,) = raylets() - before
    folder = make_tiny(tmp_path, TOML, photos=PHOTOS)
    proc = build_py(folder, "--cluster", cluster)
    lines = wait_for_line(proc, "rendered ")
    os.kill(raylet, signal.SIGKILL)
    code, out = finished(proc)
    out = "".join(lines) + out
    assert code == 0 and "rendered 6, reused 0, failed 0" in out, out
    assert files_of(folder / "site") == files_of(serial_site)
    code, out = finished(build_py(folder, "--verify"))
    assert code == 0 and "all intact" in out, out


def test_a_bad_photo_fails_once(cluster, tmp_path):
    folder = make_tiny(tmp_path, TOML, photos=PHOTOS[:1])
    (folder / "inputs" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a JPEG")
    code, out = finished(build_py(folder, "--cluster", cluster))
    assert code == 1, out
    assert "rendered 2, reused 0, failed 2" in out
    # its line when the photo is read, and once in the summary's problems: never sent to a worker, never retried
    assert out.count("broken.jpg: truncated or damaged") == 2, out


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
    code, out = finished(build_py(folder, "--verify"))
    assert code == 0, out
    code, out = finished(build_py(folder, "--cluster", cluster))
    assert code == 0 and f"rendered {6 - done}, reused {done}, failed 0" in out, out


def test_cluster_errors_are_one_line_and_write_nothing(tmp_path):
    folder = make_tiny(tmp_path, TOML, photos=PHOTOS[:1])
    code, out = finished(build_py(folder, "--cluster", f"127.0.0.1:{free_port()}"))
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
    assert files_of(folder / "site") == files_of(serial_site)
