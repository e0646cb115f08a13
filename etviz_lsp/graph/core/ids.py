"""Ids that are unique by construction: node ids in one graph, graph ids in a collection.

A node's id is its FX node name, and FX names are unique in one FX graph, but a graph
view also holds ids etviz makes (spliced delegate ops ``lowered_module_0/conv``) and
names a damaged archive may repeat. One allocator per graph knows them all: the first
node of a name keeps it (so ordinary programs keep id = FX name), a later one gets
``name#2`` ("#" is in no FX name), and each consumer's edge follows the node of that
name defined last before it, as Python scoping would read the program.
"""

from __future__ import annotations

from etviz_lsp.graph.core import ir


def claim(candidate: str, taken: set[str]) -> str:
    """``candidate``, or ``candidate #2``, ``#3`` ... if taken; marks the result taken."""
    found, number = candidate, 1
    while found in taken:
        number += 1
        found = f"{candidate} #{number}"
    taken.add(found)
    return found


def make_node_names_unique(record: ir.ProgramRecord) -> None:
    """Rename repeated node names in ``record`` (in place); inputs follow the renames."""
    taken = {rec.name for rec in record.nodes}
    if len(taken) == len(record.nodes):  # the usual case: one set, no renames
        return
    current: dict[str, str] = {}  # name as written -> id of its latest definition
    seen: set[str] = set()
    for rec in record.nodes:
        if current:
            rec.inputs = [(current.get(src, src), index) for src, index in rec.inputs]
        if rec.name in seen:
            new = _next_free(rec.name, taken)
            current[rec.name] = new
            rec.name = new
        else:
            seen.add(rec.name)
            current.pop(rec.name, None)


def _next_free(name: str, taken: set[str]) -> str:
    number = 2
    while f"{name}#{number}" in taken:
        number += 1
    found = f"{name}#{number}"
    taken.add(found)
    return found
