"""End to end: the real server over stdio, the real worker, a real Model Explorer server.

One trusted session is shared by the tests of this module (starting the worker imports
torch and ExecuTorch: that cost is paid once); each test works on files of its own. The
last test shuts the session down and checks that no process is left.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import textwrap
import time
import urllib.parse
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import psutil
import pytest
import pytest_asyncio
from lsprotocol import types
from pygls.exceptions import JsonRpcException

from etviz_lsp.lsp.visualizer import DEBOUNCE_SECONDS
from tests.conftest import PYTHON
from tests.lsp_session import Session, export_script, lsp_session

pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="module")]


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def session(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Session]:
    root = tmp_path_factory.mktemp("lsp-e2e")
    async with lsp_session(root, trusted=True, early_worker=True) as session:
        yield session


@pytest.fixture
def workspace(session: Session) -> Path:
    return session.root / "workspace"


def graph_file(url: str) -> Path:
    """The graph JSON a Model Explorer URL opens."""
    data = urllib.parse.parse_qs(urllib.parse.urlparse(url).query)["data"][0]
    return Path(json.loads(data)["models"][0]["url"])


def node_count(result: Any) -> int:
    return sum(g.nodeCount for g in result.graphs)


def progress_tokens(session: Session) -> set[object]:
    return set(session.client.progress_reports)


async def test_visualize_a_script(session: Session, workspace: Path) -> None:
    script = workspace / "small.py"
    script.write_text(export_script(layers=2))
    before = len(session.graph_ready)
    result = await session.visualize(script)
    assert result.source == script.as_uri()
    assert result.url.startswith("http://127.0.0.1:")
    assert [g.nodeCount for g in result.graphs] == [8]  # x, 2 x (weight, bias, linear), output
    assert result.elapsedMs > 0
    # the server answers the URL (it carries the guard's token) and shows the JSON the run wrote
    with urllib.request.urlopen(result.url, timeout=10) as answer:
        assert answer.status == 200
    assert graph_file(result.url).parent == session.root / "etviz-state" / "graphs"
    written = json.loads(graph_file(result.url).read_text())
    assert len(written["graphs"][0]["nodes"]) >= 8
    ready = await session.next_graph(script, before)
    assert (ready.url, ready.stale) == (result.url, False)
    # progress went through the worker's stages and ended
    reports = [
        r for token in progress_tokens(session) for r in session.client.progress_reports[token]
    ]
    messages = {getattr(r, "message", None) for r in reports}
    assert {"running script", "exporting", "refreshing"} <= messages
    assert any(isinstance(r, types.WorkDoneProgressEnd) for r in reports)


async def test_saving_a_changed_script_shows_the_new_graph(
    session: Session, workspace: Path
) -> None:
    script = workspace / "grows.py"
    script.write_text(export_script(layers=1))
    first = await session.visualize(script)
    assert node_count(first) == 5
    before = len(session.graph_ready)
    session.save(script, export_script(layers=3))
    ready = await session.next_graph(script, before)
    assert (node_count(ready), ready.stale, ready.url) == (11, False, first.url)
    assert len(json.loads(graph_file(ready.url).read_text())["graphs"][0]["nodes"]) >= 11


async def test_a_change_on_disk_by_another_process_refreshes(
    session: Session, workspace: Path
) -> None:
    script = workspace / "outside.py"
    script.write_text(export_script(layers=1))
    await session.visualize(script)
    before = len(session.graph_ready)
    # an atomic save by another program: write a temp file, rename it over the script
    subprocess.run(
        [PYTHON, "-c", textwrap.dedent(f"""\
            import os, sys
            tmp = {str(script)!r} + ".tmp"
            open(tmp, "w").write(sys.stdin.read())
            os.replace(tmp, {str(script)!r})
            """)],
        input=export_script(layers=2), text=True, check=True,
    )
    ready = await session.next_graph(script, before)
    assert node_count(ready) == 8


async def test_a_broken_script_gets_a_diagnostic_then_fixing_clears_it(
    session: Session, workspace: Path
) -> None:
    script = workspace / "breaks.py"
    script.write_text(export_script(layers=2))
    good = await session.visualize(script)
    before = len(session.graph_ready)
    session.save(script, export_script(layers=2, width=5))  # shapes no longer fit
    stale = await session.next_graph(script, before, stale=True)
    assert (stale.url, node_count(stale)) == (good.url, 8)  # the last good graph stays
    assert "reduction dim" in stale.error
    [diagnostic] = session.client.diagnostics[script.as_uri()]
    assert diagnostic.range.start.line == 11  # `return self.layers(x)`, 0-based
    assert diagnostic.severity == types.DiagnosticSeverity.Error
    assert "a and b must have same reduction dim" in diagnostic.message
    [related] = diagnostic.related_information or []
    assert "/torch/" in related.location.uri
    before = len(session.graph_ready)
    session.save(script, export_script(layers=2))
    fixed = await session.next_graph(script, before, stale=False)
    assert node_count(fixed) == 8
    assert list(session.client.diagnostics[script.as_uri()]) == []


async def test_ten_saves_in_a_second_make_one_or_two_runs(
    session: Session, workspace: Path
) -> None:
    script = workspace / "burst.py"
    script.write_text(export_script(layers=1))
    await session.visualize(script)
    tokens_before = progress_tokens(session)
    before = len(session.graph_ready)
    sent = []
    for layers in range(1, 11):
        sent.append(time.monotonic())
        session.save(script, export_script(layers=layers))
        await asyncio.sleep(0.09)
    # A pause of this process as long as the server's quiet window (a busy machine) splits
    # the burst: each such pause may start one more run. None when the machine keeps up.
    splits = sum(b - a >= DEBOUNCE_SECONDS for a, b in zip(sent, sent[1:], strict=False))

    def outcomes() -> list[int]:  # stages shown meanwhile aside
        return [node_count(g) for g in session.graph_ready[before:] if not g.inProgress]

    await session.wait_for(lambda: 2 + 3 * 10 in outcomes(), 180, "the last save's graph")
    await asyncio.sleep(2)  # nothing else arrives later
    runs = progress_tokens(session) - tokens_before
    assert 1 <= len(runs) <= 2 + splits, (len(runs), splits)
    assert outcomes()[-1] == 32 and len(outcomes()) <= 1 + splits, (outcomes(), splits)


async def test_visualize_a_pt2_and_see_it_rewritten(session: Session, workspace: Path) -> None:
    archive = workspace / "model.pt2"
    save = textwrap.dedent("""\
        import sys, torch
        layers = int(sys.argv[2])
        net = torch.nn.Sequential(*[torch.nn.Linear(4, 4) for _ in range(layers)])
        ep = torch.export.export(net, (torch.randn(2, 4),))
        torch.export.save(ep, sys.argv[1] + ".tmp")
        import os; os.replace(sys.argv[1] + ".tmp", sys.argv[1])
        """)
    subprocess.run([PYTHON, "-c", save, str(archive), "1"], check=True)
    result = await session.visualize(archive)
    assert node_count(result) == 5
    assert result.source == archive.as_uri()
    before = len(session.graph_ready)
    subprocess.run([PYTHON, "-c", save, str(archive), "2"], check=True)  # another process
    ready = await session.next_graph(archive, before)
    assert node_count(ready) == 8
    # and the refresh command re-reads it on request
    refreshed = await session.client.workspace_execute_command_async(
        types.ExecuteCommandParams(command="etviz.server.refresh", arguments=[archive.as_uri()])
    )
    assert [g["nodeCount"] for r in refreshed["refreshed"] for g in r["graphs"]] == [8]
    assert refreshed["errors"] == []


async def test_cancel_through_progress_kills_the_run(session: Session, workspace: Path) -> None:
    script = workspace / "slow.py"
    script.write_text(export_script(layers=1, before_export="import time; time.sleep(300)"))
    server = psutil.Process(session.server_pid)
    idle = {p.pid for p in server.children(recursive=True)}
    tokens_before = progress_tokens(session)
    run = asyncio.ensure_future(session.visualize(script))

    def run_children() -> list[psutil.Process]:
        return [p for p in server.children(recursive=True) if p.pid not in idle]

    await session.wait_for(lambda: progress_tokens(session) - tokens_before, what="progress")
    [token] = progress_tokens(session) - tokens_before
    await session.wait_for(
        lambda: any(getattr(r, "message", "") == "running script"
                    for r in session.client.progress_reports[token]),
        what="the script to run",
    )
    await session.wait_for(run_children, what="the run's child process")
    children = run_children()
    session.client.window_work_done_progress_cancel(types.WorkDoneProgressCancelParams(token))
    with pytest.raises(JsonRpcException, match="cancelled"):
        await asyncio.wait_for(run, 30)
    gone, alive = await asyncio.to_thread(psutil.wait_procs, children, 5)
    assert alive == []
    assert session.client.diagnostics.get(script.as_uri(), []) == []  # a cancel is no error


async def test_settings_change_live_without_a_restart(session: Session, workspace: Path) -> None:
    server_pid = session.server_pid
    script = workspace / "live_settings.py"
    try:
        # Off before the file exists: the folder is already watched for other tests' files,
        # and the event of this write must not start a run of its own.
        session.configure(autoRefresh=False)
        script.write_text(export_script(1))
        before = len(session.graph_ready)
        one_layer = node_count(await session.visualize(script))  # visualize still runs
        await session.next_graph(script, before)
        seen = len(session.graph_ready)
        session.save(script, export_script(2))
        await asyncio.sleep(3)  # saves wait 0.4 s of quiet: a run would have reported by now
        assert [g for g in session.graph_ready[seen:] if g.source == script.as_uri()] == []

        session.configure(autoRefresh=True)  # watching again, without visualizing again
        session.save(script, export_script(3))
        shown = await session.next_graph(script, seen, stale=False)
        assert sum(g.nodeCount for g in shown.graphs) > one_layer

        session.configure(timeout=2)
        slow = workspace / "slow_export.py"
        slow.write_text("import time\ntime.sleep(120)\n")
        started = time.monotonic()
        with pytest.raises(JsonRpcException, match="timed out after 2 s"):
            await session.visualize(slow)
        assert time.monotonic() - started < 60
    finally:
        session.configure(autoRefresh=True, timeout=120)
    assert session.server_pid == server_pid  # applied live: no restart


async def test_shutdown_leaves_no_process_behind(session: Session) -> None:
    server = psutil.Process(session.server_pid)
    assert server.children(recursive=True), "the worker should be running"
    left = await session.close()
    assert left == [], [(p.pid, p.cmdline()) for p in left]
    assert not psutil.pid_exists(session.server_pid) or server.status() == psutil.STATUS_ZOMBIE
    assert os.environ.get("ETVIZ_TEST_SESSION") is None
