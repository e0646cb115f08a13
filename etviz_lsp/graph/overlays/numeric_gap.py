"""The runtime numeric gap: what a ``.pte`` computed on this machine against its ETRecord.

ExecuTorch's ``Inspector(etdump, etrecord, debug_buffer).calculate_numeric_gap("SNR")``
runs the ETRecord's reference graph on its representative inputs and compares each
intermediate output with the one the runtime logged to the debug buffer: one row per group
of debug handles. XNNPACK logs no intermediates, so a delegate is one row (its outputs,
on the ``DELEGATE_CALL``); a portable kernel is its own row. Each row goes to the ``.pte``
graph's instruction node whose debug handles (the ETRecord's ``debug_handle_map``) it
shares: node data (``numeric-gap``: SNR in dB, lower is worse) keyed by our node ids.

Imports ExecuTorch's devtools (torch, pandas) when called; only ``--debug-buffer`` does.
The Inspector loads the ETRecord's programs with torch's deserializer, which may unpickle:
the caller asks for ``--allow-pickle`` first.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from etviz_lsp.errors import EtvizError
from etviz_lsp.graph.core import model
from etviz_lsp.graph.overlays import numeric
from etviz_lsp.graph.readers import etrecord

# Equal outputs (SNR infinite: XNNPACK's int8 kernels often match the reference exactly)
# show as this, above any float32 rounding noise (~150 dB), so the node still gets a value.
EXACT_DB = 200.0


@dataclass(frozen=True, slots=True)
class Gap:
    graph_id: str  # the method
    node: str  # instruction_<i>
    runtime_ops: str  # DELEGATE_CALL, native_call_cumsum.out
    snr_db: float  # the worst output's


@dataclass(frozen=True, slots=True)
class GapResult:
    gaps: list[Gap]  # worst first
    rows: int  # the Inspector's rows, matched or not
    node_data: dict[str, model.Json]

    def summary(self, debug_buffer: Path) -> str:
        unmatched = self.rows - len(self.gaps)
        worst = self.gaps[0] if self.gaps else None
        said = (
            f"worst {worst.node} ({worst.runtime_ops}) SNR {worst.snr_db:.1f} dB"
            if worst is not None else "no row matched an instruction"
        )
        return (f"{debug_buffer.name}: {len(self.gaps)} of {self.rows} compared outputs on "
                f"the graph ({unmatched} not matched); {said}")


def numeric_gap(pte_etrecord: Path, etdump_path: Path, debug_buffer: Path) -> GapResult:
    """The gap per instruction; a file the Inspector cannot read is one EtvizError line."""
    if not debug_buffer.is_file():
        cause = "no such file" if not debug_buffer.exists() else "not a file"
        raise EtvizError(str(debug_buffer), cause)
    links = etrecord.links(pte_etrecord)
    try:
        from executorch.devtools import Inspector

        inspector = Inspector(
            etdump_path=str(etdump_path), etrecord=str(pte_etrecord),
            debug_buffer_path=str(debug_buffer),
        )  # fmt: skip
        frame = inspector.calculate_numeric_gap("SNR")
    except Exception as exc:  # the Inspector's own errors: damaged buffer, wrong ETRecord
        text = str(exc).strip().splitlines()
        cause = f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
        raise EtvizError(str(debug_buffer), f"cannot compute the numeric gap ({cause})") from None
    gaps = []
    for row in frame.to_dict("records"):
        gap = _gap(row, links.handles)
        if gap is not None:
            gaps.append(gap)
    gaps.sort(key=lambda g: g.snr_db)
    return GapResult(gaps, len(frame), _node_data(gaps))


def _gap(row: dict[str, Any], handles: dict[str, dict[int, list[int]]]) -> Gap | None:
    """The instruction whose debug handles overlap the row's most."""
    wanted = set(row.get("runtime_debug_handle") or ())
    best: tuple[int, str, int] | None = None
    for method, by_instruction in handles.items():
        for instruction, its in by_instruction.items():
            shared = len(wanted & set(its))
            if shared and (best is None or shared > best[0]):
                best = (shared, method, instruction)
    values = [float(v) for v in row.get("gap") or () if isinstance(v, (int, float))]
    finite = [v for v in values if not math.isnan(v)]
    if best is None or not finite:
        return None
    ops = ", ".join(str(op) for op in row.get("runtime_ops") or ())
    return Gap(best[1], f"instruction_{best[2]}", ops, min(min(finite), EXACT_DB))


def _node_data(gaps: list[Gap]) -> dict[str, model.Json]:
    data: dict[str, model.Json] = {}
    for gap in gaps:
        entry = data.setdefault(gap.graph_id, {"results": {}, "gradient": numeric.SQNR_GRADIENT})
        # worst first: an instruction two rows map to shows its worst output
        entry["results"].setdefault(gap.node, {"value": round(gap.snr_db, 3)})
    return data
