"""End to end: navigation between code and graph through the real server, worker and
Model Explorer server (``nodeAt``, ``sourceOf``, ``showInGraph``, lenses, hovers).

The workspace holds a copy of the example model (``convnet.py``) and a small script that
imports it and adds an op of its own; one trusted session serves the module's tests (the
worker's imports are paid once), the last test shuts it down.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import textwrap
import urllib.parse
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from lsprotocol import types
from pygls.exceptions import JsonRpcException

from tests.conftest import PYTHON, REPO_ROOT
from tests.lsp_session import Session, capabilities, lsp_session

pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="module")]

BLOCK_RETURN = 16  # 0-based line of `return self.body(x) + x` in convnet.py (Block.forward)
STEM = 27  # `x = self.stem(x)`
HEAD = 31  # `return self.head(x)`
SELECT_NODES = "etviz/selectNodes"


def script_text(blank_lines: int = 0) -> str:
    """A script importing the model file; ``sigmoid`` is made at line 8 + ``blank_lines``."""
    return "\n" * blank_lines + textwrap.dedent("""\
        import torch
        from convnet import ConvNet, example_inputs


        class Wrapped(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.net = ConvNet()

            def forward(self, x):
                return torch.sigmoid(self.net(x))


        ep = torch.export.export(Wrapped().eval(), example_inputs())
        """)


SIGMOID = 10  # 0-based, with no blank lines in front


class Recorder:
    def __init__(self) -> None:
        self.selections: list[Any] = []
        self.lens_refreshes = 0


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def nav(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[tuple[Session, Recorder]]:
    root = tmp_path_factory.mktemp("lsp-nav")
    client_caps = capabilities()
    client_caps.workspace = types.WorkspaceClientCapabilities(
        code_lens=types.CodeLensWorkspaceClientCapabilities(refresh_support=True)
    )
    async with lsp_session(root, trusted=True, client_capabilities=client_caps) as session:
        recorder = Recorder()

        @session.client.feature(SELECT_NODES)
        def _selected(params: Any) -> None:
            recorder.selections.append(params)

        @session.client.feature(types.WORKSPACE_CODE_LENS_REFRESH)
        def _refresh(params: None) -> None:
            recorder.lens_refreshes += 1

        workspace = root / "workspace"
        shutil.copy(REPO_ROOT / "examples" / "convnet.py", workspace / "convnet.py")
        (workspace / "export_net.py").write_text(script_text())
        yield session, recorder


@pytest.fixture
def session(nav: tuple[Session, Recorder]) -> Session:
    return nav[0]


@pytest.fixture
def recorder(nav: tuple[Session, Recorder]) -> Recorder:
    return nav[1]


@pytest.fixture
def workspace(session: Session) -> Path:
    return (session.root / "workspace").resolve()


async def command(session: Session, name: str, *arguments: Any) -> Any:
    return await session.client.workspace_execute_command_async(
        types.ExecuteCommandParams(command=f"etviz.server.{name}", arguments=list(arguments))
    )


async def lenses_of(session: Session, path: Path) -> list[types.CodeLens]:
    uri = path.as_uri()
    session.client.text_document_did_open(
        types.DidOpenTextDocumentParams(
            types.TextDocumentItem(uri, "python", 1, path.read_text())
        )
    )
    found = await session.client.text_document_code_lens_async(
        types.CodeLensParams(types.TextDocumentIdentifier(uri))
    )
    return found or []


def ui_state(url: str) -> dict[str, Any]:
    data = urllib.parse.parse_qs(urllib.parse.urlparse(url).query)["data"][0]
    return dict(json.loads(data)["uiState"]["paneStates"][0])


async def test_node_at_a_model_file_line_gives_its_ops_and_a_revealing_url(
    session: Session, workspace: Path, recorder: Recorder
) -> None:
    convnet = workspace / "convnet.py"
    before = await command(session, "nodeAt", convnet.as_uri(), BLOCK_RETURN)
    assert before["nodeIds"] == [] and before["graphId"] is None  # nothing shown yet
    refreshes = recorder.lens_refreshes
    shown = await session.visualize(workspace / "export_net.py")
    [graph] = shown.graphs
    assert recorder.lens_refreshes == refreshes + 1  # lenses asked to follow the new map
    answer = await command(session, "nodeAt", convnet.as_uri(), BLOCK_RETURN)
    assert answer["graphId"] == graph.id
    assert answer["source"] == (workspace / "export_net.py").as_uri()
    # the line makes both blocks' conv, batch norm, relu and add: first node first
    assert answer["nodeIds"][:4] == ["conv2d_1", "batch_norm", "relu", "add"]
    assert len(answer["nodeIds"]) == 8
    assert answer["namespaces"][0] == "net (ConvNet)/stages/0 (Block)/body (Sequential)/0 (Conv2d)"
    state = ui_state(answer["url"])
    assert (state["selectedNodeId"], state["selectedGraphId"]) == ("conv2d_1", graph.id)
    assert state["deepestExpandedGroupNodeIds"][-1] == (
        "net (ConvNet)/stages/0 (Block)/body (Sequential)/0 (Conv2d)___group___"
    )
    with urllib.request.urlopen(answer["url"], timeout=10) as page:  # the server opens it
        assert page.status == 200
    stem = await command(session, "nodeAt", convnet.as_uri(), STEM)
    assert stem["nodeIds"] == ["conv2d"]
    nothing = await command(session, "nodeAt", convnet.as_uri(), 0)
    assert nothing["nodeIds"] == [] and nothing["namespaces"] == []


async def test_source_of_a_node_names_the_file_and_line(
    session: Session, workspace: Path
) -> None:
    located = await command(session, "nodeAt", (workspace / "convnet.py").as_uri(), STEM)
    graph_id = located["graphId"]
    conv = await command(session, "sourceOf", graph_id, "conv2d_2")
    assert (conv["uri"], conv["line"]) == ((workspace / "convnet.py").as_uri(), BLOCK_RETURN)
    linear = await command(session, "sourceOf", None, "linear")  # the page sends no graph id
    assert (linear["uri"], linear["line"], linear["graphId"]) == (
        (workspace / "convnet.py").as_uri(), HEAD, graph_id,
    )
    sigmoid = await command(session, "sourceOf", graph_id, "sigmoid")
    assert (sigmoid["uri"], sigmoid["line"]) == ((workspace / "export_net.py").as_uri(), SIGMOID)
    weight = await command(session, "sourceOf", graph_id, "p_net_stem_weight")
    assert (weight["uri"], weight["reason"]) == (None, "no recorded source")
    with pytest.raises(JsonRpcException, match="expected"):
        await command(session, "sourceOf", graph_id)


async def test_show_in_graph_lenses_on_the_model_file_and_the_script(
    session: Session, workspace: Path
) -> None:
    convnet = workspace / "convnet.py"
    lenses = await lenses_of(session, convnet)
    titles = {
        lens.range.start.line: (lens.command.title if lens.command else None) for lens in lenses
    }
    assert titles[BLOCK_RETURN] == "Show in Graph (8 ops)"
    assert titles[STEM] == "Show in Graph (1 op)"
    assert titles[HEAD] == "Show in Graph (1 op)"
    by_line = {lens.range.start.line: lens for lens in lenses}
    block = by_line[BLOCK_RETURN]
    assert block.range.start.character == 8  # at the code, past the indent
    assert block.command is not None
    assert block.command.command == "etviz.server.showInGraph"
    assert list(block.command.arguments or ()) == [convnet.as_uri(), BLOCK_RETURN]
    script = workspace / "export_net.py"
    script_lenses = await lenses_of(session, script)
    assert [(lens.range.start.line, lens.command.title if lens.command else None)
            for lens in script_lenses] == [
        (SIGMOID, "Show in Graph (1 op)"), (SIGMOID + 3, "Visualize"),
    ]
    hover = await session.client.text_document_hover_async(
        types.HoverParams(types.TextDocumentIdentifier(convnet.as_uri()),
                          types.Position(STEM, 10))
    )
    assert hover is not None and isinstance(hover.contents, types.MarkupContent)
    assert "1 op in" in hover.contents.value and "`conv2d`" in hover.contents.value


async def test_show_in_graph_tells_the_client_to_select_the_nodes(
    session: Session, workspace: Path, recorder: Recorder
) -> None:
    convnet = workspace / "convnet.py"
    before = len(recorder.selections)
    answer = await command(session, "showInGraph", convnet.as_uri(), BLOCK_RETURN)
    await session.wait_for(lambda: len(recorder.selections) > before, 10, "etviz/selectNodes")
    selected = recorder.selections[before]
    assert selected.source == (workspace / "export_net.py").as_uri()
    assert selected.graphId == answer["graphId"]
    assert selected.nodeIds[0] == "conv2d_1" and len(selected.nodeIds) == 8
    assert len(selected.namespaces) == 8
    assert ui_state(selected.url)["selectedNodeId"] == "conv2d_1"
    # a line that made nothing selects nothing
    empty = await command(session, "showInGraph", convnet.as_uri(), 1)
    assert empty["nodeIds"] == []
    with pytest.raises(JsonRpcException, match="expected"):
        await command(session, "showInGraph", convnet.as_uri(), "one")


async def test_the_map_follows_a_rerun(
    session: Session, workspace: Path, recorder: Recorder
) -> None:
    script = workspace / "export_net.py"
    refreshes = recorder.lens_refreshes
    before = len(session.graph_ready)
    session.save(script, script_text(blank_lines=3))  # every line moves down by three
    await session.next_graph(script, before, stale=False)
    moved = await command(session, "nodeAt", script.as_uri(), SIGMOID + 3)
    assert moved["nodeIds"] == ["sigmoid"]
    assert (await command(session, "nodeAt", script.as_uri(), SIGMOID))["nodeIds"] == []
    source = await command(session, "sourceOf", moved["graphId"], "sigmoid")
    assert source["line"] == SIGMOID + 3
    assert recorder.lens_refreshes == refreshes + 1
    # a broken save keeps the last good graph, and its map
    before = len(session.graph_ready)
    session.save(script, script_text(blank_lines=3) + "raise RuntimeError('broken')\n")
    await session.next_graph(script, before, stale=True)
    kept = await command(session, "nodeAt", script.as_uri(), SIGMOID + 3)
    assert kept["nodeIds"] == ["sigmoid"]


async def test_a_pt2_maps_to_the_model_file_in_the_workspace(
    session: Session, workspace: Path
) -> None:
    archive = workspace / "net.pt2"
    save = textwrap.dedent("""\
        import sys, torch
        from convnet import ConvNet, example_inputs
        ep = torch.export.export(ConvNet().eval(), example_inputs())
        torch.export.save(ep, sys.argv[1])
        """)
    subprocess.run([PYTHON, "-c", save, str(archive)], cwd=workspace, check=True)
    shown = await session.visualize(archive)
    [graph] = shown.graphs
    answer = await command(session, "nodeAt", (workspace / "convnet.py").as_uri(), STEM)
    assert (answer["source"], answer["graphId"], answer["nodeIds"]) == (
        archive.as_uri(), graph.id, ["conv2d"],
    )
    source = await command(session, "sourceOf", graph.id, "linear", archive.as_uri())
    assert (source["uri"], source["line"]) == ((workspace / "convnet.py").as_uri(), HEAD)


async def test_shutdown_leaves_no_process_behind(session: Session) -> None:
    left = await session.close()
    assert left == [], [(p.pid, p.cmdline()) for p in left]
