"""Why an op stayed on the CPU, in the editor: Information diagnostics on the source lines
that made the ops a partitioner left out (issue 26).

A script run's summary (``worker/not_delegated.py``: per lowering, its graph and its CPU
ops, each with one line per partitioner that looked at it) becomes one diagnostic per op
on the ``file:line`` the graph's source map knows for its node: ``cumsum stays on the CPU:
XnnpackPartitioner: no partitioner config for cumsum.default``. An op with no user line is
left out (it stays on the graph). They are published with the numeric overlay's
(``numeric_diagnostics``), so every run replaces them; ``etviz.notDelegatedDiagnostics``
false turns them off.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from lsprotocol import types

from etviz_lsp.lsp.diagnostics import information
from etviz_lsp.lsp.source_map import SourceMap

CODE = "not-delegated"


def diagnostics_for(
    summary: list[dict[str, Any]], mapped: SourceMap, line_text: Callable[[Path, int], str]
) -> dict[Path, list[types.Diagnostic]]:
    """File -> its diagnostics, in graph order; ``line_text(path, line)`` gives a line."""
    found: dict[Path, list[types.Diagnostic]] = {}
    seen: set[tuple[Path, int, str]] = set()
    for entry in summary:
        for op in entry.get("ops") or []:
            origin = mapped.origin(str(entry.get("graph")), str(op.get("node")))
            if origin is None or origin.path is None:
                continue
            message = f"{op.get('op')} stays on the CPU: {'; '.join(op.get('reasons') or [])}"
            if (origin.path, origin.line, message) in seen:
                continue
            seen.add((origin.path, origin.line, message))
            text = line_text(origin.path, origin.line)
            found.setdefault(origin.path, []).append(information(text, origin.line, message, CODE))
    return found
