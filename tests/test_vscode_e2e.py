"""The VS Code extension end to end: the built .vsix in a real code-server, driven in a real
headless Chromium, running the real language server, worker and Model Explorer.

The user story checked: open an export script, run "Visualize ExportedProgram" from the
command palette, see Model Explorer with our graph in the panel (graph and node count read
inside the iframe); add a layer, save, see the graph rebuilt with the new node count without
running the command again; break the script, save, see the diagnostic in the Problems panel
while the last good graph stays. Navigation (issue 11), both ways: an op node selected in
Model Explorer opens the line of ``convnet.py`` that made it; "Show in Graph" on a line of
``convnet.py`` (and its "Show in Graph" code lens) selects that line's first op in Model
Explorer. Run configurations (issue 14): a script that takes ``--blocks`` from the command
line has two configurations in ``.vscode/launch.json``; "Visualize" offers both, the one
picked gives the graph its arguments make, and saving the model file the script imports
(``convnet.py``) rebuilds it with the same arguments. Compare Stages (issue 18): two frames,
a selection in one selects its counterpart in the other. Profile on This Machine (issue 17):
the lowering example's ExecuTorch program runs in the worker, and the panel's Model Explorer
page loads the latency node data through the guarded cache; it opens on the lowered stage
(issue 28), where the delegated conv and the CPU cumsum, selected through Model Explorer's
search, show their latency in the node info.
Screenshots and step timings land in build/artifacts/.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import re
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
# Issue 19: the big graph is made first, the small one last; the panel must open on the last.
STAGES_SCRIPT = "two_graphs.py"
STAGES_SOURCE = '''"""A big graph first, a small one last (written by the VS Code e2e test)."""
import torch

from convnet import ConvNet, example_inputs

big = torch.export.export(ConvNet(blocks=3).eval(), example_inputs())
small = torch.export.export(ConvNet(blocks=1).eval(), example_inputs())
'''
BROKEN_MESSAGE = "broken on purpose by the e2e test"
ARGS_SCRIPT = "export_args.py"
ARGS_EXPORT_SCRIPT = '''"""Export the example ConvNet with the block count from the command line."""
import argparse

import torch

from convnet import ConvNet, example_inputs

parser = argparse.ArgumentParser()
parser.add_argument("--blocks", type=int, default=1)
model = ConvNet(blocks=parser.parse_args().blocks).eval()
program = torch.export.export(model, example_inputs())
'''
# JSON with comments, as VS Code writes it: VS Code itself parses it for the extension.
LAUNCH_JSON = '''{
  // written by the VS Code end-to-end test
  "version": "0.2.0",
  "configurations": [
    {
      "name": "ConvNet, 3 blocks",
      "type": "debugpy",
      "request": "launch",
      "program": "${workspaceFolder}/export_args.py",
      "args": ["--blocks", "3"],
    },
    {
      "name": "ConvNet, 4 blocks",
      "type": "debugpy",
      "request": "launch",
      "program": "${workspaceFolder}/export_args.py",
      "args": "--blocks ${env:ETVIZ_E2E_BLOCKS}",
      "cwd": "${fileDirname}",
    },
    { "name": "not Python", "type": "node", "request": "launch", "program": "x.js" },
  ],
}
'''
PICKED_BLOCKS = 4
# Saved into the imported model by the driver: one more op (relu) per block.
BLOCK_RETURN = "return self.body(x) + x"
BLOCK_RETURN_EDITED = "return torch.relu(self.body(x) + x)"


# A real user's User settings: with a dozen ordinary keys like these, code-server's remote
# extension host did not see a User-level etviz.pythonPath in any of five runs (issue 20).
USER_SETTINGS: dict[str, object] = {
    "workbench.startupEditor": "none",
    "workbench.tips.enabled": False,
    "extensions.ignoreRecommendations": True,
    "extensions.autoUpdate": False,
    "extensions.autoCheckUpdates": False,
    "telemetry.telemetryLevel": "off",
    "update.mode": "none",
    "files.autoSave": "off",
    "chat.disableAIFeatures": True,
    "git.enabled": False,
    "workbench.secondarySideBar.defaultVisibility": "hidden",
    "security.workspace.trust.startupPrompt": "never",
}


def _path_with_bare_python3(bin_dir: Path, path: str) -> str:
    """PATH whose ``python3`` is the base interpreter, isolated (``-I``: no cwd, user site
    or PYTHONPATH), so it lacks etviz_lsp and torch; the venv running the tests is left out."""
    bin_dir.mkdir()
    python3 = bin_dir / "python3"
    base = Path(sys.base_prefix) / "bin" / "python3"
    python3.write_text(f'#!/bin/sh\nexec "{base}" -I "$@"\n')
    python3.chmod(0o755)
    probe = subprocess.run(
        [str(python3), "-c", "import importlib.util, sys; "
         "sys.exit(importlib.util.find_spec('etviz_lsp') is not None)"],
        check=False, timeout=30,
    )
    assert probe.returncode == 0, f"{base} has etviz_lsp: the fallback case needs one without"
    venv_bin = str(Path(sys.executable).parent)
    kept = [part for part in path.split(os.pathsep) if part and part != venv_bin]
    return os.pathsep.join([str(bin_dir), *kept])


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
    subprocess.run(["make", "-s", "vsix"], cwd=REPO, check=True, timeout=900)
    version = json.loads((EXTENSION / "package.json").read_text())["version"]
    vsix = EXTENSION / f"etviz-lsp-linux-x64-{version}.vsix"
    assert vsix.is_file()
    return vsix


@functools.cache
def _user_python() -> str:
    """The interpreter of an ExecuTorch user: torch, ExecuTorch and Model Explorer at the
    constraints' pins, and neither etviz_lsp nor pygls (nor msgspec): the extension brings
    its own server (issue 27). Made once per constraints file, under build/tools/ (~2 GB,
    about a minute from the package index)."""
    constraints = REPO / "requirements" / "constraints.txt"
    digest = hashlib.sha256(constraints.read_bytes()).hexdigest()[:10]
    venv = REPO / "build" / "tools" / f"user-python-{digest}"
    python = venv / "bin" / "python"
    if not (venv / ".complete").exists():
        shutil.rmtree(venv, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check",
             "-c", str(constraints), "torch", "executorch", "ai-edge-model-explorer"],
            check=True, timeout=1800, env={k: v for k, v in os.environ.items()
                                           if k != "PYTHONPATH"},
        )
        (venv / ".complete").touch()
    probe = subprocess.run(
        [str(python), "-I", "-c", "import importlib.util as u; print([m for m in "
         "('etviz_lsp', 'pygls', 'msgspec', 'torch', 'executorch', 'model_explorer') "
         "if u.find_spec(m)])"],
        check=True, capture_output=True, text=True, timeout=60,
    )
    assert probe.stdout.split() == ["['torch',", "'executorch',", "'model_explorer']"], probe
    return str(python)


@functools.cache
def _convnet_graph(blocks: int, edited: tuple[str, str] | None = None) -> Any:
    """Our converter's graph of ConvNet(blocks), exported once per block count; with
    ``edited`` (old, new), of the example model with that line edited."""
    import importlib.util
    import tempfile

    import torch

    from etviz_lsp.graph import convert

    source = (REPO / "examples" / "convnet.py").read_text()
    if edited is not None:
        assert edited[0] in source
        source = source.replace(*edited)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "convnet.py"
        path.write_text(source)
        spec = importlib.util.spec_from_file_location(f"convnet_{blocks}_{hash(edited)}", path)
        assert spec is not None and spec.loader is not None
        convnet = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(convnet)
    model = convnet.ConvNet(blocks=blocks).eval()
    program = torch.export.export(model, convnet.example_inputs())
    (graph,) = convert.from_programs([("program", program)], label="program").graphs
    return graph


def _node_count(blocks: int, edited: tuple[str, str] | None = None) -> int:
    """What Model Explorer must show: our converter's node count for ConvNet(blocks)."""
    return len(_convnet_graph(blocks, edited).nodes)


