"""Read a legacy (non-zip) PyTorch `torch.save` file of tensors into numpy arrays, without torch.

The legacy format is five pickles in a row (magic number, protocol version, system info, the
object with persistent ids for its storages, the list of storage keys), then, for each key, an
8-byte little-endian element count and the storage's raw bytes. Only tensors, storages and
OrderedDicts are unpickled; any other global is refused, so a hostile file cannot run code.
"""

import collections
import pickle
import struct
from dataclasses import dataclass

import numpy as np

from dreamer.errors import WeightsError

MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
PROTOCOL_VERSION = 1001
STORAGE_DTYPES = {
    "DoubleStorage": np.float64, "FloatStorage": np.float32, "HalfStorage": np.float16,
    "LongStorage": np.int64, "IntStorage": np.int32, "ShortStorage": np.int16,
    "CharStorage": np.int8, "ByteStorage": np.uint8, "BoolStorage": np.bool_,
}


@dataclass
class _Storage:
    """A storage named in the object pickle; its bytes come later in the file."""

    dtype: np.dtype
    numel: int
    data: np.ndarray | None = None


@dataclass
class _TensorRef:
    """A tensor as a view of a storage, materialised once the storages are read."""

    storage: _Storage
    offset: int
    size: tuple
    stride: tuple

    def array(self) -> np.ndarray:
        """A contiguous copy of the tensor's elements."""
        itemsize = self.storage.data.itemsize
        view = np.lib.stride_tricks.as_strided(
            self.storage.data[self.offset:], shape=self.size, strides=[s * itemsize for s in self.stride])
        return np.ascontiguousarray(view)


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None,
                       metadata=None):
    """Stand-in for torch's own: record the view; the storage's bytes are read later."""
    return _TensorRef(storage, storage_offset, tuple(size), tuple(stride))


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
        return self.storages.setdefault(key, _Storage(dtype, numel))


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
            for key in unpickler.load():
                storage = unpickler.storages[key]
                (numel,) = struct.unpack("<q", file.read(8))
                storage.data = np.frombuffer(file.read(numel * storage.dtype.itemsize), storage.dtype)
                if numel != storage.numel or storage.data.size != numel:
                    raise WeightsError(f"{path}: storage {key} is truncated or has the wrong size")
        except WeightsError:
            raise
        except Exception as error:
            raise WeightsError(f"{path}: cannot read PyTorch weights ({type(error).__name__}: {error})") from None
    if not (isinstance(state, dict) and all(isinstance(ref, _TensorRef) for ref in state.values())):
        raise WeightsError(f"{path}: expected a state dict of tensors")
    return collections.OrderedDict((name, ref.array()) for name, ref in state.items())
