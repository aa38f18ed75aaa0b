"""The PyTorch reader against crafted files: a seeded fuzz of small legacy files derived from the real
EfficientNet-Lite0 .pth (its first tensors with their storage types, strides and bytes, and a view into one of
them), with mutated sizes, strides, offsets, storage sizes, storage types and keys, flipped bytes and
truncations. Each file must load to exactly what its records say, or be refused on one line naming it; none may
crash the reader or read outside the file. The fuzz runs in a subprocess, so a segmentation fault fails the
test instead of killing pytest."""

import collections
import copy
import json
import math
import pickle
import pickletools
import random
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np

from dreamer.errors import WeightsError
from dreamer.networks.efficientnet_lite import pth_path
from dreamer.networks.torch_pickle import MAGIC_NUMBER, MAX_DIMS, PROTOCOL_VERSION, STORAGE_DTYPES, read_torch_legacy

REAL_TENSORS = 7  # _conv_stem.weight (channels-last strides), _bn0's five, a depthwise kernel
VIEW = ("_conv_stem.weight[1]", 1, (3, 3, 3), (32, 288, 96))  # filter 1 of the stem: offset 1 in its storage
SEED, STRUCTURAL, RAW = 24, 320, 100


class _Header(pickle.Unpickler):
    """The real file's records as plain data: a tensor as (storage record, offset, size, stride)."""

    def find_class(self, module, name):
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return lambda storage, offset, size, stride, *rest: (storage, offset, size, stride)
        if module == "torch" and name in STORAGE_DTYPES:
            return name
        raise pickle.UnpicklingError(f"{module}.{name}")

    def persistent_load(self, pid):
        return pid


def derived_model() -> dict:
    """The real file's system info, first tensors and their storages, plus VIEW, as a model to mutate:
    tensors [name, key, offset, size, stride]; storages {key: [type name, declared numel, written count, bytes]};
    listed: the storage keys in file order."""
    with open(pth_path(), "rb") as file:
        header = _Header(file)
        header.load(), header.load()
        system = header.load()
        state, keys = header.load(), header.load()
        chosen = list(state.items())[:REAL_TENSORS]
        wanted = {pid[2] for _, (pid, *_) in chosen}
        types = {pid[2]: pid[1] for pid, *_ in state.values()}
        storages = {}
        for key in keys:
            (count,) = struct.unpack("<q", file.read(8))
            nbytes = count * np.dtype(STORAGE_DTYPES[types[key]]).itemsize
            if key in wanted:
                storages[key] = [types[key], count, count, file.read(nbytes)]
            else:
                file.seek(nbytes, 1)
    tensors = [[name, pid[2], offset, size, stride] for name, (pid, offset, size, stride) in chosen]
    tensors.append([VIEW[0], tensors[0][1], *VIEW[1:]])
    return {"system": system, "tensors": tensors, "storages": storages, "listed": [k for k in keys if k in wanted]}


def _ops(value) -> bytes:
    """The pickle opcodes that push `value` (ints, strings, tuples, None, ...)."""
    return pickletools.optimize(pickle.dumps(value, protocol=2))[2:-1]


def legacy_file(model: dict) -> bytes:
    """The legacy torch.save bytes of a model (see derived_model), written opcode by opcode, as torch does."""
    ordered = b"ccollections\nOrderedDict\n)R"
    items = b""
    for name, key, offset, size, stride in model["tensors"]:
        type_name, numel = model["storages"][key][:2]
        pid = b"(" + _ops("storage") + f"ctorch\n{type_name}\n".encode() + _ops(key) + _ops("cpu") + _ops(numel)
        args = pid + _ops(None) + b"tQ" + _ops(offset) + _ops(size) + _ops(stride) + _ops(False) + ordered
        items += _ops(name) + b"ctorch._utils\n_rebuild_tensor_v2\n(" + args + b"tR"
    state = b"\x80\x02" + ordered + b"(" + items + b"u."
    storages = b"".join(struct.pack("<q", model["storages"][key][2]) + model["storages"][key][3]
                        for key in model["listed"])
    head = b"".join(pickle.dumps(value, protocol=2) for value in (MAGIC_NUMBER, PROTOCOL_VERSION, model["system"]))
    return head + state + pickle.dumps(model["listed"], protocol=2) + storages


