"""Where the nodes the module hierarchy leaves loose go, so a big program's top level stays small.

An LLM export has thousands of nodes with no module of their own: torchao's
weight-unwrapping ops, the ``getitem``s that unpack each delegate call, the executorch
stage's ``memory.alloc`` nodes, the size arithmetic and runtime asserts on the input
position, state owned by no module (lifted constants). Model Explorer lays out each level
of the graph at once, and its cost follows the number of items at a level: 900 loose items
at the top take minutes to draw, a dozen take a second. So:

- a partition layer sits in the deepest module that holds all its ops
  (``layers/5 (TransformerBlock)/attention (Attention)/XnnpackBackend #37``), not at the top;
- size arithmetic and the asserts on it (non-tensor values, and what only feeds them) go
  into one layer of their own, ``sizes and checks``;
- a loose ``getitem`` goes where the value it unpacks was made;
- state owned by the root and ops made from state alone (weight unwrapping, allocations)
  go beside the nodes they feed (the deepest layer those share); a write into a buffer
  (``copy_`` of a kv-cache update) beside the nodes that feed it;
- a loose op computing on the program's data stays at the top: the root module runs it.

Everything here reads the record and a namespace per node; nothing else.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from os.path import commonprefix  # element-wise on any sequences, not only text

from etviz_lsp.graph.core import ir, naming

SIZES_LAYER = "sizes and checks"
SIZES_LAYER_ATTRS = {
    "kind": "size arithmetic and runtime asserts on it (symbolic sizes, input positions)"
}
# Ops that only check sizes at run time: no output, nothing reads them.
_CHECK_OPS = ("_assert", "sym_constrain_range")
# Values of size arithmetic (a ``None`` output, a functionalized op's, is not one).
_SCALARS = frozenset({"SymInt", "SymFloat", "SymBool", "int", "float", "bool"})
_SPLIT = re.compile(r"(?<!\\)/")


def partition_bases(record: ir.ProgramRecord) -> dict[str, list[ir.Scope]]:
    """Partition key -> the module stack of the deepest module holding all its ops.

    Ops of ``layers.4`` and ``layers.5`` share no module on their stacks, but both sit in
    the container ``layers`` (a ModuleList, never called): the base then ends with that
    container (class unknown), as its layer is named. Quantize/dequantize ops carry a bogus
    root stack after PT2E and ``getitem``s only unpack: neither narrows a partition.
    """
    stacks: dict[str, list[ir.Scope]] = {}
    paths: dict[str, str] = {}
    for rec in record.nodes:
        if rec.partition is None or rec.kind != ir.OP or _ignored_for_base(rec):
            continue
        key, path = rec.partition, rec.scopes[-1].path if rec.scopes else ""
        if key not in stacks:
            stacks[key], paths[key] = list(rec.scopes), path
        else:
            stacks[key] = _common(stacks[key], rec.scopes)
            paths[key] = _common_path(paths[key], path)
    return {key: _base(stacks[key], paths[key]) for key in stacks}


def _base(stack: list[ir.Scope], path: str) -> list[ir.Scope]:
    if not path:
        return []
    if stack and stack[-1].path == path:
        return stack
    return [*stack, ir.Scope(path=path, cls="")]


def _ignored_for_base(rec: ir.NodeRecord) -> bool:
    label = naming.short_label(rec.target)
    return label == "getitem" or label.startswith(("quantize_", "dequantize"))


def _common(first: list[ir.Scope], second: list[ir.Scope]) -> list[ir.Scope]:
    return first[: len(commonprefix([first, second]))]


def _common_path(first: str, second: str) -> str:
    """The deepest module path both dotted paths are in (``layers`` for two blocks)."""
    return ".".join(commonprefix([first.split("."), second.split(".")]))


def below(scopes: list[ir.Scope], base: list[ir.Scope]) -> list[ir.Scope] | None:
    """The part of ``scopes`` below the module ``base`` ends with, None when not under it."""
    if not base:
        return scopes
    top = base[-1].path + "."
    for depth, scope in enumerate(scopes):
        if scope.path.startswith(top):
            return scopes[depth:]
        if scope.path != base[-1].path and not top.startswith(scope.path + "."):
            return None
    return [] if scopes and scopes[-1].path == base[-1].path else None


def is_symbolic(rec: ir.NodeRecord) -> bool:
    """A node whose every output is a plain or symbolic scalar, or a runtime size check."""
    if rec.kind != ir.OP:
        return False
    if rec.outputs:
        return all(value.dtype in _SCALARS for value in rec.outputs)
    return naming.short_label(rec.target).startswith(_CHECK_OPS)


def settle(record: ir.ProgramRecord, namespaces: dict[str, str]) -> bool:
    """Give loose plumbing a layer (in place); True when the sizes layer was used.

    Only plumbing moves: a loose op that computes on the program's data (a ``cumsum`` the
    root module runs) stays where the program has it, outside every module and partition.
    """
    users = _users(record)
    loose = [rec for rec in record.nodes if not namespaces.get(rec.name) and _movable(rec)]
    if not loose:
        return False
    sizes = _symbolic_loose(loose, users)
    from_state = _made_from_state(record, sizes)
    for rec in loose:
        if rec.name in sizes:
            namespaces[rec.name] = SIZES_LAYER
        elif naming.short_label(rec.target) == "getitem" and rec.inputs:
            namespaces[rec.name] = namespaces.get(rec.inputs[0][0], "")
    for rec in reversed(loose):  # consumers first: a chain of loose nodes follows its end
        if not namespaces[rec.name] and rec.name in from_state:
            namespaces[rec.name] = _deepest_shared(namespaces.get(u, "") for u in users[rec.name])
    for rec in loose:  # a write into a buffer: beside what feeds it
        if not namespaces[rec.name] and _writes_back(rec):
            namespaces[rec.name] = _deepest_shared(
                namespaces.get(src, "") for src, _ in rec.inputs
            )
    return bool(sizes)


def _movable(rec: ir.NodeRecord) -> bool:
    """Ops and state move; the program's inputs and output stay at the top."""
    return rec.kind == ir.OP or rec.kind in ir.STATE_KINDS


