"""The warm worker started early (issue 27 item 4): at ``initialized``, in a trusted
workspace holding an export script, before any command; never in an untrusted one, with the
setting off, or without an export script. The first run is served by that same worker.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from pygls.exceptions import JsonRpcException

from etviz_lsp.lsp import options, prestart
from tests.lsp_session import (
    ancestors_of,
    ancestry_script,
    export_script,
    lsp_session,
    seed_workspace,
)

STARTED = "warm worker: started early"
NOT_STARTED = "warm worker: not started early"
READY = "warm worker: ready after"
LOWERING = "from executorch.exir import to_edge as lower\n\nlower(ep)\n"


# -- which workspaces count: the walk and the options (no server) -------------------------


def test_the_export_script_nearest_the_top_is_found_and_installed_code_is_skipped(
    tmp_path: Path,
) -> None:
    files = {
        "notes.py": '"""How we export: see the docs."""\nexport = None\n',  # the word, no call
        "model/net.py": "import torch\n\nclass Net(torch.nn.Module):\n    pass\n",
        ".venv/lib/site.py": export_script(1),
        "env/pyvenv.cfg": "home = /usr/bin\n",  # a virtual env under any name
        "env/lib/x.py": export_script(1),
        "node_modules/pkg/x.py": export_script(1),
        "tools/deep/lower_it.py": "import torch\nep = None\n" + LOWERING,
    }
    workspace = seed_workspace(tmp_path, files)
    assert prestart.find_export_script([workspace]) == workspace / "tools/deep/lower_it.py"
    (workspace / "scripts").mkdir()
    (workspace / "scripts/export.py").write_text(export_script(1))
    assert prestart.find_export_script([workspace]) == workspace / "scripts/export.py"
    (workspace / "scripts/export.py").unlink()
    (workspace / "tools/deep/lower_it.py").unlink()
    assert prestart.find_export_script([workspace]) is None


def test_the_walk_reads_a_bounded_number_of_files(tmp_path: Path) -> None:
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    for index in range(prestart.MAX_FILES):  # read before the script (names sort first)
        (workspace / f"a{index:04}.py").write_text("x = 1\n")
    (workspace / "z_export.py").write_text(export_script(1))
    assert prestart.find_export_script([workspace]) is None
    (workspace / "a0000.py").unlink()
    assert prestart.find_export_script([workspace]) == workspace / "z_export.py"


def test_only_a_trusted_workspace_with_the_setting_on_starts_early() -> None:
    assert prestart.refusal(options.parse({"trusted": True})) is None
    assert prestart.refusal(options.parse({})) == "the workspace is not trusted"
    off = options.parse({"trusted": True, "prestartWorker": False})
    assert prestart.refusal(off) == "etviz.prestartWorker is off"


# -- the real server over stdio ------------------------------------------------------------


@pytest.mark.slow
async def test_the_worker_starts_at_initialized_and_serves_the_first_run(
    tmp_path: Path, worker_mode: str
) -> None:
    workspace = seed_workspace(tmp_path, {"models/export.py": ancestry_script(2)})
    script = workspace / "models/export.py"
    async with lsp_session(tmp_path, trusted=True, workerMode=worker_mode) as session:
        # before any command: a child of the server runs the worker
        await session.wait_for(lambda: session.workers(), 30, "the early worker")
        [worker] = session.workers()
        # logged once start() returned: in the portable mode after the worker connected back
        await session.wait_for(lambda: session.logged(f"{STARTED} for {script}"), 60,
                               "the early start's log line")
        await session.wait_for(lambda: session.logged(READY), 600, "the worker's warm-up")
        assert session.logged(f"{worker_mode} mode)")  # the mode asked for is the one used
        sent = time.monotonic()
        answer = await session.visualize(script)
        took = time.monotonic() - sent
        print(f"\ncommand -> graph with the early worker ({worker_mode}): {took:.2f} s")
        assert sum(g.nodeCount for g in answer.graphs) > 0
        assert worker.pid in ancestors_of(script)  # the run was a child of that worker
        assert [w.pid for w in session.workers()] == [worker.pid]
        assert worker.is_running()  # the same process, not a new one under its pid
        assert await session.close() == []


@pytest.mark.parametrize(("files", "settings", "reason"), [
    ({"export.py": export_script(1)}, {"trusted": False}, "the workspace is not trusted"),
    ({"export.py": export_script(1)}, {"trusted": True, "prestartWorker": False},
     "etviz.prestartWorker is off"),
    ({"notes.py": "export = 'later'\n", "relu.pt2": ""}, {"trusted": True},
     "no export script in the workspace"),
], ids=["untrusted", "setting-off", "no-export-script"])
async def test_no_worker_starts_early_otherwise(
    tmp_path: Path, files: dict[str, str], settings: dict[str, bool], reason: str
) -> None:
    seed_workspace(tmp_path, files)
    async with lsp_session(tmp_path, **settings) as session:
        await session.wait_for(lambda: session.logged(NOT_STARTED), 30, "the decision")
        assert session.logged(f"{NOT_STARTED} ({reason})")
        await asyncio.sleep(2)  # a worker started anyway would show up by now
        assert session.workers() == []
        assert psutil.Process(session.server_pid).children() == []
        assert await session.close() == []


async def test_a_failed_early_start_is_logged_and_the_first_run_says_why(tmp_path: Path) -> None:
    # The interpreter chosen for scripts has no torch: a fresh venv of the same Python.
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(tmp_path / "bare")],
                   check=True)
    bare = str(tmp_path / "bare" / "bin" / "python")
    script = seed_workspace(tmp_path, {"export.py": export_script(1)}) / "export.py"
    async with lsp_session(tmp_path, trusted=True, pythonPath=bare) as session:
        failed = "warm worker: the early start failed"
        await session.wait_for(lambda: session.logged(failed), 60, "the early start to fail")
        [line] = session.logged(failed)
        assert f"{bare}: torch is not installed" in line
        assert session.workers() == []  # nothing left of it
        with pytest.raises(JsonRpcException, match="torch is not installed"):
            await session.visualize(script)  # the run starts a worker again, and says why
        assert await session.close() == []