def expected(model: dict, limit: int):
    """What a right reader returns for a model's file of `limit` bytes, by plain index arithmetic: name -> array,
    or None where it must refuse."""
    storages, listed = model["storages"], model["listed"]
    used = {key for _, key, *_ in model["tensors"]}
    if len(set(listed)) != len(listed) or set(listed) != used:
        return None
    arrays = {}
    for i, key in enumerate(listed):
        type_name, numel, count, data = storages[key]
        if type_name not in STORAGE_DTYPES or type(numel) is not int or numel < 0 or count != numel:
            return None
        nbytes = numel * np.dtype(STORAGE_DTYPES[type_name]).itemsize
        if len(data) < nbytes or (len(data) > nbytes and i < len(listed) - 1):
            return None
        arrays[key] = np.frombuffer(data[:nbytes], STORAGE_DTYPES[type_name])
    tensors = {}
    for name, key, offset, size, stride in model["tensors"]:
        numbers_ok = (isinstance(size, tuple | list) and isinstance(stride, tuple | list)
                      and len(size) == len(stride) <= MAX_DIMS
                      and all(type(n) is int and 0 <= n <= limit for n in (offset, *size, *stride)))
        if not numbers_ok or math.prod(size) > limit:
            return None
        index = np.full(size, offset, dtype=np.int64)
        for dim, (n, s) in enumerate(zip(size, stride)):
            index = index + (np.arange(n) * s).reshape((n,) + (1,) * (len(size) - dim - 1))
        if index.size and index.max() >= len(arrays[key]):
            return None
        tensors[name] = np.asarray(arrays[key].take(index))
    return tensors


def changed(value, rng: random.Random):
    """A new value for a record's number: near it, zero, one, negative, huge, or no int at all."""
    if type(value) is not int:
        return value
    return rng.choice([value - 1, value + 1, 2 * value, -value, 0, 1, -1, value + 1000, 2 ** 62, -2 ** 63, 2 ** 64,
                       True, 2.0, "3", None])


