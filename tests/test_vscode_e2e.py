"""The VS Code extension end to end: the built .vsix in a real code-server, driven in a real
headless Chromium, running the real language server, worker and Model Explorer.

The user story checked: open an export script, run "Visualize ExportedProgram" from the
command palette, see Model Explorer with our graph in the panel (graph and node count read
inside the iframe); add a layer, save, see the graph rebuilt with the new node count without
running the command again; break the script, save, see the diagnostic in the Problems panel
while the last good graph stays. Navigation (issue 11), both ways: an op node selected in
Model Explorer opens the line of ``convnet.py`` that made it; "Show in Graph" on a line of
``convnet.py`` (and its "Show in Graph" code lens) selects that line's first op in Model
Explorer.
Screenshots and step timings land in build/artifacts/.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.test_pte_etrecord import artifacts  # noqa: F401 (the session fixture)

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent
EXTENSION = REPO / "vscode-extension"
ARTIFACTS = REPO / "build" / "artifacts"
DRIVER = EXTENSION / "test" / "e2e" / "drive_code_server.mjs"
SCRIPT = "export_convnet.py"
# Line numbers below are the script's: the driver edits them through the editor.
EXPORT_SCRIPT = '''"""Export the example ConvNet (written by the VS Code end-to-end test)."""
import torch

from convnet import ConvNet, example_inputs

model = ConvNet(blocks=2).eval()
program = torch.export.export(model, example_inputs())
'''
MODEL_LINE = 6
BROKEN_MESSAGE = "broken on purpose by the e2e test"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _tools() -> tuple[str, str]:
    """Node 24 and code-server's entry script (installed once, under build/tools/)."""
    out = subprocess.run(
        [str(REPO / "scripts" / "setup-code-server.sh")],
        check=True, capture_output=True, text=True, timeout=1800,
    ).stdout.split()
    return out[-2], out[-1]


def _vsix() -> Path:
    subprocess.run(["make", "-s", "vsix"], cwd=REPO, check=True, timeout=600)
    version = json.loads((EXTENSION / "package.json").read_text())["version"]
    vsix = EXTENSION / f"etviz-lsp-{version}.vsix"
    assert vsix.is_file()
    return vsix


@functools.cache
def _convnet_graph(blocks: int) -> Any:
    """Our converter's graph of ConvNet(blocks), exported once per block count."""
    import torch

    sys.path.insert(0, str(REPO / "examples"))
    try:
        from convnet import ConvNet, example_inputs
    finally:
        sys.path.pop(0)
    from etviz_lsp.graph import convert

    program = torch.export.export(ConvNet(blocks=blocks).eval(), example_inputs())
    (graph,) = convert.from_programs([("program", program)], label="program").graphs
    return graph


def _node_count(blocks: int) -> int:
    """What Model Explorer must show: our converter's node count for ConvNet(blocks)."""
    return len(_convnet_graph(blocks).nodes)


def _line_of(path: Path, text: str) -> int:
    """1-based number of the line holding ``text`` (the example model may move)."""
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if text in line:
            return number
    raise AssertionError(f"{text!r} not in {path}")


def _ops_of_line(blocks: int, file_name: str, line: int) -> list[str]:
    """Op node ids whose recorded source is ``file_name:line``, in graph order."""
    from etviz_lsp.graph import model

    wanted = f"{file_name}:{line}"
    return [
        node["id"] for node in _convnet_graph(blocks).nodes
        if (model.node_attr(node, "source") or "").endswith(wanted)
    ]


def _wait_http(url: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.3)
    raise TimeoutError(f"{url} did not answer in {timeout} s")


def _stop_group(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=15)
    except ProcessLookupError:
        pass
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)


