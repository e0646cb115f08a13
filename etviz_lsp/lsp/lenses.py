"""Where to put a "Visualize" lens: export and lowering calls in a Python file, found by ``ast``.

Reads the source text only (no import, no torch). A call matches when its callee, with the
file's imports resolved, is ``torch.export.export``, or when its last name is ``to_edge``
or ``to_edge_transform_and_lower`` (ExecuTorch's functions, however imported).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

EXPORT = "torch.export.export"
LOWERING = frozenset({"to_edge", "to_edge_transform_and_lower"})


@dataclass(frozen=True, slots=True)
class ExportCall:
    line: int  # 0-based, as LSP counts
    column: int  # 0-based
    name: str  # the resolved callee, e.g. "torch.export.export"


def find_export_calls(source: str) -> list[ExportCall]:
    """Export/lowering calls in ``source``; none when it does not parse (mid-edit)."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return []
    aliases = _import_aliases(tree)
    calls = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        name = _resolve(_dotted(node.func), aliases)
        if name is not None and _is_export(name):
            calls.append(ExportCall(node.lineno - 1, node.col_offset, name))
    return sorted(calls, key=lambda c: (c.line, c.column))


def _is_export(name: str) -> bool:
    return name == EXPORT or name.rsplit(".", 1)[-1] in LOWERING


def _import_aliases(tree: ast.Module) -> dict[str, str]:
    """Local name -> full dotted name, from every import in the file."""
    aliases: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    aliases[alias.asname] = alias.name
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                aliases[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    return aliases


def _dotted(func: ast.expr) -> str | None:
    parts = []
    while isinstance(func, ast.Attribute):
        parts.append(func.attr)
        func = func.value
    if not isinstance(func, ast.Name):
        return None
    parts.append(func.id)
    return ".".join(reversed(parts))


def _resolve(dotted: str | None, aliases: dict[str, str]) -> str | None:
    if dotted is None:
        return None
    head, _, rest = dotted.partition(".")
    if head in aliases:
        return f"{aliases[head]}.{rest}" if rest else aliases[head]
    return dotted
