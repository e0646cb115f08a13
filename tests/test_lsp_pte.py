"""The language server opens `.pte` programs and ETRecords like `.pt2` archives: the real
server over stdio, its real worker, in an untrusted workspace (neither kind runs code or
unpickles), and re-reads a program rewritten on disk."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from lsprotocol import types

from tests import pte_artifacts
from tests.lsp_session import Session, graph_json, lsp_session
from tests.test_pte_etrecord import artifacts, two_methods  # noqa: F401 (session fixtures)

pytestmark = [pytest.mark.slow]


async def test_untrusted_session_shows_a_pte_and_follows_it_on_disk(
    tmp_path: Path, artifacts, two_methods  # noqa: F811
) -> None:
    async with lsp_session(tmp_path, trusted=False) as session:
        result = session.initialize_result
        assert result is not None and result.capabilities.experimental is not None
        kinds = result.capabilities.experimental["etviz"]["inputKinds"]
        assert [k["suffix"] for k in kinds] == [".py", ".pt2", ".pte", ".etrecord"]
        assert [k["suffix"] for k in kinds if k["needsTrust"]] == [".py"]

        workspace = session.root / "workspace"
        program = workspace / "model.pte"
        graph = await _show_with_etrecord(session, program, "model.etrecord", artifacts)
        labels = [n["label"] for n in graph["nodes"] if n["id"].startswith("instruction")]
        assert labels == ["XnnpackBackend #0", "aten::cumsum", "XnnpackBackend #1"]

        record = await session.visualize(workspace / "model.etrecord")
        assert [g.id for g in record.graphs] == [
            "model (exported)", "forward (edge)", "forward (lowered)",
        ]

        # From a node to the user's line: the .pte's CPU kernel (through the ETRecord's
        # debug handles) and the lowered view's cumsum both lead to the torch.cumsum line.
        for graph_id, node_id, shown_file in (
            ("forward", "instruction_1", program),
            ("forward (lowered)", "aten_cumsum_default", workspace / "model.etrecord"),
        ):
            where = await session.client.workspace_execute_command_async(
                types.ExecuteCommandParams(
                    command="etviz.server.sourceOf",
                    arguments=[graph_id, node_id, shown_file.as_uri()],
                )
            )
            assert where["uri"] == Path(pte_artifacts.__file__).as_uri(), where
            assert where["line"] == 28  # 0-based: line 29, y = torch.cumsum(y, dim=1)

        before = len(session.graph_ready)
        temp = workspace / ".model.pte.tmp"  # another process rewrites it, atomically
        temp.write_bytes(two_methods[0].read_bytes())
        os.replace(temp, program)
        ready = await session.next_graph(program, before, seconds=120)
        methods = ["forward", "forward/XnnpackBackend #0", "shift", "shift/XnnpackBackend #0"]
        assert [g.id for g in ready.graphs] == methods

        before = len(session.graph_ready)
        program.write_bytes(b"\0" * 64)  # a broken write: an error, the last graph kept
        stale = await session.next_graph(program, before, stale=True, seconds=120)
        assert "not an ExecuTorch program" in stale.error
        assert [g.id for g in stale.graphs] == methods  # the last good one
        assert graph_json(stale.url)["graphs"][2]["id"] == "shift"
        (diagnostics,) = [d for d in session.client.diagnostics.values() if d]
        assert "not an ExecuTorch program" in diagnostics[0].message
        assert await session.close() == []


async def test_a_program_named_in_upper_case_opens_as_the_editor_offers_it(
    tmp_path: Path, artifacts  # noqa: F811
) -> None:
    """The editor offers Visualize on ``Model.PTE`` (its menus match without case): the
    server opens it, with the ``Model.ETRECORD`` beside it linked (issue 25)."""
    async with lsp_session(tmp_path, trusted=False) as session:
        program = session.root / "workspace" / "Model.PTE"
        graph = await _show_with_etrecord(session, program, "Model.ETRECORD", artifacts)
        assert graph["groupNodeAttributes"][""]["etrecord"] == "Model.ETRECORD"
        assert await session.close() == []


async def _show_with_etrecord(session: Session, program: Path, record: str, made: Any) -> Any:
    """The test program (``made``) at ``program`` with its ETRecord beside it as ``record``,
    shown: its top graph, after checking it came with its delegates and is linked."""
    program.write_bytes(made.pte.read_bytes())
    program.with_name(record).write_bytes(made.etrecord.read_bytes())
    shown = await session.visualize(program)
    assert [g.id for g in shown.graphs] == [
        "forward", "forward/XnnpackBackend #0", "forward/XnnpackBackend #1",
    ]
    graph = graph_json(shown.url)["graphs"][0]
    cumsum = {a["key"]: a["value"] for a in graph["nodes"][2]["attrs"]}
    assert cumsum["edge ops"] == "aten_cumsum_default"  # the ETRecord beside it, linked
    return graph
