"""End to end: the numeric overlay in the editor, through the real server over stdio.

A real PT2E script (``tests/scripts/quantize_clipped.py``) whose ``fc`` output is given a
clipping quantization config runs in the real warm worker: its worst op becomes an
Information diagnostic on the line that made it, worst first; the node-data files are
beside the graph the page shows, made after it. Fixing the config (a save) clears the
diagnostic; ``etviz.numeric: off`` turns the comparison off live.
"""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from lsprotocol import types

from etviz_lsp import graph_files
from tests.lsp_session import Session, lsp_session

pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="module")]

CLIPPED = Path(__file__).parent / "scripts" / "quantize_clipped.py"
BREAK = '.set_module_name("fc", clipping)'


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def session(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Session]:
    async with lsp_session(tmp_path_factory.mktemp("lsp-numeric"), trusted=True) as session:
        yield session


def graph_file(url: str) -> Path:
    data = urllib.parse.parse_qs(urllib.parse.urlparse(url).query)["data"][0]
    return Path(json.loads(data)["models"][0]["url"])


def line_of(text: str, needle: str) -> int:
    """0-based, as LSP counts."""
    return next(i for i, line in enumerate(text.splitlines()) if needle in line)


def numeric(session: Session, script: Path) -> list[types.Diagnostic]:
    return [d for d in session.client.diagnostics.get(script.as_uri(), []) if d.code == "numeric"]


async def _run(session: Session, script: Path, text: str) -> Any:
    before = len(session.graph_ready)
    session.save(script, text)
    return await session.next_graph(script, before, stale=False)


async def test_the_clipped_op_is_an_information_diagnostic_on_its_line_ranked_worst(
    session: Session,
) -> None:
    text = CLIPPED.read_text()
    script = session.root / "workspace" / "clipped.py"
    script.write_text(text)
    shown = await session.visualize(script)
    await session.wait_for(lambda: numeric(session, script), 60, "numeric diagnostics")
    first, *rest = numeric(session, script)
    assert first.range.start.line == line_of(text, "# the clipped op")
    assert first.severity == types.DiagnosticSeverity.Information
    assert first.source == "etviz"
    assert first.message.startswith("quantization error: linear (linear) SQNR ")
    assert "(worst of 6 ops)" in first.message
    sqnr = float(first.message.split("SQNR ")[1].split(" dB")[0])
    assert sqnr < 5  # clipped: the healthy int8 ops here measure 37-42 dB
    assert rest == []  # only ops below the threshold are diagnostics
    # The page's graph has the node data beside it, made for this run.
    graph = graph_file(shown.url)
    sqnr_file = graph_files.overlay_path(graph, "numeric", "sqnr")
    assert sqnr_file in graph_files.node_data_of(graph).files
    [(graph_id, data)] = json.loads(sqnr_file.read_text()).items()
    assert "(quantized)" in graph_id
    assert min(data["results"], key=lambda n: data["results"][n]["value"]) == "linear"

    # Fixing the config clears the diagnostic (the run replaces them).
    await _run(session, script, text.replace(BREAK, ""))
    await session.wait_for(lambda: not numeric(session, script), 60, "cleared diagnostics")
    fresh = json.loads(sqnr_file.read_text())[graph_id]["results"]
    assert min(r["value"] for r in fresh.values()) > 20


async def test_numeric_off_makes_no_comparison(session: Session) -> None:
    script = session.root / "workspace" / "clipped_off.py"
    session.client.workspace_did_change_configuration(
        types.DidChangeConfigurationParams(settings={"etviz": {"numeric": "off"}})
    )
    try:
        script.write_text(CLIPPED.read_text())
        shown = await session.visualize(script)
        graph = graph_file(shown.url)
        assert graph_files.node_data_of(graph).files == ()
        assert numeric(session, script) == []
    finally:
        session.client.workspace_did_change_configuration(
            types.DidChangeConfigurationParams(settings={"etviz": {"numeric": "onRun"}})
        )
