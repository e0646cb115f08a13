"""The runtime numeric gap in the editor (issue 28), through the real server over stdio.

``tests/scripts/quantize_lower.py`` (PT2E int8, XNNPACK) lowered with
``generate_etrecord=True`` runs in the real warm worker with ``etviz.profileNumericGap``
on: the run keeps its ETRecord with the program; "Profile on This Machine" runs the
program with a debug buffer, ExecuTorch's Inspector compares every logged output with the
ETRecord's reference, and the answer's page URL (and the manifest) carries the
``numeric-gap`` node data on the ``program`` stage and on the lowered stage the user
reads; the outputs that differ are Information diagnostics on the lines of the ops that
made them, worst first. The same script lowered without an ETRecord gets the one-line
reason and no diagnostics.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from lsprotocol import types

from etviz_lsp import graph_files
from tests.lsp_session import Session, lsp_session
from tests.test_lsp_profile import overlay_kinds, profile, url_data

pytestmark = [pytest.mark.slow]

SCRIPT = Path(__file__).parent / "scripts" / "quantize_lower.py"
LOWER = "partitioner=[XnnpackPartitioner()])"
INPUTS = "inputs = (torch.randn("
EXACT_DB = 200.0  # what an output equal to the reference shows (graph/overlays/numeric_gap)


def with_etrecord() -> str:
    """The script lowered with its ETRecord, its inputs seeded (on the same line: the
    program's call site keeps its line) so every run compares the same numbers."""
    text = SCRIPT.read_text()
    assert LOWER in text and INPUTS in text
    text = text.replace(INPUTS, f"torch.manual_seed(0); {INPUTS}")
    return text.replace(LOWER, "partitioner=[XnnpackPartitioner()], generate_etrecord=True)")


def gap_diagnostics(session: Session, script: Path) -> list[types.Diagnostic]:
    found = session.client.diagnostics.get(script.as_uri(), [])
    return [d for d in found if d.code == "numeric-gap"]


def snr_of(message: str) -> float:
    return float(message.split(" output SNR ")[1].split(" dB")[0])


async def profiled(session: Session, script: Path) -> tuple[Any, Any]:
    before = len(session.graph_ready)
    answer = await profile(session, script)
    return answer, await session.next_graph(script, before)


async def test_the_runtime_gap_is_node_data_and_diagnostics_on_the_users_lines(
    tmp_path: Path,
) -> None:
    options = {"profileIterations": 3, "profileNumericGap": True}
    async with lsp_session(tmp_path, trusted=True, **options) as session:
        text = with_etrecord()
        script = session.root / "workspace" / "gap_lower.py"
        script.write_text(text)
        await session.visualize(script)
        answer, ready = await profiled(session, script)

        data = url_data(answer["url"])
        kinds = overlay_kinds(data)
        assert "numeric-gap" in kinds and kinds[-1] == "latency-avg", kinds
        graph = Path(data["models"][0]["url"])
        gap_file = graph_files.overlay_path(graph, "numeric", "gap")
        assert gap_file in graph_files.node_data_of(graph).files  # the manifest lists it
        gap = json.loads(Path(data["nodeData"][kinds.index("numeric-gap")]).read_text())
        assert gap == json.loads(gap_file.read_text())
        # On the program stage (one value per delegate call / CPU kernel) and on the
        # lowered stage the user reads, where the partition's ops carry their call's value.
        [lowered] = [g.id for g in ready.graphs if g.id.endswith("(lowered)")]
        program = "et_program @ gap_lower.py:31 (program)"
        assert {program, lowered} <= set(gap), list(gap)
        stage = next(g for g in json.loads(graph.read_text())["graphs"] if g["id"] == lowered)
        labels = {n["id"]: n["label"] for n in stage["nodes"]}
        on_stage = {labels[n]: r["value"] for n, r in gap[lowered]["results"].items()}
        assert {"convolution", "relu", "linear"} <= set(on_stage), on_stage
        assert on_stage["convolution"] == on_stage["relu"]  # one delegate call, one output
        program_values = sorted(r["value"] for r in gap[program]["results"].values())
        assert len(program_values) >= 2 and min(program_values) < EXACT_DB, program_values

        # The outputs that differ: diagnostics on the user's lines, worst first.
        await session.wait_for(lambda: gap_diagnostics(session, script), 60, "gap diagnostics")
        found = gap_diagnostics(session, script)
        lines = text.splitlines()
        model_lines = {i for i, line in enumerate(lines) if "self.conv(x)" in line
                       or "self.fc(" in line}
        assert {d.range.start.line for d in found} <= model_lines, found
        assert all(d.severity == types.DiagnosticSeverity.Information for d in found)
        snrs = [snr_of(d.message) for d in found]
        assert snrs == sorted(snrs) and snrs[0] == pytest.approx(min(program_values), abs=0.05)
        worst = found[0]
        assert "against the ETRecord's reference (runtime DELEGATE_CALL" in worst.message
        assert answer["profile"]["numeric_gap"]["line"].startswith("debug.bin: ")
        assert "; numeric gap: debug.bin: " in answer["summary"]  # the editor's message

        # Lowered without an ETRecord: the one-line reason, the gap diagnostics cleared.
        script.write_text(SCRIPT.read_text())
        await session.visualize(script)
        answer, _ = await profiled(session, script)
        assert answer["profile"]["numeric_gap"]["line"] == (
            "no numeric gap: no ETRecord: pass generate_etrecord=True to "
            "to_edge_transform_and_lower (the numeric gap compares the runtime with its "
            "reference)"
        )
        assert "numeric-gap" not in overlay_kinds(url_data(answer["url"]))
        await session.wait_for(lambda: not gap_diagnostics(session, script), 60, "cleared")
        assert await session.close() == []
