"""Profile on this machine (issue 17) from the command line and in the worker: a real
quantize + XNNPACK lowering script, its program run by ExecuTorch's runtime in the worker's
child; the kept inputs are never unpickled; a profile past its time is killed with all it
started; a script with no ExecuTorch program gets one line."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from etviz_lsp.errors import EtvizError
from etviz_lsp.graph_files import kept_folder
from etviz_lsp.worker import ScriptFailed, WarmWorker
from etviz_lsp.worker.profile_run import INPUTS, load_inputs
from tests.test_cli_script import cli, processes_in

pytestmark = [pytest.mark.slow]

SCRIPTS = Path(__file__).parent / "scripts"


@pytest.fixture(scope="module")
def profiled(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Path, subprocess.CompletedProcess[str]]:
    folder = tmp_path_factory.mktemp("profiled")
    shutil.copy(SCRIPTS / "quantize_lower.py", folder)
    done = cli(folder, "--once", "quantize_lower.py", "--profile", "--profile-iterations", "9")
    return folder / ".etviz" / "quantize_lower.py.json", done


def test_cli_profile_writes_the_program_stage_and_latency_files(profiled) -> None:
    graph_json, done = profiled
    assert done.returncode == 0, done.stderr
    summary = [line for line in done.stdout.splitlines() if "profiled:" in line]
    assert len(summary) == 1, done.stdout
    assert "9 runs on this machine" in summary[0] and "0 not attributed" in summary[0]
    assert "slowest op " in summary[0]
    assert "the run wrote" not in done.stdout  # the program etviz kept is not the user's
    graphs = {g["id"]: g for g in json.loads(graph_json.read_text())["graphs"]}
    stage = "et_program @ quantize_lower.py:31 (program)"
    assert {stage, f"{stage}/XnnpackBackend #0"} <= set(graphs)
    avg = json.loads(graph_json.with_name("quantize_lower.py.latency-avg.json").read_text())
    assert set(avg) <= set(graphs)
    # every CPU kernel and delegate call of the program has a positive average
    assert sorted(avg[stage]["results"]) == sorted(
        n["id"] for n in graphs[stage]["nodes"] if n["id"].startswith("instruction_")
    )
    assert all(r["value"] > 0 for r in avg[stage]["results"].values())
    # ... and on the lowered stage users read: the delegated conv and linear by debug
    # handle, within their delegate call's time (issue 28)
    [lowered] = [g for g in graphs if g.endswith("(lowered)")]
    timed = avg[lowered]["results"]
    ops = {n["label"]: n["id"] for n in graphs[lowered]["nodes"] if n["id"] in timed}
    assert {"convolution", "linear"} <= set(ops) or {"convolution", "addmm"} <= set(ops), ops
    facts = [a for a in graphs[lowered]["groupNodeAttributes"].values()
             if "delegate call avg (ms)" in a]
    assert facts and all(
        float(f["on its ops avg (ms)"]) <= float(f["delegate call avg (ms)"]) for f in facts
    )


def test_kept_inputs_are_never_unpickled(tmp_path: Path) -> None:
    marker = tmp_path / "unpickled"
    payload = io.BytesIO()
    # An object array: np.load would unpickle it (running this os.system) if allowed to.
    np.savez(payload, np.array([_Boom(str(marker))], dtype=object))  # saved as arr_0
    path = tmp_path / INPUTS
    path.write_bytes(payload.getvalue())
    with pytest.raises(EtvizError) as refused:
        load_inputs(path)
    assert not marker.exists()
    assert str(refused.value).startswith(f"{path}: cannot read the saved inputs: ")
    assert "\n" not in str(refused.value)


class _Boom:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        import os

        return (os.system, (f"touch {self.marker}",))


def test_a_profile_past_its_time_is_killed_with_all_it_started(profiled) -> None:
    graph_json, done = profiled
    assert done.returncode == 0, done.stderr
    assert (kept_folder(graph_json) / "program.pte").is_file()
    logs = graph_json.parent.parent / "logs"
    with WarmWorker(warm_up=False, preload=False, log_dir=logs) as worker:
        # The child is still importing the runtime at 0.2 s: stopped there.
        with pytest.raises(ScriptFailed) as failed:
            worker.profile_kept(graph_json, iterations=5, timeout=0.2)
        assert failed.value.error.kind == "timeout"
        assert "timed out after 0.2 s" in failed.value.error.message
        pid = worker.pid
        assert pid is not None
        assert processes_in(graph_json.parent) == []
        # the worker is still good for the next profile
        again = worker.profile_kept(graph_json, iterations=3, timeout=120)
        assert again.profile is not None and again.profile["runs"] == 3


def test_nothing_to_profile_is_one_line(tmp_path: Path) -> None:
    shutil.copy(SCRIPTS / "to_edge.py", tmp_path)
    done = cli(tmp_path, "--once", "to_edge.py", "--profile")
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("etviz-lsp: error: profile: ")
    assert last.endswith("the last run made no ExecuTorch program (call .to_executorch() in "
                         "the script)")
    assert (tmp_path / ".etviz" / "to_edge.py.json").is_file()  # the graphs are still written
