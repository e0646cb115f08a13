"""Real export flows over LSP (issue 14): a launch configuration's module run with its
arguments and environment, re-run with them on save; the model file the run imported
re-runs it when saved or rewritten, and its errors land on its own lines; each stage is
on screen (``etviz/graphReady`` marked ``inProgress``) before the run ends, the final
collection replaces it, and a failed run goes back to the last good graph; the stages a
failed or timed-out run finished stay viewable, marked partial, and a timeout names the
setting to raise.

One trusted session (real server, warm worker, Model Explorer) is shared by the module.
"""

from __future__ import annotations

import asyncio
import json
import textwrap
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from pygls.exceptions import JsonRpcException

from tests.lsp_session import Session, graph_json, lsp_session

pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="module")]

MODEL = textwrap.dedent("""\
    import torch


    class Net(torch.nn.Module):
        def __init__(self, layers, width):
            super().__init__()
            self.layers = torch.nn.Sequential(
                *[torch.nn.Linear(width, width) for _ in range(layers)]
            )

        def forward(self, x):
            return self.layers(x)
    """)
# A package run with -m: the relative import fails as a plain script.
EXPORT = textwrap.dedent("""\
    import argparse
    import os

    import torch

    from .model import Net

    parser = argparse.ArgumentParser()
    parser.add_argument("--layers", type=int, required=True)
    layers = parser.parse_args().layers
    width = int(os.environ["FLOW_WIDTH"])
    ep = torch.export.export(Net(layers, width), (torch.randn(2, width),))
    """)
BROKEN_LINE = 12  # 1-based: `return self.layers(x)` in MODEL


def _nodes(event: Any) -> int:
    return sum(g.nodeCount for g in event.graphs)


def _linear_nodes(layers: int) -> int:
    return 2 + 3 * layers  # input, output; weight, bias, linear per layer


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def session(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Session]:
    root = tmp_path_factory.mktemp("lsp-flows")
    async with lsp_session(root, trusted=True, early_worker=True) as session:
        yield session


@pytest.fixture(scope="module")
def package(session: Session) -> Path:
    workspace = session.root / "workspace"
    pkg = workspace / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "model.py").write_text(MODEL)
    (pkg / "export.py").write_text(EXPORT)
    return pkg


def _run_config(package: Path, layers: int) -> dict[str, Any]:
    """What the extension sends for a launch.json configuration it resolved."""
    return {
        "name": f"export {layers} layers", "module": "pkg.export",
        "args": ["--layers", str(layers)], "cwd": str(package.parent),
        "env": {"FLOW_WIDTH": "4"},
    }


async def test_a_launch_configuration_runs_the_module_with_its_arguments(
    session: Session, package: Path
) -> None:
    script = package / "export.py"
    result = await session.visualize(script, {"run": _run_config(package, 3)})
    assert _nodes(result) == _linear_nodes(3)
    assert result.inProgress is False
    # A save re-runs with the same configuration: still its arguments, still a module run.
    before = len(session.graph_ready)
    session.save(script, EXPORT + "# saved\n")
    rerun = await session.next_graph(script, before, stale=False)
    assert (_nodes(rerun), rerun.stale) == (_linear_nodes(3), False)
    # Another configuration's arguments change the graph.
    result = await session.visualize(script, {"run": _run_config(package, 5)})
    assert _nodes(result) == _linear_nodes(5)


async def test_the_imported_model_file_reruns_the_flow(session: Session, package: Path) -> None:
    script, model = package / "export.py", package / "model.py"
    await session.visualize(script, {"run": _run_config(package, 2)})
    # Saved in the editor: the model gains a ReLU after each Linear.
    before = len(session.graph_ready)
    session.save(model, MODEL.replace(
        "*[torch.nn.Linear(width, width) for _ in range(layers)]",
        "*[m for _ in range(layers) for m in (torch.nn.Linear(width, width), torch.nn.ReLU())]",
    ))
    saved = await session.next_graph(script, before, stale=False)
    assert _nodes(saved) == _linear_nodes(2) + 2
    # Rewritten by another process (no didSave): the watch on the imported file sees it.
    before = len(session.graph_ready)
    model.write_text(MODEL.replace("return self.layers(x)", "return self.layers(x) * 2"))
    rewritten = await session.next_graph(script, before, stale=False)
    assert _nodes(rewritten) == _linear_nodes(2) + 1
    # A module run's error sits on the user's line in the file that raised it.
    before = len(session.graph_ready)
    session.save(model, MODEL.replace(
        "return self.layers(x)", 'raise ValueError("model broken on purpose")'
    ))
    stale = await session.next_graph(script, before, stale=True)
    assert "model broken on purpose" in stale.error
    assert stale.url == rewritten.url  # the last good graph stays
    await session.wait_for(lambda: session.client.diagnostics.get(model.as_uri()), 30,
                           "a diagnostic on model.py")
    (diagnostic,) = session.client.diagnostics[model.as_uri()]
    assert diagnostic.range.start.line == BROKEN_LINE - 1
    assert "model broken on purpose" in diagnostic.message
    session.save(model, MODEL)  # fixed: the flow runs again and the diagnostic goes
    await session.next_graph(script, len(session.graph_ready))
    await session.wait_for(lambda: not session.client.diagnostics.get(model.as_uri()), 30,
                           "the diagnostic to clear")


