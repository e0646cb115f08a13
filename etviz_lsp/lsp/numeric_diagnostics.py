"""Where quantization hurts, in the editor: the run's worst ops as Information diagnostics
on the source lines that made them.

A script run's numeric overlay (``worker.numeric_overlay``) sends the worst ops of each
quantized graph (graph id, node id, op, SQNR, max abs error). Those below ``THRESHOLD_DB``
become diagnostics, worst first, on the ``file:line`` the graph's source map knows for the
node; a node with no user line is left out (it stays on the graph). Every run replaces
them: a run with no bad op (or a failed run) clears the previous ones. The run's ops left
on the CPU (``not_delegated_diagnostics``) are published with them, in the same message,
and so is a profile's runtime numeric gap: the worst outputs that differ from the
ETRecord's reference, at the line of the op that made each (``graph/overlays/stage_gap.py``
finds that op in the worker).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from lsprotocol import types
from pygls.lsp.server import LanguageServer

from etviz_lsp.lsp import not_delegated_diagnostics
from etviz_lsp.lsp.diagnostics import information, line_reader
from etviz_lsp.lsp.paths import uri_of
from etviz_lsp.lsp.source_map import SourceMap
from etviz_lsp.worker.numeric_overlay import describe

# int8 ops of a healthy PT2E program measure 30-45 dB here; below 20 dB the noise is a
# tenth of the signal's amplitude: a clipping range or a wrong config, worth a look.
THRESHOLD_DB = 20.0
CODE = "numeric"
GAP_CODE = "numeric-gap"


def diagnostics_for(
    summary: dict[str, Any], mapped: SourceMap, line_text: Callable[[Path, int], str],
    threshold: float = THRESHOLD_DB,
) -> dict[Path, list[types.Diagnostic]]:
    """File -> its diagnostics, worst op first; ``line_text(path, line)`` gives a line."""
    found: dict[Path, list[types.Diagnostic]] = {}
    worst = [e for e in summary.get("worst", []) if _below(e, threshold)]
    for entry in sorted(worst, key=lambda e: e["sqnr_db"]):
        origin = mapped.origin(str(entry.get("graph")), str(entry.get("node")))
        if origin is None or origin.path is None:
            continue
        message = f"quantization error: {describe(entry)}"
        found.setdefault(origin.path, []).append(
            information(line_text(origin.path, origin.line), origin.line, message, CODE)
        )
    return found


def gap_diagnostics_for(
    worst: list[dict[str, Any]], mapped: SourceMap, line_text: Callable[[Path, int], str],
) -> dict[Path, list[types.Diagnostic]]:
    """A profile's runtime gap rows (worst first, already only those that differ) at the
    lines of their output ops."""
    found: dict[Path, list[types.Diagnostic]] = {}
    for entry in worst:
        origin = mapped.origin(str(entry.get("graph")), str(entry.get("node")))
        if origin is None or origin.path is None:
            continue
        found.setdefault(origin.path, []).append(information(
            line_text(origin.path, origin.line), origin.line, _gap_message(entry), GAP_CODE))
    return found


def _gap_message(entry: dict[str, Any]) -> str:
    snr = entry.get("snr_db")
    said = f"SNR {snr:.1f} dB" if isinstance(snr, (int, float)) else "SNR unknown"
    return (f"runtime numeric gap: {entry.get('target')} output {said} against the "
            f"ETRecord's reference (runtime {entry.get('runtime_ops')})")


def _below(entry: dict[str, Any], threshold: float) -> bool:
    sqnr = entry.get("sqnr_db")
    return isinstance(sqnr, (int, float)) and sqnr < threshold


class NumericDiagnostics:
    """What the server published per visualized file; each run replaces it."""

    def __init__(self, server: LanguageServer) -> None:
        self._server = server
        self._published: dict[Path, set[Path]] = {}

    def publish(
        self, source: Path, summary: dict[str, Any], mapped: SourceMap,
        not_delegated: list[dict[str, Any]] | None = None,
        gap: list[dict[str, Any]] | None = None,
    ) -> None:
        """``not_delegated``: the run's ops left on the CPU (``not_delegated_diagnostics``),
        ``gap``: a profile's worst runtime gaps, published with these: a second publish for
        a file would replace the first."""
        self.clear(source)
        found = diagnostics_for(summary, mapped, self._line_text)
        cpu = not_delegated_diagnostics.diagnostics_for
        for more in (cpu(not_delegated or [], mapped, self._line_text),
                     gap_diagnostics_for(gap or [], mapped, self._line_text)):
            for path, diagnostics in more.items():
                found.setdefault(path, []).extend(diagnostics)
        for path, diagnostics in found.items():
            self._send(path, diagnostics)
        if found:
            self._published[source] = set(found)

    def clear(self, source: Path) -> None:
        for path in self._published.pop(source, set()):
            self._send(path, [])

    def _send(self, path: Path, diagnostics: list[types.Diagnostic]) -> None:
        self._server.text_document_publish_diagnostics(
            types.PublishDiagnosticsParams(uri=uri_of(path), diagnostics=diagnostics)
        )

    def _line_text(self, path: Path, line: int) -> str:
        return line_reader(self._server, uri_of(path), path)(line)