def _made_from_state(record: ir.ProgramRecord, sizes: set[str]) -> set[str]:
    """State, and ops computed from state and sizes only: weight unwrapping, allocations,
    a slice of the rope tables at the input position. They serve their consumers."""
    found: set[str] = set()
    for rec in record.nodes:
        if rec.kind in ir.STATE_KINDS or (
            rec.kind == ir.OP and all(src in found or src in sizes for src, _ in rec.inputs)
        ):
            found.add(rec.name)
    return found


def _writes_back(rec: ir.NodeRecord) -> bool:
    """An op that writes into a buffer or input (``copy_`` of a kv-cache update)."""
    return "mutates" in rec.attrs or naming.short_label(rec.target).endswith("_")


def _users(record: ir.ProgramRecord) -> dict[str, list[str]]:
    users: dict[str, list[str]] = defaultdict(list)
    for rec in record.nodes:
        if rec.kind == ir.OUTPUT:
            continue
        for src in dict.fromkeys(src for src, _ in rec.inputs):
            users[src].append(rec.name)
    return users


def _symbolic_loose(loose: list[ir.NodeRecord], users: dict[str, list[str]]) -> set[str]:
    """Loose size arithmetic, and loose ops read only by it (``select`` on input_pos)."""
    found: set[str] = set()
    for rec in reversed(loose):
        if rec.kind != ir.OP:
            continue
        readers = users.get(rec.name, [])
        if is_symbolic(rec) or (readers and all(name in found for name in readers)):
            found.add(rec.name)
    return found


def _deepest_shared(namespaces: Iterable[str]) -> str:
    """The deepest layer every one of ``namespaces`` is in ("" when any is loose)."""
    paths = [_SPLIT.split(namespace) if namespace else [] for namespace in namespaces]
    if not paths or not all(paths):
        return ""
    return "/".join(commonprefix(paths))