def _line_of(path: Path, text: str) -> int:
    """1-based number of the line holding ``text`` (the example model may move)."""
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if text in line:
            return number
    raise AssertionError(f"{text!r} not in {path}")


def _ops_of_line(blocks: int, file_name: str, line: int) -> list[str]:
    """Op node ids whose recorded source is ``file_name:line``, in graph order."""
    from etviz_lsp.graph.core import model

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
    (the folder then opens in restricted mode: no trust prompt), with "user-only" for
    etviz.pythonPath in the User settings only and a python3 on PATH without torch. The
    interpreter set is an ExecuTorch user's (``_user_python``: no etviz_lsp, no pygls)."""
    param = getattr(request, "param", True)
    trust_everything = param is not False
    python_in = "user" if param == "user-only" else "machine"
    node, entry = _tools()
    vsix = _vsix()
    user_python = _user_python()
    home = tmp_path / "home"
    user_data = tmp_path / "user-data"
    extensions = tmp_path / "extensions"
    (user_data / "User").mkdir(parents=True)
    (user_data / "User" / "settings.json").write_text(json.dumps({
        **USER_SETTINGS,
        "security.workspace.trust.enabled": not trust_everything,
        **({"etviz.pythonPath": user_python} if python_in == "user" else {}),
    }))
    if python_in == "machine":
        # Where a remote window reads machine-overridable settings (issue 20).
        (user_data / "Machine").mkdir()
        (user_data / "Machine" / "settings.json").write_text(
            json.dumps({"etviz.pythonPath": user_python})
        )
    # conftest puts this checkout on PYTHONPATH: the user's interpreter must not see it.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update({
        "ETVIZ_E2E_BLOCKS": str(PICKED_BLOCKS),  # a launch.json ${env:...} variable
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
    if python_in == "user":
        env["PATH"] = _path_with_bare_python3(tmp_path / "bin", env["PATH"])
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
        env=env | {"PYTHONPATH": str(REPO)}, timeout=60, check=False,
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
    (workspace / STAGES_SCRIPT).write_text(STAGES_SOURCE)
    (workspace / ARGS_SCRIPT).write_text(ARGS_EXPORT_SCRIPT)
    (workspace / ".vscode").mkdir()
    (workspace / ".vscode" / "launch.json").write_text(LAUNCH_JSON)
    nodes_before, nodes_after = _node_count(2), _node_count(3)
    assert nodes_after > nodes_before
    picked_nodes = _node_count(PICKED_BLOCKS)
    edited_nodes = _node_count(PICKED_BLOCKS, (BLOCK_RETURN, BLOCK_RETURN_EDITED))
    assert len({_node_count(1), picked_nodes, edited_nodes}) == 3
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
        "stagesScript": STAGES_SCRIPT, "lastGraphId": f"small @ {STAGES_SCRIPT}:7 (exported)",
        "launch": {
            "script": ARGS_SCRIPT, "pick": f"ConvNet, {PICKED_BLOCKS} blocks",
            "expectNodes": picked_nodes, "modelFile": "convnet.py",
            "modelLine": _line_of(model, BLOCK_RETURN), "modelText": BLOCK_RETURN_EDITED,
            "expectNodesAfter": edited_nodes,
        },
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
    last_stage = by_step["last-stage-shown-first"]["explorer"]
    assert f"{_node_count(1)} nodes" in last_stage and "big @" not in last_stage, last_stage
    picked = by_step["launch-config-picked"]
    assert "launch configuration" in picked["title"], picked
    offered = " | ".join(picked["rows"])
    assert "ConvNet, 3 blocks" in offered and "ConvNet, 4 blocks" in offered, offered
    assert "python export_args.py --blocks 4" in offered, offered  # ${env:...} resolved
    assert "not Python" not in offered
    assert f"{picked_nodes} nodes" in picked["explorer"]
    assert f"{edited_nodes} nodes" in by_step["imported-model-refreshes"]["explorer"]
    for name in ("vscode-graph", "vscode-graph-to-code", "vscode-code-to-graph",
                 "vscode-graph-after-edit", "vscode-problems", "vscode-last-stage",
                 "vscode-launch-pick", "vscode-launch-graph", "vscode-imported-model"):
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


