"""Reading a compiled XLA program (a `jax.stages.Compiled`): the operations and trip count of its step loop,
and the device memory it needs.

The benchmark and the tests use these to count what a GPU would launch per step without a GPU.
"""

import re

BOOKKEEPING = {"parameter", "get-tuple-element", "tuple", "constant", "bitcast"}  # HLO ops that launch no kernel


def _computation(text: str, name: str) -> str:
    """The instructions of the computation called `name` in an HLO module's text."""
    return re.search(r"^%?" + re.escape(name) + r" .*?\{\n(.*?)\n\}", text, re.S | re.M).group(1)


def _step_loop(compiled) -> tuple[str, str | None]:
    """(a compiled program's optimised HLO text, the instruction of its outermost loop, or None)."""
    text = compiled.as_text()
    entry = re.search(r"^ENTRY .*?\{\n(.*?)\n\}", text, re.S | re.M).group(1)
    return text, next((line for line in entry.splitlines() if " while(" in line), None)


def loop_operations(compiled) -> int | None:
    """The operations in one step of a compiled program's step loop (each a kernel launch on a GPU; a loop
    over tile groups inside it counted once), read from its optimised HLO; None if XLA kept no loop."""
    text, loop = _step_loop(compiled)

    def operations(body_name: str) -> int:
        body = _computation(text, body_name)
        own = sum(op not in BOOKKEEPING for op in re.findall(r"= .*? ([a-z][\w\-]*)\(", body))
        return own + sum(operations(name) for name in re.findall(r" while\(.*?body=%?([\w.\-]+)", body))

    return operations(re.search(r"body=%?([\w.\-]+)", loop).group(1)) if loop else None


def loop_trip_count(compiled) -> int | None:
    """The trip count XLA knows for a compiled program's step loop, or None (traced, or no loop)."""
    _, loop = _step_loop(compiled)
    known = re.search(r'"known_trip_count":\{"n":"(\d+)"\}', loop or "")
    return int(known.group(1)) if known else None


def program_bytes(compiled) -> int:
    """The device memory a compiled program needs besides its inputs: XLA's count of its temporaries and output."""
    memory = compiled.memory_analysis()
    return int(memory.temp_size_in_bytes + memory.output_size_in_bytes)
