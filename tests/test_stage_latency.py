"""ETDump latency on the stages users read (issue 28): ``--once m.etrecord --etdump m.etdp``.

A real quantized XNNPACK program (``pte_artifacts.quantized_cumsum``: delegate -> CPU cumsum
-> delegate) is lowered and run here with ETDump on; the ETRecord's lowered stage gets the
time of each delegate's kernels on the edge ops they ran, the CPU op its kernel's, compared
with the ETDump's own events (read here, not through the overlay) and with the ``.pte``
view of the same run.
"""

from __future__ import annotations

import json
import shutil
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from etviz_lsp import cli
from etviz_lsp.errors import EtvizError
from etviz_lsp.graph.readers import etdump
from etviz_lsp.once import run_once
from tests import pte_artifacts

RUNS = 5


class StageRun:
    def __init__(self, folder: Path) -> None:
        made = pte_artifacts.quantized_cumsum(folder)
        self.folder, self.pte, self.etrecord = folder, made.pte, made.etrecord
        self.etdump, _ = pte_artifacts.profile_run(self.pte, RUNS)
        self.out = folder / "stages.json"
        assert cli.main(["--once", str(self.etrecord), "--etdump", str(self.etdump),
                         "-o", str(self.out)]) == 0  # fmt: skip
        self.graphs = {g["id"]: g for g in json.loads(self.out.read_text())["graphs"]}
        self.avg = json.loads((folder / "stages.latency-avg.json").read_text())
        pte_out = folder / "pte.json"
        assert cli.main(["--once", str(self.pte), "--etdump", str(self.etdump),
                         "-o", str(pte_out)]) == 0  # fmt: skip
        self.pte_avg = json.loads((folder / "pte.latency-avg.json").read_text())
        self.pte_graphs = {g["id"]: g for g in json.loads(pte_out.read_text())["graphs"]}


@pytest.fixture(scope="module")
def stage_run(tmp_path_factory: pytest.TempPathFactory) -> StageRun:
    return StageRun(tmp_path_factory.mktemp("stage_latency"))


def attrs(node: dict[str, Any]) -> dict[str, str]:
    return {item["key"]: item["value"] for item in node["attrs"]}


def call_events(path: Path) -> dict[int, float]:
    """Each delegate call's average time (ms), straight from the ETDump's events."""
    found: dict[int, list[float]] = defaultdict(list)
    for run in etdump.read_etdump(path).executions():
        for event in run.events:
            if event.name == "DELEGATE_CALL":
                found[event.instruction].append(event.ms)
    return {i: sum(v) / len(v) for i, v in found.items()}


def test_delegated_ops_of_the_lowered_stage_sum_within_their_call(stage_run: StageRun) -> None:
    lowered = stage_run.graphs["forward (lowered)"]
    results = stage_run.avg["forward (lowered)"]["results"]
    calls = call_events(stage_run.etdump)
    assert sorted(calls) == [0, 2]  # two XNNPACK delegates, the cumsum between them
    per_call: dict[int, float] = defaultdict(float)
    timed: dict[int, list[str]] = defaultdict(list)
    for node in lowered["nodes"]:
        instruction = attrs(node).get("instruction", "")
        if node["id"] in results and instruction.isdigit() and int(instruction) in calls:
            per_call[int(instruction)] += results[node["id"]]["value"]
            timed[int(instruction)].append(node["label"])
            assert "latency avg (ms)" in attrs(node)
    for instruction, call in calls.items():
        assert "convolution" in timed[instruction]  # each delegate's conv has its kernel
        assert 0 <= per_call[instruction] <= call + 1e-6
    # The same kernels as the .pte view puts on each delegate's XNN nodes: nothing lost
    # or counted twice on the way to the edge ops.
    for sub_id, data in stage_run.pte_avg.items():
        if sub_id.startswith("forward/Xnnpack"):
            number = int(sub_id.rsplit("#", 1)[1])
            instruction = sorted(calls)[number]
            on_xnn_with_handles = sum(
                value["value"] for node_id, value in data["results"].items()
                if attrs(_node(stage_run.pte_graphs[sub_id], node_id)).get("edge ops")
            )
            assert per_call[instruction] == pytest.approx(on_xnn_with_handles, abs=1e-5)


def _node(graph: dict[str, Any], node_id: str) -> dict[str, Any]:
    return next(n for n in graph["nodes"] if n["id"] == node_id)