@pytest.mark.parametrize("code_server", ["user-only"], indirect=True)
def test_remote_window_user_only_interpreter_is_not_silently_replaced(
    code_server: dict[str, object], tmp_path: Path
) -> None:
    """Issue 20: code-server's extension host is remote (like Remote-SSH, WSL, Codespaces):
    etviz.pythonPath set only in the User settings may not reach it (seen both ways here).
    It must never turn into a silent python3 (here one without torch: the bundled server
    starts there, and cannot run a script): either the graph shows (the User value was
    used), or the message names what python3 lacks, the Remote settings and the Machine
    settings file, and its button opens that file. The log lists the scopes."""
    workspace = tmp_path / "workspace"
    shutil.copytree(REPO / "examples", workspace, ignore=shutil.ignore_patterns("__pycache__"))
    (workspace / SCRIPT).write_text(EXPORT_SCRIPT)
    config = {
        "mode": "remote-fallback",
        "url": code_server["url"], "folder": str(workspace), "script": SCRIPT,
        "artifacts": str(ARTIFACTS), "chromium": shutil.which("chromium"),
        "expectNodes": _node_count(2),
    }
    step = _drive(code_server, config, "vscode-e2e-remote-fallback")["remote-fallback-message"]

    logs = "".join(
        log.read_text(errors="replace")
        for log in Path(str(code_server["user_data"])).glob("logs/**/*etviz*.log")
    )
    assert "etviz.pythonPath in this remote window" in logs, logs[-2000:]
    assert "workspace unset, folder unset" in logs, logs[-2000:]
    if step["outcome"] == "used":
        assert f"interpreter: {_user_python()} (from etviz.pythonPath)" in logs, logs[-2000:]
        return
    machine_file = Path(str(code_server["user_data"])) / "Machine" / "settings.json"
    message = step["message"]
    assert ": torch is not installed (runs export scripts" in message, message
    assert "remote window" in message and "Remote settings" in message, message
    assert str(machine_file) in message, message
    assert step["opened"].endswith(str(Path("Machine") / "settings.json")), step
    assert "global unset" in logs, "python3 only when no value reached the window"


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