STAGED = textwrap.dedent("""\
    import json
    import pathlib
    import time

    import torch
    from executorch.exir import to_edge

    marks = pathlib.Path(__file__).with_suffix(".marks.json")
    started = time.time()
    ep = torch.export.export(torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.ReLU()),
                             (torch.randn(2, 4),))
    marks.write_text(json.dumps({"export_called": started, "exported": time.time()}))
    edge = to_edge(ep)
    time.sleep(SLEEP)  # the rest of a long flow (quantizing, lowering) takes its time
    marks.write_text(json.dumps({**json.loads(marks.read_text()), "slept": time.time()}))
    FAIL
    """)


async def _arrivals(session: Session, path: Path, after: int) -> list[tuple[float, Any]]:
    """graphReady events for ``path`` with the time each was seen, until a final one."""
    seen: list[tuple[float, Any]] = []
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        for event in session.graph_ready[after:]:
            after += 1
            if event.source == path.as_uri():
                seen.append((time.time(), event))
                if not getattr(event, "inProgress", False):
                    return seen
        await asyncio.sleep(0.02)
    raise AssertionError(f"no final graphReady for {path.name}: {seen}")


async def test_each_stage_is_shown_before_the_run_ends(session: Session) -> None:
    script = session.root / "workspace" / "staged.py"
    script.write_text(STAGED.replace("SLEEP", "4").replace("FAIL", ""))
    before = len(session.graph_ready)
    visualize = asyncio.ensure_future(session.visualize(script))
    seen = await _arrivals(session, script, before)
    result = await visualize
    marks = json.loads(script.with_suffix(".marks.json").read_text())
    *stages, (final_at, final) = seen
    assert stages, "no stage was shown while the script ran"
    first_at, first = stages[0]
    assert first.inProgress is True and first.stale is False
    assert len(first.graphs) == 1 and first.graphs[0].nodeCount > 0  # the exported graph
    # In order: every update holds the stages before it, the final one holds them all.
    ids = [[g.id for g in event.graphs] for _, event in seen]
    for earlier, later in zip(ids, ids[1:], strict=False):
        assert later[: len(earlier)] == earlier, ids
    assert len(final.graphs) >= 2 and final.inProgress is False
    assert result.url == final.url != first.url  # the final collection replaces the stages
    # While the script still ran: before its 4 s stand-in for the rest of a flow was over
    # (not "3 s before the end", a margin a busy machine can eat into).
    assert first_at < marks["slept"], "the first stage came only when the run ended"
    latency = first_at - marks["exported"]
    print(f"\nexport returned -> first graph on the client: {latency:.2f} s "
          f"(export call -> first graph: {first_at - marks['export_called']:.2f} s)")
    assert latency < 3.0, f"the exported graph took {latency:.2f} s to reach the client"

    # A failing re-run shows its stages, then the client is sent back to the last good graph.
    before = len(session.graph_ready)
    session.save(script, STAGED.replace("SLEEP", "0").replace(
        "FAIL", 'raise RuntimeError("late failure")'))
    seen = await _arrivals(session, script, before)
    *stages, (_at, failed) = seen
    assert stages and stages[0][1].inProgress is True
    assert failed.stale is True and "late failure" in failed.error
    assert failed.url == final.url  # the last good graph, not the failed run's stages
    # ... which stay viewable beside it, marked partial with the failure
    assert failed.partial.failure.startswith("exception at staged.py:")
    assert "RuntimeError: late failure" in failed.partial.failure
    assert len(failed.partial.graphs) >= 2 and failed.partial.url != failed.url
    assert graph_json(failed.partial.url)["label"].startswith("staged.py (partial: exception")


HANGS_AFTER_EXPORT = textwrap.dedent("""\
    import time

    import torch

    ep = torch.export.export(torch.nn.Linear(4, 4), (torch.randn(2, 4),))
    while True:
        time.sleep(0.1)  # line 7
    """)


async def test_a_timed_out_run_names_the_setting_and_keeps_its_stages(
    session: Session,
) -> None:
    script = session.root / "workspace" / "hangs_after_export.py"
    script.write_text(HANGS_AFTER_EXPORT)
    session.configure(timeout=8)
    try:
        before = len(session.graph_ready)
        advice = r"raise the etviz\.timeout setting \(now 8 s\) to give it longer"
        with pytest.raises(JsonRpcException, match=rf"hangs_after_export.py:7: timed out "
                           rf"after 8 s; stopped the script.*; {advice}"):
            await session.visualize(script)
        kept = await session.next_graph(script, before)
    finally:
        session.configure(timeout=120)
    # No good graph yet: the panel is sent the stages it finished, marked partial.
    assert kept.stale is False and "raise the etviz.timeout setting" in kept.error
    assert kept.partial.failure.startswith("timeout at hangs_after_export.py:7: timed out")
    assert kept.url == kept.partial.url
    assert [g.id for g in kept.graphs] == ["ep @ hangs_after_export.py:5 (exported)"]
    shown = graph_json(kept.url)
    assert shown["label"] == f"hangs_after_export.py (partial: {kept.partial.failure})"
    assert shown["graphs"][0]["groupNodeAttributes"][""]["partial"] == kept.partial.failure
    await session.wait_for(lambda: session.client.diagnostics.get(script.as_uri()), 30,
                           "the timeout's diagnostic")
    (diagnostic,) = session.client.diagnostics[script.as_uri()]
    assert diagnostic.range.start.line == 6 and "etviz.timeout" in diagnostic.message



async def test_shutdown_leaves_no_process_behind(session: Session) -> None:
    assert await session.close() == []
