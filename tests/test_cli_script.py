"""``etviz-lsp --once script.py``: the real CLI in a subprocess, a real worker behind it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import psutil

SCRIPTS = Path(__file__).parent / "scripts"


def cli(
    tmp_path: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache"), **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "etviz_lsp", *args],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )


def processes_in(folder: Path) -> list[psutil.Process]:
    """Processes whose working folder lies in ``folder`` (the worker's and the script's)."""
    found = []
    for process in psutil.process_iter():
        try:
            if process.cwd().startswith(str(folder)):
                found.append(process)
        except (psutil.Error, OSError):
            continue
    return found


def test_once_runs_a_script_and_writes_its_graphs(tmp_path: Path):
    # The CLI's worker is lean (no ExecuTorch imported up front): to_edge, imported by the
    # script itself, must still be captured.
    out = tmp_path / "out.json"
    done = cli(tmp_path, "--once", str(SCRIPTS / "to_edge.py"), "-o", str(out))
    assert done.returncode == 0, done.stderr
    expected = ["exported @ to_edge.py:5 (exported)", "edge @ to_edge.py:6 (edge)"]
    graphs = json.loads(out.read_text())["graphs"]
    assert [graph["id"] for graph in graphs] == expected
    # the summary counts what the JSON holds, per graph and in total
    ops = [sum(_kind(node) == "op" for node in g["nodes"]) for g in graphs]
    layers = [len([ns for ns in g["groupNodeAttributes"] if ns]) for g in graphs]
    assert min(ops) > 0 and min(layers) > 0
    assert f"2 graph(s), {sum(ops)} operator calls, {sum(layers)} module layers:" in done.stdout
    for graph_id, n_ops, n_layers in zip(expected, ops, layers, strict=True):
        assert f"{graph_id}: {n_ops} operator calls, {n_layers} module layers" in done.stdout
    assert processes_in(tmp_path) == []


def test_once_failure_is_one_line_and_keeps_the_output(tmp_path: Path):
    out = tmp_path / "out.json"
    out.write_text("last good graph")
    done = cli(tmp_path, "--once", str(SCRIPTS / "raises.py"), "-o", str(out))
    assert done.returncode == 1
    # stderr is not a terminal: one progress line per stage, then the error, one line
    lines = [line for line in done.stderr.strip().splitlines()
             if not line.startswith("etviz: raises.py: ")]
    assert len(lines) == 1, done.stderr
    assert done.stderr.strip().splitlines()[-1] == lines[0]
    assert lines[0].startswith("etviz-lsp: error: ")
    assert lines[0].endswith("raises.py:12: RuntimeError: a and b must have same reduction "
                             "dim, but got [1, 2] X [3, 3].")
    assert out.read_text() == "last good graph"


def test_once_timeout_kills_the_script_and_everything_it_started(tmp_path: Path):
    out = tmp_path / "out.json"
    # The CLI's run child imports torch itself, as `python script.py` does (a few seconds on
    # a loaded machine): the script must reach its loop before the time is up.
    done = cli(tmp_path, "--once", str(SCRIPTS / "hangs.py"), "-o", str(out), "--timeout", "15")
    assert done.returncode == 1
    assert "hangs.py:7: timed out after 15 s" in done.stderr
    assert not out.exists()
    assert processes_in(tmp_path) == []


def _kind(node: dict) -> str | None:
    return next((a["value"] for a in node.get("attrs", []) if a["key"] == "kind"), None)
