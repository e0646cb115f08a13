"""Never killed for being long, never empty-handed (issue 24, item 1).

The real CLI in a subprocess (a real lean worker, real ``torch.export``): a run that fails,
times out or is stopped with Ctrl+C after exporting keeps its finished stages beside the
output, marked partial with the failure, says where in one line and exits 1; a good graph
at the output stays. The command line has no time limit unless given one.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from etviz_lsp import cli
from etviz_lsp.graph.core import model
from etviz_lsp.graph.core.writer import write_json_atomic
from etviz_lsp.graph_files import partial_path
from etviz_lsp.worker import ScriptError, ScriptFailed, WarmWorker
from etviz_lsp.worker.partial_stages import mark
from etviz_lsp.worker.supervisor import run_deadline

SCRIPTS = Path(__file__).parent / "scripts"
FAILS = SCRIPTS / "exports_then_fails.py"  # exports at line 5, raises at line 6
HANGS = SCRIPTS / "exports_then_hangs.py"  # exports at line 11, hangs at line 15


def _command(*args: str) -> list[str]:
    return [sys.executable, "-m", "etviz_lsp", *args]


def _env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}


def cli_run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(_command(*args), cwd=tmp_path, env=_env(tmp_path),
                          capture_output=True, text=True, timeout=300)


def error_line(stderr: str) -> str:
    """The one error line (progress lines, one per stage off a terminal, aside)."""
    errors = [line for line in stderr.splitlines() if line.startswith("etviz-lsp: ")]
    assert len(errors) == 1, stderr
    assert stderr.strip().splitlines()[-1] == errors[0], "the error is the last line"
    return errors[0]


def marked(path: Path, script: Path, failure: str) -> list[str]:
    """The graph ids of a partial file, after checking that the collection and each graph
    say partial, with ``failure`` (kind, where, what)."""
    collection = json.loads(path.read_text())
    assert collection["label"].startswith(f"{script.name} (partial: {failure}"), collection
    for graph in collection["graphs"]:
        info = graph["groupNodeAttributes"][""]
        assert info["partial"].startswith(failure), info
        assert int(info["operator calls"]) > 0  # a real converted stage, not a stub
    return [graph["id"] for graph in collection["graphs"]]


def test_a_failing_run_keeps_its_finished_stages_marked_partial(tmp_path: Path) -> None:
    out = tmp_path / "out.json"
    out.write_text("last good graph")
    done = cli_run(tmp_path, "--once", str(FAILS), "-o", str(out))
    assert done.returncode == 1
    line = error_line(done.stderr)
    assert "exports_then_fails.py:6: RuntimeError: failed after exporting; " in line
    assert line.endswith("its 1 finished stage is in out.partial.json (marked partial)")
    failure = "exception at exports_then_fails.py:6: RuntimeError: failed after exporting"
    assert marked(tmp_path / "out.partial.json", FAILS, failure) == [
        "program @ exports_then_fails.py:5 (exported)"
    ]
    assert out.read_text() == "last good graph"  # never replaced by a partial one


def test_a_timed_out_run_keeps_its_finished_stages_and_leaves_no_process(
    tmp_path: Path,
) -> None:
    # The limit counts from the run's start in the warm worker (torch already imported):
    # enough for one small export on a loaded machine, then the script hangs.
    done = cli_run(tmp_path, "--once", str(HANGS), "-o", str(tmp_path / "out.json"),
                   "--timeout", "10")
    assert done.returncode == 1
    line = error_line(done.stderr)
    assert "exports_then_hangs.py:15: timed out after 10 s; stopped the script" in line
    assert line.endswith("its 1 finished stage is in out.partial.json (marked partial)")
    partial = tmp_path / "out.partial.json"
    assert marked(partial, HANGS, "timeout at exports_then_hangs.py:15: timed out after 10 s") == [
        "program @ exports_then_hangs.py:11 (exported)"
    ]
    assert not (tmp_path / "out.json").exists()
    spawned = int((tmp_path / "spawned.pids").read_text())
    assert not _alive(spawned)
    # a later good run replaces the output and drops the earlier run's partial stages
    good = tmp_path / "good.py"
    good.write_text(FAILS.read_text().replace("raise RuntimeError", "print"))
    assert cli_run(tmp_path, "--once", str(good), "-o", str(tmp_path / "out.json")).returncode == 0
    assert json.loads((tmp_path / "out.json").read_text())["graphs"]
    assert not partial.exists()


def test_ctrl_c_stops_the_run_and_all_it_started_and_keeps_the_stages(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        _command("--once", str(HANGS), "-o", str(tmp_path / "out.json")),
        cwd=tmp_path, env=_env(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )
    try:
        partial, pids = tmp_path / "out.partial.json", tmp_path / "spawned.pids"
        deadline = time.monotonic() + 240
        while not (partial.exists() and pids.exists()) and time.monotonic() < deadline:
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.2)
        started = [*psutil.Process(proc.pid).children(recursive=True)]
        assert len(started) >= 3, started  # the worker, the run's child, the script's child
        assert int(pids.read_text()) in [p.pid for p in started]
        interrupted = time.monotonic()
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=60)
        took = time.monotonic() - interrupted
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 1
    assert took < 15, f"Ctrl+C took {took:.1f} s to stop the run"
    line = error_line(err)
    assert "exports_then_hangs.py:15: cancelled; stopped the script" in line
    assert line.endswith("its 1 finished stage is in out.partial.json (marked partial)")
    assert marked(partial, HANGS, "cancelled at exports_then_hangs.py:15") == [
        "program @ exports_then_hangs.py:11 (exported)"
    ]
    left = [p for p in started if _alive(p.pid)]
    assert left == [], [(p.pid, p.cmdline()) for p in left]


def test_the_command_line_has_no_time_limit_unless_given_one() -> None:
    assert cli.parse(["--once", "export.py"])[0].timeout is None
    assert cli.parse(["--once", "export.py", "--timeout", "5"])[0].timeout == 5.0
    assert run_deadline(100.0, None) == math.inf
    assert run_deadline(100.0, 5.0) == 105.0


@pytest.mark.parametrize("value", ["0", "-3"])
def test_a_timeout_that_is_not_positive_is_refused_in_one_line(
    value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["--once", str(FAILS), "--timeout", value]) == 1
    expected = f"etviz-lsp: error: --timeout: must be a positive number of seconds, got {value}"
    assert capsys.readouterr().err == expected + "\n"


def test_the_worker_runs_without_a_deadline_and_marks_only_its_own_stages(
    tmp_path: Path,
) -> None:
    """The no-deadline path through the caller and the supervisor (``timeout=None`` all
    the way), then what the caller marks: this run's stages, never an earlier run's."""
    script = tmp_path / "export.py"
    script.write_text(FAILS.read_text().replace("raise RuntimeError", "print"))
    out, partial = tmp_path / "out.json", tmp_path / "out.partial.json"
    with WarmWorker(log_dir=tmp_path / "logs", warm_up=False, preload=False) as worker:
        result = worker.run(script, out, timeout=None, partial_output=partial)
        assert [g.id for g in result.graphs] == ["program @ export.py:5 (exported)"]
        nodes = result.graphs[0].node_count

        with pytest.raises(ScriptFailed) as failed:
            worker.run(FAILS, out, timeout=None, partial_output=partial)
        kept = failed.value.partial
        assert kept is not None and kept.path == partial
        assert kept.graphs == (("program @ exports_then_fails.py:5 (exported)", nodes),)
        before = partial.read_bytes()

        # A run that fails before any stage: the file beside it is the earlier run's.
        with pytest.raises(ScriptFailed) as early:
            worker.run(SCRIPTS / "raises.py", out, timeout=None, partial_output=partial)
        assert early.value.partial is None
        assert partial.read_bytes() == before


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_marking_changes_only_the_label_and_each_graphs_info(tmp_path: Path) -> None:
    """The caller rewrites the partial file with nodes kept as raw JSON text: everything
    else (nodes, edges, styles, nested graphs, layer colours) must come back as it was."""
    conv: model.Node = {
        "id": "conv", "label": "aten.convolution", "namespace": "XnnpackBackend #0/conv (Conv2d)",
        "attrs": model.kv({"source": "export.py:9"}), "outputsMetadata": [],
        "incomingEdges": [{"sourceNodeId": "x", "sourceNodeOutputId": "0",
                           "targetNodeInputId": "0"}],
        "subgraphIds": ["m/inner"], "style": {"backgroundColor": "#abcdef"},
    }
    x: model.Node = {"id": "x", "label": "x", "namespace": "", "attrs": [],
                     "incomingEdges": [], "outputsMetadata": []}
    graphs = [
        model.Graph("m", [x, conv], {"": {"parameters": "10"}, "conv (Conv2d)": {"k": "v"}},
                    [model.GroupConfig("XnnpackBackend.*", background_color="#ffeeee")]),
        model.Graph("m/inner", [{**x, "id": "y"}]),
    ]
    path = partial_path(tmp_path / "m.json")
    write_json_atomic(path, model.GraphCollection("export.py", graphs).to_json())
    original = json.loads(path.read_text())
    error = ScriptError("exception", str(SCRIPTS / "x.py"), 3, message="ValueError: bad\nmore")
    kept = mark(path, error)
    failure = "exception at x.py:3: ValueError: bad"
    assert (kept.path, kept.failure, kept.graphs) == (path, failure, (("m", 2), ("m/inner", 1)))
    changed = json.loads(path.read_text())
    assert changed["label"] == f"export.py (partial: {failure})"
    for graph in original["graphs"]:
        graph["groupNodeAttributes"].setdefault("", {})["partial"] = failure
    assert changed["graphs"] == original["graphs"]