@pytest.fixture
def code_server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, object]]:
    """code-server with the .vsix installed; parametrize with False for workspace trust on
    (the folder then opens in restricted mode: no trust prompt)."""
    trust_everything = getattr(request, "param", True)
    node, entry = _tools()
    vsix = _vsix()
    home = tmp_path / "home"
    user_data = tmp_path / "user-data"
    extensions = tmp_path / "extensions"
    (user_data / "User").mkdir(parents=True)
    (user_data / "User" / "settings.json").write_text(json.dumps({
        "etviz.pythonPath": sys.executable,
        "workbench.startupEditor": "none",
        "workbench.tips.enabled": False,
        "extensions.ignoreRecommendations": True,
        "telemetry.telemetryLevel": "off",
        "update.mode": "none",
        "files.autoSave": "off",
        "chat.disableAIFeatures": True,
        "workbench.secondarySideBar.defaultVisibility": "hidden",
        "security.workspace.trust.startupPrompt": "never",
    }))
    env = dict(os.environ)
    env.update({
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_DATA_HOME": str(home / ".local" / "share"),
        "XDG_CACHE_HOME": str(home / ".cache"),
        "XDG_STATE_HOME": str(home / ".local" / "state"),
        "XDG_RUNTIME_DIR": str(home / "run"),
        # After the window reload step, code-server would keep the old extension host (and
        # its language server and worker) for 3 hours in case the tab reconnects.
        "VSCODE_RECONNECTION_GRACE_TIME": "3000",
    })
    (home / "run").mkdir(parents=True)
    base = [node, entry, "--user-data-dir", str(user_data), "--extensions-dir", str(extensions)]
    subprocess.run([*base, "--install-extension", str(vsix)], env=env, check=True,
                   capture_output=True, timeout=120)

    port = _free_port()
    log = (tmp_path / "code-server.log").open("wb")
    proc = subprocess.Popen(
        [*base, "--auth", "none", "--bind-addr", f"127.0.0.1:{port}",
         "--disable-telemetry", "--disable-update-check",
         *(["--disable-workspace-trust"] if trust_everything else []),
         "--config", str(tmp_path / "code-server.yaml")],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    try:
        _wait_http(f"http://127.0.0.1:{port}/healthz", 60)
        yield {"url": f"http://127.0.0.1:{port}", "env": env, "pid": proc.pid,
               "log": tmp_path / "code-server.log", "user_data": user_data}
    finally:
        descendants = _descendants(proc.pid)
        _stop_group(proc)
        _stop_detached(descendants, env)
        log.close()


def _descendants(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def _stop_detached(processes: list[psutil.Process], env: dict[str, str]) -> None:
    """Stop what escaped the process group (the detached Model Explorer server, workers)."""
    subprocess.run(
        [sys.executable, "-c",
         "import importlib.util, sys\n"
         "if importlib.util.find_spec('etviz_lsp.explorer'):\n"
         "    from etviz_lsp.explorer import stop_server; stop_server()\n"],
        env=env, timeout=60, check=False,
    )
    _gone, alive = psutil.wait_procs(processes, timeout=10)
    for process in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            process.kill()


def _keep_extension_logs(user_data: Path, name: str) -> str:
    """Keeps the "etviz" output channel (extension and server log) of each window as
    artifacts; returns their tails, so a failure in CI shows what the extension saw."""
    tails = []
    for n, log in enumerate(sorted(user_data.glob("logs/**/*etviz*.log"))):
        shutil.copyfile(log, ARTIFACTS / f"{name}-etviz-{n}.log")
        tails.append(f"--- etviz log {n} ---\n" + log.read_text(errors="replace")[-2500:])
    return "\n".join(tails)


def _drive(code_server: dict[str, object], config: dict[str, object], name: str) -> dict[str, dict]:
    """Runs the Chromium driver; returns its steps by name, or fails with what it saw."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for old in ARTIFACTS.glob("failed-*.png"):
        old.unlink()
    node = _tools()[0]
    started = time.monotonic()
    run = subprocess.run(
        [node, str(DRIVER), json.dumps(config)], cwd=EXTENSION,
        capture_output=True, text=True, timeout=900,
    )
    steps = [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]
    report = {"seconds": round(time.monotonic() - started, 1), "steps": steps}
    (ARTIFACTS / f"{name}.json").write_text(json.dumps(report, indent=2))
    etviz_logs = _keep_extension_logs(Path(str(code_server["user_data"])), name)
    log_tail = Path(str(code_server["log"])).read_text(errors="replace")[-3000:]
    assert run.returncode == 0, (
        f"{json.dumps(steps, indent=2)}\n{run.stderr[-3000:]}\n{etviz_logs}\n{log_tail}"
    )
    return {step["step"]: step for step in steps}


def test_visualize_refresh_on_save_and_diagnostic(
    code_server: dict[str, object], tmp_path: Path
) -> None:
    workspace = tmp_path / "workspace"
    shutil.copytree(REPO / "examples", workspace, ignore=shutil.ignore_patterns("__pycache__"))
    (workspace / SCRIPT).write_text(EXPORT_SCRIPT)
    nodes_before, nodes_after = _node_count(2), _node_count(3)
    assert nodes_after > nodes_before
    model = workspace / "convnet.py"
    head_line = _line_of(model, "return self.head(x)")  # made the `linear` node
    block_line = _line_of(model, "return self.body(x) + x")  # conv, norm, relu, add per block
    block_ops = _ops_of_line(2, "convnet.py", block_line)
    assert len(block_ops) > 1, block_ops
    chromium = shutil.which("chromium")
    assert chromium, "chromium missing: run scripts/setup-code-server.sh"
    config = {
        "mode": "trusted",
        "url": code_server["url"], "folder": str(workspace), "script": SCRIPT,
        "artifacts": str(ARTIFACTS), "chromium": chromium,
        "expectNodes": nodes_before, "expectNodesAfter": nodes_after,
        "editLine": MODEL_LINE, "editText": "model = ConvNet(blocks=3).eval()",
        "breakLine": MODEL_LINE, "breakText": f'raise ValueError("{BROKEN_MESSAGE}")',
        "breakMessage": BROKEN_MESSAGE,
        "selectNode": "linear", "selectNodeFile": "convnet.py", "selectNodeLine": head_line,
        "codeFile": "convnet.py", "codeLine": block_line,
        "expectNodeId": block_ops[0], "expectNodeCount": len(block_ops),
        "lensNodeId": "linear",  # the lowest "Show in Graph (1 op)" lens: return self.head(x)
    }
    by_step = _drive(code_server, config, "vscode-e2e")
    assert f"{nodes_before} nodes" in by_step["visualize"]["explorer"]
    assert f"{nodes_before:,} nodes" in by_step["visualize"]["status"]
    assert "[Cancel button]" in by_step["visualize"]["toast"], "progress notification with Cancel"
    assert by_step["graph-to-code"]["activeTab"] == "convnet.py"
    assert by_step["graph-to-code"]["cursor"].startswith(f"Ln {head_line},")
    assert block_ops[0] in by_step["code-to-graph"]["info"]
    assert f"made {len(block_ops)} ops" in by_step["code-to-graph"]["statusbar"]
    assert "id linear" in by_step["lens-to-graph"]["info"]
    assert f"{nodes_after} nodes" in by_step["edit-and-save-refreshes"]["explorer"]
    assert BROKEN_MESSAGE in by_step["broken-script-diagnostic"]["problems"]
    for name in ("vscode-graph", "vscode-graph-to-code", "vscode-code-to-graph",
                 "vscode-graph-after-edit", "vscode-problems"):
        assert (ARTIFACTS / f"{name}.png").stat().st_size > 10_000


@pytest.mark.parametrize("code_server", [False], indirect=True)
def test_untrusted_workspace_runs_nothing_and_ignores_its_interpreter(
    code_server: dict[str, object], tmp_path: Path
) -> None:
    """Restricted mode: the workspace's own etviz.pythonPath (here a python that does not
    exist) is ignored, the server starts with the user's interpreter, and it refuses to run
    the script: the panel says why and no graph is written."""
    workspace = tmp_path / "workspace"
    shutil.copytree(REPO / "examples", workspace, ignore=shutil.ignore_patterns("__pycache__"))
    (workspace / SCRIPT).write_text(EXPORT_SCRIPT)
    (workspace / ".vscode").mkdir()
    (workspace / ".vscode" / "settings.json").write_text(
        json.dumps({"etviz.pythonPath": str(tmp_path / "no-such-python")})
    )
    config = {
        "mode": "untrusted",
        "url": code_server["url"], "folder": str(workspace), "script": SCRIPT,
        "artifacts": str(ARTIFACTS), "chromium": shutil.which("chromium"),
    }
    by_step = _drive(code_server, config, "vscode-e2e-untrusted")

    banner = by_step["visualize-refused"]["banner"]
    assert "not trusted" in banner, banner
    assert not list(workspace.glob(".etviz/*.json")), "the script must not have run"


def test_a_pte_opens_from_the_explorer_context_menu(
    code_server: dict[str, object], tmp_path: Path, artifacts: Any  # noqa: F811
) -> None:
    """Issue 16: a workspace holding only a .pte (and its ETRecord): the extension activates,
    the explorer's context menu on the file runs "Visualize ExportedProgram", and Model
    Explorer shows the program in the panel: `forward` (5 nodes: input, 2 delegate calls,
    the CPU cumsum, output) and the two delegates' XNNPACK graphs (9 nodes each)."""
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    shutil.copyfile(artifacts.pte, workspace / "model.pte")  # the session's real artifacts
    shutil.copyfile(artifacts.etrecord, workspace / "model.etrecord")
    config = {
        "mode": "pte-explorer",
        "url": code_server["url"], "folder": str(workspace), "pte": "model.pte",
        "artifacts": str(ARTIFACTS), "chromium": shutil.which("chromium"), "expectTotal": 23,
    }
    by_step = _drive(code_server, config, "vscode-e2e-pte")
    step = by_step["pte-from-explorer-menu"]
    assert "23 nodes" in step["status"], step
    assert "model.pte" in step["explorer"] and "forward" in step["explorer"], step
    assert (ARTIFACTS / "vscode-pte.png").stat().st_size > 10_000
