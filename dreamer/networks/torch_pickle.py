"""Read a legacy (non-zip) PyTorch `torch.save` file of tensors into numpy arrays, without torch.

The legacy format is five pickles in a row (magic number, protocol version, system info, the
object with persistent ids for its storages, the list of storage keys), then, for each key, an
8-byte little-endian element count and the storage's raw bytes. Only tensors, storages and
OrderedDicts are unpickled; any other global is refused, so a hostile file cannot run code. Every
storage must lie inside the file and every tensor inside its storage (known dtype, whole
non-negative sizes, strides and offset), so a hostile file cannot make the reader touch other memory.
"""

import collections
import math
import os
import pickle
import struct
from dataclasses import dataclass

import numpy as np

from dreamer.errors import BadWeightsFile, WeightsError

MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
PROTOCOL_VERSION = 1001
STORAGE_DTYPES = {
    "DoubleStorage": np.float64, "FloatStorage": np.float32, "HalfStorage": np.float16,
    "LongStorage": np.int64, "IntStorage": np.int32, "ShortStorage": np.int16,
    "CharStorage": np.int8, "ByteStorage": np.uint8, "BoolStorage": np.bool_,
}
MAX_DIMS = 32


@dataclass
class _Storage:
    """A storage named in the object pickle; its bytes come later in the file."""

    dtype: np.dtype
    numel: int
    data: np.ndarray | None = None


@dataclass
class _TensorRef:
    """A tensor as a view of a storage, as unpickled (checked by `problem` before it is read)."""

    storage: object
    offset: object
    size: object
    stride: object

    def problem(self, limit: int) -> str | None:
        """Why this view cannot be read from its storage, or None. `limit` (the file's size) bounds every
        number and the tensor's element count."""
        if not isinstance(self.storage, _Storage) or self.storage.data is None:
            return "its storage is not in the file"
        if not (isinstance(self.size, tuple | list) and isinstance(self.stride, tuple | list)
                and len(self.size) == len(self.stride) <= MAX_DIMS
                and all(_whole(n, limit) for n in (self.offset, *self.size, *self.stride))):
            return (f"sizes {self.size!r:.60}, strides {self.stride!r:.60} and offset {self.offset!r:.20}: each "
                    f"must be a whole number from 0 to {limit} (the file's size), a stride for each size, "
                    f"{MAX_DIMS} sizes at most")
        elements = math.prod(self.size)
        if elements > limit:
            return f"{elements} elements, more than the file's {limit} bytes"
        last = self.offset + sum((n - 1) * s for n, s in zip(self.size, self.stride))
        if 0 not in self.size and last >= self.storage.numel:
            return f"reads element {last} of a storage of {self.storage.numel}"
        return None

    def array(self) -> np.ndarray:
        """A contiguous copy of the tensor's elements, in its shape (a 0-d one too), once `problem` found none."""
        itemsize = self.storage.data.itemsize
        view = np.lib.stride_tricks.as_strided(
            self.storage.data[self.offset:], shape=self.size, strides=[s * itemsize for s in self.stride])
        return view.copy()


def _whole(value, limit: int) -> bool:
    """True when `value` is an int (not a bool) from 0 to `limit`."""
    return type(value) is int and 0 <= value <= limit


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None,
                       metadata=None):
    """Stand-in for torch's own: record the view; it is checked and read once the storages are."""
    return _TensorRef(storage, storage_offset, size, stride)


class _Unpickler(pickle.Unpickler):
    """An unpickler that knows tensors, storages and OrderedDict, and nothing else."""

    def __init__(self, file, path):
        super().__init__(file)
        self.path = path
        self.storages: dict[str, _Storage] = {}

    def find_class(self, module, name):
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor_v2
        if module == "torch" and name in STORAGE_DTYPES:
            return np.dtype(STORAGE_DTYPES[name])
        raise WeightsError(f"{self.path}: refusing to unpickle {module}.{name} (only tensors are allowed)")

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) == 6 and pid[0] == "storage" and pid[5] is None):
            raise WeightsError(f"{self.path}: unsupported storage record {pid!r:.80}")
        _, dtype, key, _location, numel, _view = pid
        if not (isinstance(dtype, np.dtype) and isinstance(key, str) and type(numel) is int and numel >= 0):
            raise BadWeightsFile(self.path, f"storage record {pid!r:.80} has no storage type, key or size")
        storage = self.storages.setdefault(key, _Storage(dtype, numel))
        if (storage.dtype, storage.numel) != (dtype, numel):
            raise BadWeightsFile(self.path, f"storage {key} is declared twice, differently")
        return storage


def _read_storages(file, end: int, keys, storages: dict, path) -> None:
    """Read each listed storage's bytes into storages[key], refusing one that is unknown, listed twice, of another
    size than declared or past the file's `end`."""
    if not isinstance(keys, list):
        raise BadWeightsFile(path, "the list of storages is missing")
    for key in keys:
        storage = storages.get(key) if isinstance(key, str) else None
        if storage is None or storage.data is not None:
            raise BadWeightsFile(path, f"storage {key!r:.40} is unknown or listed twice")
        header = file.read(8)
        numel = struct.unpack("<q", header)[0] if len(header) == 8 else None
        nbytes = storage.numel * storage.dtype.itemsize
        if numel != storage.numel or file.tell() + nbytes > end:
            raise BadWeightsFile(path, f"storage {key} is truncated or has the wrong size")
        storage.data = np.frombuffer(file.read(nbytes), storage.dtype)


def read_torch_legacy(path) -> collections.OrderedDict:
    """The tensors of a legacy `torch.save` state dict at `path`, as name -> numpy array."""
    with open(path, "rb") as file:
        unpickler = _Unpickler(file, path)
        try:
            magic = unpickler.load()
        except Exception:
            magic = None
        if magic != MAGIC_NUMBER:
            raise WeightsError(f"{path}: not a legacy PyTorch weights file (bad magic number)")
        try:
            if unpickler.load() != PROTOCOL_VERSION or not unpickler.load().get("little_endian"):
                raise WeightsError(f"{path}: unsupported PyTorch protocol version or byte order")
            state = unpickler.load()
            size = os.fstat(file.fileno()).st_size
            _read_storages(file, size, unpickler.load(), unpickler.storages, path)
            return _tensors(state, size, path)
        except WeightsError:
            raise
        except Exception as error:
            raise WeightsError(f"{path}: cannot read PyTorch weights ({type(error).__name__}: {error})") from None


def _tensors(state, limit: int, path) -> collections.OrderedDict:
    """name -> array of a state dict of checked tensor views."""
    if not (isinstance(state, dict) and all(isinstance(name, str) and isinstance(ref, _TensorRef)
                                            for name, ref in state.items())):
        raise WeightsError(f"{path}: expected a state dict of tensors")
    for name, ref in state.items():
        problem = ref.problem(limit)
        if problem:
            raise BadWeightsFile(path, f"tensor {name}: {problem}")
    return collections.OrderedDict((name, ref.array()) for name, ref in state.items())
