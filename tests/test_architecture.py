"""The house as ARCHITECTURE.md draws it: rooms, one-way doors, no import circle anywhere.

Imports are read with ``ast`` from every module of ``etviz_lsp`` (those inside functions and
``TYPE_CHECKING`` blocks too: a circle hidden in a function still couples two modules).
The document's ``doors`` block lists, per room, the rooms it may import; a door the code uses
and the block does not list fails, and so does a listed door no import uses any more.
"""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from pathlib import Path

from tests.conftest import REPO_ROOT

PACKAGE = REPO_ROOT / "etviz_lsp"
GRAPH_ROOMS = ("core", "binary", "memory", "backends", "readers", "overlays")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO_ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The modules of the package ``name`` imports (``from pkg import sub`` is ``pkg.sub``)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name in known)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                head = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(head + ([node.module] if node.module else []))
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                found.add(sub if sub in known else base)
    return {m for m in found if m in known and m != name}


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(name, path, set(modules)) for name, path in modules.items()}


def room_of(module: str) -> str:
    """``graph.readers`` for ``etviz_lsp.graph.readers.pte_reader``, ``lsp`` for any lsp module,
    the module's own name for a module at the top (``once``, ``errors``)."""
    parts = module.split(".")[1:] or ["__init__"]
    if parts[0] == "graph" and len(parts) > 1 and parts[1] in GRAPH_ROOMS:
        return f"graph.{parts[1]}"
    return parts[0]


def _circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected parts of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, targets = work[-1]
            target = next(targets, None)
            if target is not None:
                if target not in index:
                    index[target] = low[target] = len(index)
                    stack.append(target)
                    on_stack.add(target)
                    work.append((target, iter(sorted(graph[target]))))
                elif target in on_stack:
                    low[node] = min(low[node], index[target])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                part = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    part.append(member)
                    if member == node:
                        break
                if len(part) > 1:
                    found.append(sorted(part))
    return found


def documented_doors() -> dict[str, set[str]]:
    """The ``doors`` block of ARCHITECTURE.md: ``room -> room, room`` per line."""
    text = (REPO_ROOT / "ARCHITECTURE.md").read_text()
    block = re.search(r"```doors\n(.*?)```", text, re.S)
    assert block, "ARCHITECTURE.md has no ```doors block"
    doors: dict[str, set[str]] = {}
    for line in block.group(1).splitlines():
        if line.strip():
            room, _, targets = line.partition("->")
            doors[room.strip()] = {t.strip() for t in targets.split(",") if t.strip()}
    return doors


def used_doors(graph: dict[str, set[str]]) -> dict[str, dict[str, list[str]]]:
    """room -> room it imports -> the imports that make that door (``a -> b``)."""
    doors: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for module, targets in graph.items():
        for target in targets:
            here, there = room_of(module), room_of(target)
            if here != there:
                doors[here][there].append(f"{module} -> {target}")
    return doors


def test_no_module_imports_itself_back_through_others() -> None:
    graph = _graph()
    assert len(graph) > 100  # the walk found the package, not an empty folder
    assert _circles(graph) == []


def test_the_circle_finder_finds_a_circle() -> None:
    assert _circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _circles({"a": {"b"}, "b": set()}) == []


def test_every_door_the_code_uses_is_in_architecture_md() -> None:
    documented = documented_doors()
    undocumented = [
        f"{here} -> {there} ({why[0]})"
        for here, targets in sorted(used_doors(_graph()).items())
        for there, why in sorted(targets.items())
        if there not in documented.get(here, set())
    ]
    assert undocumented == []


def test_every_door_architecture_md_lists_is_used() -> None:
    used = used_doors(_graph())
    stale = [
        f"{here} -> {there}"
        for here, targets in sorted(documented_doors().items())
        for there in sorted(targets)
        if there not in used.get(here, {})
    ]
    assert stale == []


def test_graph_rooms_import_only_rooms_below_them() -> None:
    """The floors of graph/: core and binary at the bottom, then memory and backends, then
    readers, then overlays; inputs and convert on top. Nothing below reaches up."""
    floor = {"graph.core": 0, "graph.binary": 0, "graph.memory": 1, "graph.backends": 1,
             "graph.readers": 2, "graph.overlays": 3, "graph": 4}
    upward = [
        f"{here} -> {there}"
        for here, targets in used_doors(_graph()).items()
        for there in targets
        if here in floor and there in floor and floor[there] >= floor[here]
    ]
    assert upward == []


def test_graph_and_worker_never_import_the_editor_side() -> None:
    for here, targets in used_doors(_graph()).items():
        if here.startswith("graph") or here == "worker":
            assert not {"lsp", "cli", "explorer"} & set(targets), (here, dict(targets))