def test_compare_stages_selects_the_counterpart_in_the_other_frame(
    code_server: dict[str, object], tmp_path: Path
) -> None:
    """Issue 18: "etviz: Compare Stages" on the quantize + XNNPACK lowering example opens two
    Model Explorer frames (the first stage, and the lowered one picked in the second quick
    pick); the conv selected in the exported graph selects its counterpart inside the
    XNNPACK partition of the lowered graph, read from that frame's node info."""
    workspace = tmp_path / "workspace"
    shutil.copytree(REPO / "examples", workspace, ignore=shutil.ignore_patterns("__pycache__"))
    chromium = shutil.which("chromium")
    assert chromium, "chromium missing: run scripts/setup-code-server.sh"
    config = {
        "mode": "compare",
        "url": code_server["url"], "folder": str(workspace), "script": "quantize_and_lower.py",
        "artifacts": str(ARTIFACTS), "chromium": chromium,
        "rightStage": "lowered",
        "selectNode": "conv2d", "expectNodeId": "lowered_module_0/aten_convolution_default",
        "codeLine": _line_of(workspace / "quantize_and_lower.py", "torch.cumsum(x, dim=1)"),
        "codeNodeIds": ["cumsum", "aten_cumsum_default"],
    }
    by_step = _drive(code_server, config, "vscode-e2e-compare")

    opened = by_step["compare-opens-two-frames"]
    assert opened["leftRows"][0].startswith("exported:"), opened["leftRows"]
    assert any(row.startswith("lowered:") for row in opened["rightRows"]), opened["rightRows"]
    assert len(opened["frames"]) == 2
    synced = by_step["compare-synced-selection"]
    assert "id lowered_module_0/aten_convolution_default" in synced["info"], synced
    # Inside the XNNPACK partition: the node's namespace starts with its partition layer.
    assert "XnnpackBackend" in synced["info"], synced
    assert "is lowered_module_0/aten_convolution_default in lowered" in synced["statusbar"]
    # Code to graph: the cumsum line selects cumsum on the left, the CPU op on the right.
    left, right = by_step["compare-code-to-graph"]["info"]
    assert "id cumsum" in left and "id aten_cumsum_default" in right
    # Issue 17: "Profile on This Machine" on the same script: the panel's page loads the
    # latency node data (the average last: Model Explorer colours by the last one loaded),
    # keeps the run's numeric overlay, and fetched them from the guarded cache.
    profiled = by_step["profile-on-this-machine"]
    kinds = [Path(p).name.rsplit(".", 2)[-2] for p in profiled["nodeData"]]
    assert kinds[-1] == "latency-avg", profiled
    assert sorted(kinds) == sorted(
        [f"latency-{m}" for m in ("avg", "max", "min", "p50")]
        + ["numeric-max-abs-error", "numeric-sqnr", "memory-live", "memory-out"]
    ), profiled
    assert any(f["status"] == 200 and "latency-avg" in f["url"] for f in profiled["fetched"])
    # Issue 28: the page opens on the lowered stage (not the program stage the profile
    # added), and the latency it loaded is that graph's: a delegated conv inside the XNNPACK
    # partition and the CPU cumsum each have a time, in the file and in their node info.
    lowered = profiled["shownGraph"]
    assert lowered.endswith("(lowered)") and lowered in profiled["averageGraphs"], profiled
    assert lowered in profiled["explorer"], profiled["explorer"]
    conv_id = _node_id(profiled["convInfo"])
    assert re.fullmatch(r"lowered_module_\d+/aten_convolution_default", conv_id), conv_id
    assert "XnnpackBackend" in profiled["convInfo"], profiled["convInfo"]
    timed = profiled["loweredAverage"]
    assert timed[conv_id]["value"] >= 0 and timed["aten_cumsum_default"]["value"] > 0, timed
    assert _latency_avg(profiled["convInfo"]) >= 0
    assert _latency_avg(profiled["cumsumInfo"]) > 0  # the CPU kernels' nanosecond clock
    # ... and the panel's node data for the selected node is the lowered graph's file value
    for info, node_id in ((profiled["convInfo"], conv_id),
                          (profiled["cumsumInfo"], "aten_cumsum_default")):
        assert _node_data_shown(info, "latency-avg") == pytest.approx(
            timed[node_id]["value"], rel=1e-2, abs=1e-6), info
    assert (ARTIFACTS / "vscode-profile-lowered.png").stat().st_size > 10_000


def _node_id(info: str) -> str:
    """The id a Model Explorer node info panel shows (``... id <node id> ...``)."""
    found = re.search(r"\bid (\S+)", info)
    assert found, info
    return found.group(1)


def _node_data_shown(info: str, kind: str) -> float:
    """The value a node info panel's "Node data providers" section shows for ``kind``."""
    found = re.search(rf"\.{kind}\.json ([-+0-9.eE]+)", info)
    assert found, info
    return float(found.group(1))


def _latency_avg(info: str) -> float:
    """The ``latency avg (ms)`` attribute a node info panel shows."""
    found = re.search(r"latency avg \(ms\) ([-+0-9.eE]+)", info)
    assert found, info
    return float(found.group(1))
