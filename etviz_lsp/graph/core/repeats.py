"""Repeated blocks said once: 28 decoder layers of one structure, and the ones that differ.

Blocks are the numbered children of one container (``layers/0 (TransformerBlock)`` ...
``layers/27 (TransformerBlock)``) of one class. A block's structure is the set of its
nodes (op label, the layer path below the block with numbers taken out, delegated or not:
not their order, which passes interleave across blocks);
the structure most blocks share is the family's, and each block's layer says whether it is
that one (``same structure as layers/1 (TransformerBlock)``) or how it differs (ops,
partitions, ops left on the CPU). A reader checks one block and knows the others; a block
lowered differently from its siblings stands out in the graph info.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field

from etviz_lsp.graph.core import model

_SPLIT = re.compile(r"(?<!\\)/")
_NUMBER = re.compile(r"#?\d+")
# A numbered child of a container: ``3 (TransformerBlock)``.
_BLOCK_PIECE = re.compile(r"^(\d+) \((.+)\)$")
# How many differing ops a block's ``structure`` names (each way).
_SHOWN = 3


@dataclass(slots=True)
class _Block:
    namespace: str
    signature: list[tuple[str, str, bool]] = field(default_factory=list)
    op_kinds: list[tuple[str, bool]] = field(default_factory=list)  # (label, delegated)
    partitions: set[str] = field(default_factory=set)
    ops: int = 0
    on_cpu: int = 0

    def facts(self) -> tuple[int, int, int]:
        return self.ops, len(self.partitions), self.on_cpu


def describe(graph: model.Graph) -> None:
    """Add ``structure`` to each repeated block's layer and ``repeated blocks`` to the
    graph info (in place); graphs without numbered blocks are left as they are."""
    families = _families(graph)
    if not families:
        return
    _fill(graph, families)
    lowered = any(model.node_attr(n, "partition") for n in graph.nodes)
    lines = [_describe_family(graph, blocks, lowered) for blocks in families.values()]
    graph.group_attrs.setdefault("", {})["repeated blocks"] = "; ".join(lines)


def _families(graph: model.Graph) -> dict[tuple[str, str], list[_Block]]:
    """(container namespace, class) -> its numbered blocks, in number order (two or more)."""
    found: dict[tuple[str, str], list[tuple[int, str]]] = defaultdict(list)
    for namespace in graph.group_attrs:
        parent, _, piece = namespace.rpartition("/")
        match = _BLOCK_PIECE.match(piece) if parent else None
        if match:
            found[(parent, match.group(2))].append((int(match.group(1)), namespace))
    return {
        key: [_Block(ns) for _, ns in sorted(members)]
        for key, members in found.items()
        if len(members) > 1 and not _in_partition(graph, key[0])
    }


def _in_partition(graph: model.Graph, namespace: str) -> bool:
    """Blocks split over a partition layer (one spanning two blocks) are pieces, not blocks."""
    parts = _SPLIT.split(namespace)
    return any(
        "partition" in graph.group_attrs.get("/".join(parts[:depth]), {})
        for depth in range(1, len(parts) + 1)
    )


def _fill(graph: model.Graph, families: dict[tuple[str, str], list[_Block]]) -> None:
    blocks = {block.namespace: block for members in families.values() for block in members}
    for node in graph.nodes:
        namespace = node["namespace"]
        parts = _SPLIT.split(namespace) if namespace else []
        for depth in range(len(parts), 0, -1):  # the deepest block a node is in
            block = blocks.get("/".join(parts[:depth]))
            if block is not None:
                _add(block, node, "/".join(parts[depth:]))
                break


def _add(block: _Block, node: model.Node, below: str) -> None:
    kind = model.node_attr(node, "kind")
    if kind == "input":  # a delegate's input: wiring, named after whatever feeds it
        return
    partition = model.node_attr(node, "partition")
    block.signature.append((_unnumbered(below), _NUMBER.sub("#", node["label"]), bool(partition)))
    if kind != "op" or node["label"] == "getitem":  # unpacking a result computes nothing
        return
    block.ops += 1
    block.op_kinds.append((node["label"], bool(partition)))
    if partition:
        block.partitions.add(partition)
    else:
        block.on_cpu += 1


def _describe_family(graph: model.Graph, blocks: list[_Block], lowered: bool) -> str:
    """Each block's ``structure`` attr; the family's line for the graph info."""
    for block in blocks:  # the nodes a block holds, not their order: passes interleave blocks
        block.signature.sort()
    common, _ = Counter(tuple(b.signature) for b in blocks).most_common(1)[0]
    reference = next(b for b in blocks if tuple(b.signature) == common)
    differing = [b for b in blocks if tuple(b.signature) != common]
    for block in blocks:
        attrs = graph.group_attrs.setdefault(block.namespace, {})
        if block is reference:
            attrs["structure"] = f"shared by {len(blocks) - len(differing)} of {len(blocks)} blocks"
        elif tuple(block.signature) == common:
            attrs["structure"] = f"same as {_short(reference.namespace)}"
        else:
            attrs["structure"] = (
                f"differs from {_short(reference.namespace)}: "
                f"{_difference(block, reference, lowered)}"
            )
    container = blocks[0].namespace.rpartition("/")[0]
    line = (
        f"{container}: {len(blocks)} blocks, {len(blocks) - len(differing)} with the structure "
        f"of {_short(reference.namespace)}"
    )
    if differing:
        line += "; differ: " + ", ".join(
            f"{_short(b.namespace)} ({_difference(b, reference, lowered)})" for b in differing
        )
    return line


def _difference(block: _Block, reference: _Block, lowered: bool) -> str:
    names = ("ops", "partitions", "ops on CPU") if lowered else ("ops",)
    parts = [
        f"{name} {mine} vs {theirs}"
        for name, mine, theirs in zip(names, block.facts(), reference.facts(), strict=False)
        if mine != theirs
    ]
    mine, theirs = Counter(block.op_kinds), Counter(reference.op_kinds)
    parts += [f"+{_op_text(item, n)}" for item, n in list((mine - theirs).items())[:_SHOWN]]
    parts += [f"-{_op_text(item, n)}" for item, n in list((theirs - mine).items())[:_SHOWN]]
    return ", ".join(parts) or "same ops, placed in other layers"


def _op_text(item: tuple[str, bool], count: int) -> str:
    """``cumsum``, ``2x mul (delegated)``: ops one block has and the other lacks."""
    label, delegated = item
    times = f"{count}x " if count > 1 else ""
    return f"{times}{label}{' (delegated)' if delegated else ''}"


def _unnumbered(path: str) -> str:
    """A layer path with what numbers blocks, partitions and clusters taken out."""
    pieces = _SPLIT.split(path) if path else []
    return "/".join(
        "cluster" if piece.startswith("cluster ") else _NUMBER.sub("#", piece) for piece in pieces
    )


def _short(namespace: str) -> str:
    return namespace.replace("\\/", "/")
