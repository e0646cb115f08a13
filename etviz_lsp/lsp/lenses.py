"""The code lenses of a Python file: "Visualize" on its export and lowering calls (found
by ``ast``), "Show in Graph (N ops)" on the lines a shown graph maps to.

Reads the source text only (no import, no torch). A call matches when its callee, with the
file's imports resolved, is ``torch.export.export``, or when its last name is ``to_edge``
or ``to_edge_transform_and_lower`` (ExecuTorch's functions, however imported).
"""

from __future__ import annotations

import ast
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from lsprotocol import types

from etviz_lsp.lsp import navigation, paths
from etviz_lsp.lsp.commands import SHOW_IN_GRAPH, VISUALIZE

EXPORT = "torch.export.export"
LOWERING = frozenset({"to_edge", "to_edge_transform_and_lower"})


@dataclass(frozen=True, slots=True)
class ExportCall:
    line: int  # 0-based, as LSP counts
    column: int  # 0-based
    name: str  # the resolved callee, e.g. "torch.export.export"


def code_lenses(
    uri: str, source: str, lines: Sequence[str], navigator: navigation.Navigator
) -> list[types.CodeLens]:
    """Every lens of the Python document ``uri`` (its text ``source``, split in ``lines``)."""
    visualize = [
        _lens(call.line, call.column, "Visualize", VISUALIZE, [uri])
        for call in find_export_calls(source)
    ]
    path = paths.path_of(uri)
    counts = navigator.line_counts(path) if path is not None else {}
    show = [
        _lens(line, _indent(lines, line), navigation.lens_title(count), SHOW_IN_GRAPH,
              [uri, line])
        for line, (_graph, count) in counts.items()
    ]
    return sorted(visualize + show, key=lambda lens: lens.range.start.line)


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


def _lens(line: int, column: int, title: str, command: str, arguments: list[Any]) -> types.CodeLens:
    position = types.Position(line, column)
    return types.CodeLens(
        range=types.Range(position, position),
        command=types.Command(title=title, command=command, arguments=arguments),
    )


def _indent(lines: Sequence[str], line: int) -> int:
    """Column of the line's first non-blank character (0 past the end: file changed)."""
    if line >= len(lines):
        return 0
    text = lines[line]
    return len(text) - len(text.lstrip())