def test_cpu_op_and_layers_sum(stage_run: StageRun) -> None:
    lowered = stage_run.graphs["forward (lowered)"]
    results = stage_run.avg["forward (lowered)"]["results"]
    [cumsum] = [n for n in lowered["nodes"] if n["label"] == "cumsum"]
    cpu = stage_run.pte_avg["forward"]["results"]
    cumsum_instruction = f"instruction_{attrs(cumsum)['instruction']}"
    assert results[cumsum["id"]]["value"] == pytest.approx(cpu[cumsum_instruction]["value"])
    groups = lowered["groupNodeAttributes"]
    total = sum(v["value"] for v in results.values())
    assert float(groups[""]["latency sum avg (ms)"]) == pytest.approx(total, abs=1e-3)
    calls = call_events(stage_run.etdump)
    partitions = {ns: a for ns, a in groups.items() if "delegate call avg (ms)" in a}
    assert len(partitions) == 2
    for namespace, facts in partitions.items():
        instruction = int(facts["instruction"])
        assert float(facts["delegate call avg (ms)"]) == pytest.approx(calls[instruction], abs=1e-4)
        on_ops = float(facts["on its ops avg (ms)"])
        assert float(facts["latency sum avg (ms)"]) == pytest.approx(on_ops, abs=1e-3)
        assert namespace.split("/")[-1].startswith("XnnpackBackend #")
    # A quantize fused into its conv's kernel points at the op that shows the time.
    pointers = [attrs(n)["latency in"] for n in lowered["nodes"] if "latency in" in attrs(n)]
    assert pointers and all(p in results for p in pointers)


def test_edge_stage_gets_the_same_ops_times(stage_run: StageRun) -> None:
    edge = stage_run.avg["forward (edge)"]["results"]
    lowered = stage_run.avg["forward (lowered)"]["results"]
    assert edge == lowered  # the same edge ops, before and after partitioning


def test_etrecord_without_its_program_is_one_line(stage_run: StageRun, tmp_path: Path) -> None:
    alone = tmp_path / "alone.etrecord"
    shutil.copy(stage_run.etrecord, alone)
    with pytest.raises(EtvizError) as caught:
        run_once(alone, tmp_path / "o.json", etdump=stage_run.etdump)
    assert "alone.pte" in str(caught.value) and "\n" not in str(caught.value)
    assert not (tmp_path / "o.json").exists()


# ---- an export script: --once script.py --etdump run.etdp -----------------------------------

SCRIPT = """import sys
from pathlib import Path
sys.path.insert(0, {repo!r})
from tests import pte_artifacts
pte_artifacts.quantized_cumsum(Path(__file__).parent, "made")
"""


def test_script_run_puts_an_etdump_on_its_lowered_stage(tmp_path: Path) -> None:
    """The script lowers the same program the ETDump is a run of (its .pte run here): the
    lowered stage's delegated ops get their kernels' time, within their call's event; the
    CPU op its kernel's."""
    script = tmp_path / "export_qcumsum.py"
    script.write_text(SCRIPT.format(repo=str(Path(__file__).resolve().parents[1])))
    made = pte_artifacts.quantized_cumsum(tmp_path, "ran")  # the same program, run here
    run, _ = pte_artifacts.profile_run(made.pte, RUNS)
    out = tmp_path / "script.json"
    result = run_once(script, out, etdump=run)
    graphs = {g["id"]: g for g in json.loads(out.read_text())["graphs"]}
    avg = json.loads(result.node_data["avg"].read_text())
    [lowered_id] = [g for g in graphs if g.endswith("(lowered)")]
    results = avg[lowered_id]["results"]
    calls = call_events(run)
    lowered = graphs[lowered_id]
    partitions = {ns: a for ns, a in lowered["groupNodeAttributes"].items()
                  if "delegate call avg (ms)" in a}
    assert len(partitions) == 2, lowered["groupNodeAttributes"]
    convs = [n for n in lowered["nodes"] if n["label"] == "convolution"]
    assert len(convs) == 2 and all(c["id"] in results for c in convs)
    for facts in partitions.values():
        on_ops = float(facts["on its ops avg (ms)"])
        call = float(facts["delegate call avg (ms)"])
        assert 0 <= on_ops <= call + 1e-4 and any(abs(call - c) < 1e-3 for c in calls.values())
    [cumsum] = [n for n in lowered["nodes"] if n["label"] == "cumsum"]
    assert results[cumsum["id"]]["value"] > 0
    assert "pte_artifacts.py:" in attrs(cumsum).get("source", "")  # the line users read
    assert "events attributed" in result.overlay and "ran.etdp" in result.overlay