def mutate(model: dict, rng: random.Random) -> str:
    """Change one record of the model at random; what was changed."""
    tensor = rng.choice(model["tensors"])
    key = rng.choice(model["listed"])
    storage = model["storages"][key]
    kind = rng.choice(["size", "stride", "offset", "dims", "type", "numel", "count", "length", "data", "key",
                       "listed"])
    if kind in ("size", "stride") and tensor[3]:
        field = 3 if kind == "size" else 4
        values = list(tensor[field])
        dim = rng.randrange(len(values))
        values[dim] = changed(values[dim], rng)
        tensor[field] = tuple(values)
    elif kind == "offset":
        tensor[2] = changed(tensor[2], rng)
    elif kind == "dims":
        tensor[3:5] = rng.choice([(tensor[3] + (1,), tensor[4]), (tensor[3] + (1,), tensor[4] + (1,)),
                                  ((1,) * 40, (0,) * 40), (tensor[3][1:], tensor[4][1:]), (5, 1), (None, None)])
    elif kind == "type":
        storage[0] = rng.choice([*STORAGE_DTYPES, "FloatStorag", "Tensor", "Storage"])
    elif kind == "numel":
        storage[1] = changed(storage[1], rng)
    elif kind == "count":  # the 8-byte count before the storage's bytes
        count = changed(storage[2], rng)
        storage[2] = count if type(count) is int and -2 ** 63 <= count < 2 ** 63 else storage[2]
    elif kind == "length":  # the storage grows or shrinks, its records and bytes together
        itemsize = np.dtype(STORAGE_DTYPES.get(storage[0], np.float32)).itemsize
        numel = rng.choice([0, 1, storage[1] // 2, storage[1] - 1, storage[1] + 1, storage[1] + 64])
        data = (storage[3] * (numel // max(storage[1], 1) + 2))[:numel * itemsize]
        storage[1:4] = [numel, numel, data]
    elif kind == "data":
        storage[3] = storage[3][:rng.randrange(len(storage[3]) + 1)] if rng.random() < 0.5 else storage[3] + b"\x07" * 8
    elif kind == "key":
        tensor[1] = rng.choice([*model["listed"], "unlisted"])
        if tensor[1] == "unlisted":
            model["storages"]["unlisted"] = copy.deepcopy(storage)
    elif kind == "listed":
        model["listed"] = rng.choice([model["listed"][1:], model["listed"] + [key], model["listed"][::-1]])
    return kind


def read(path):
    """('loaded', arrays), ('refused', the WeightsError's line) or ('escaped', any other exception)."""
    try:
        return "loaded", read_torch_legacy(path)
    except WeightsError as error:
        return "refused", str(error)
    except Exception as error:
        return "escaped", f"{type(error).__name__}: {error}"


def wrong_refusal(line: str, path) -> str | None:
    """What is wrong with a refusal's line: it must be one line naming the file."""
    one_line_naming_it = "\n" not in line and line.startswith(f"{path}: ")
    return None if one_line_naming_it else f"refusal not one line naming the file: {line!r:.200}"


def same(arrays, tensors) -> bool:
    """The reader's arrays are exactly these tensors: names, order, dtypes, shapes and bytes."""
    return list(arrays) == list(tensors) and all(
        a.dtype == t.dtype and a.shape == t.shape and a.tobytes() == t.tobytes()
        for a, t in zip(arrays.values(), tensors.values()))


def structural_case(model, rng, path) -> tuple[str, str | None]:
    """Mutate 1-3 records, write the file, read it: (outcome, what is wrong or None)."""
    kinds = "+".join(mutate(model, rng) for _ in range(rng.randint(1, 3)))
    data = legacy_file(model)
    path.write_bytes(data)
    outcome, got = read(path)
    want = expected(model, len(data))
    if outcome == "escaped":
        return outcome, f"{kinds}: {got}"
    if outcome == "refused":
        return outcome, (f"{kinds}: refused a readable file: {got}" if want is not None
                         else wrong_refusal(got, path))
    return outcome, None if want is not None and same(got, want) else f"{kinds}: loaded what the file does not say"


def raw_case(data: bytes, rng, path) -> tuple[str, str | None]:
    """Flip bytes of the file or cut it short, read it: (outcome, what is wrong or None). A cut file must be refused;
    a loaded file's every element must be bytes of the file."""
    if rng.random() < 0.4:
        data, kind = data[:rng.randrange(len(data))], "truncated"
    else:
        data, kind = bytearray(data), "flipped"
        for _ in range(rng.randint(1, 4)):
            data[rng.randrange(len(data))] ^= rng.randrange(1, 256)
        data = bytes(data)
    path.write_bytes(data)
    outcome, got = read(path)
    if outcome == "escaped":
        return outcome, f"{kind}: {got}"
    if outcome == "refused":
        return outcome, wrong_refusal(got, path)
    if kind == "truncated":
        return outcome, "loaded a truncated file"
    chunks = {size: {data[i:i + size] for i in range(len(data) - size + 1)} for size in {1, 2, 4, 8}}
    for name, array in got.items():
        elements = np.ascontiguousarray(array).reshape(-1).view(np.uint8).reshape(-1, array.itemsize)
        if any(element.tobytes() not in chunks[array.itemsize] for element in elements):
            return outcome, f"flipped: {name} holds bytes that are not in the file"
    return outcome, None


ISSUE_CASES = {  # the crafted files of issue 24: a negative stride crashed the reader, an offset read the heap
    "negative stride": (0, 4, (1, -32, 288, 96)),
    "offset past its storage": (1, 2, 100),
    "size past its storage": (1, 3, (33,)),
}


def fuzz(folder) -> dict:
    """Run the issue's cases and the seeded fuzz on files in `folder`; a summary for the test to check."""
    path = Path(folder) / "crafted.pth"
    base = derived_model()
    summary = {"issue": {}, "outcomes": collections.Counter(), "wrong": []}
    for label, (tensor, field, value) in ISSUE_CASES.items():
        model = copy.deepcopy(base)
        model["tensors"][tensor][field] = value
        path.write_bytes(legacy_file(model))
        outcome, got = read(path)
        summary["issue"][label] = got if outcome == "refused" else "loaded"
    rng = random.Random(SEED)
    for i in range(STRUCTURAL + RAW):
        outcome, wrong = (structural_case(copy.deepcopy(base), rng, path) if i < STRUCTURAL
                          else raw_case(legacy_file(base), rng, path))
        summary["outcomes"][outcome] += 1
        if wrong:
            summary["wrong"].append(f"case {i}: {wrong}")
    return summary


def test_derived_file_holds_the_real_tensors(tmp_path):
    model = derived_model()
    path = tmp_path / "derived.pth"
    path.write_bytes(legacy_file(model))
    got, real = read_torch_legacy(path), read_torch_legacy(pth_path())
    assert list(got) == [*list(real)[:REAL_TENSORS], VIEW[0]]
    assert same(got, {**{name: real[name] for name in list(real)[:REAL_TENSORS]},
                      VIEW[0]: real["_conv_stem.weight"][1]})
    assert same(got, expected(model, path.stat().st_size))


def test_crafted_files_load_what_they_say_or_are_refused_on_one_line(tmp_path):
    done = subprocess.run([sys.executable, __file__, str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"the reader crashed (exit {done.returncode}): {done.stderr[-2000:]}"
    summary = json.loads(done.stdout)
    path = tmp_path / "crafted.pth"
    assert summary["issue"]["negative stride"].startswith(f"{path}: tensor _conv_stem.weight: ")
    assert "reads element 131 of a storage of 32" in summary["issue"]["offset past its storage"]
    assert "reads element 32 of a storage of 32" in summary["issue"]["size past its storage"]
    assert summary["wrong"] == []
    outcomes = summary["outcomes"]
    assert sum(outcomes.values()) == STRUCTURAL + RAW
    assert outcomes["loaded"] >= 50 and outcomes["refused"] >= 250, outcomes  # both ways are exercised


if __name__ == "__main__":
    print(json.dumps(fuzz(sys.argv[1])))
