"""ETDump latency on a ``.pt2`` (issue 28): ``--once m.pt2 --etdump run.etdp --etrecord R``.

A ``.pt2`` has no debug handles: the run's events reach its ops only through the ETRecord
written when that very program was lowered. ``pte_artifacts.quantized_cumsum`` (PT2E int8:
delegate -> CPU cumsum -> delegate) is lowered and run here with ETDump on, and the quantized
ExportedProgram given to the lowering is saved as the ``.pt2``. Checked: each op's debug
handle is the one ExecuTorch's own ``propagate_back_debug_handle`` gives it, the CPU cumsum
gets its kernel's time from the ETDump's own event, each delegate's ops sum to at most its
``DELEGATE_CALL``; another program (the float export) is refused in one line, and so is a
``.pt2`` with no ``--etrecord``.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
import torch

from etviz_lsp import cli
from etviz_lsp.graph.readers import etdump
from tests import pte_artifacts

RUNS = 5


class Pt2Run:
    def __init__(self, folder: Path) -> None:
        made = pte_artifacts.quantized_cumsum(folder)
        self.folder, self.etrecord, self.exported = folder, made.etrecord, made.exported
        self.pt2 = folder / "quantized.pt2"
        torch.export.save(made.exported, str(self.pt2))
        self.etdump, _ = pte_artifacts.profile_run(made.pte, RUNS)
        self.out = folder / "pt2.json"
        assert self.once(self.pt2, "--etrecord", str(self.etrecord)) == 0
        [self.graph] = [g for g in json.loads(self.out.read_text())["graphs"] if "/" not in g["id"]]
        avg = json.loads((folder / "pt2.latency-avg.json").read_text())
        self.avg = {n: r["value"] for n, r in avg[self.graph["id"]]["results"].items()}

    def once(self, source: Path, *extra: str) -> int:
        return cli.main(["--once", str(source), "--etdump", str(self.etdump),
                         "-o", str(self.out), *extra])  # fmt: skip


@pytest.fixture(scope="module")
def pt2_run(tmp_path_factory: pytest.TempPathFactory) -> Pt2Run:
    return Pt2Run(tmp_path_factory.mktemp("pt2_latency"))


def attrs(node: dict[str, Any]) -> dict[str, str]:
    return {item["key"]: item["value"] for item in node["attrs"]}


def event_averages(path: Path) -> dict[tuple[str, int], float]:
    """(event name, instruction) -> its average time (ms), straight from the ETDump."""
    found: dict[tuple[str, int], list[float]] = defaultdict(list)
    for run in etdump.read_etdump(path).executions():
        for event in run.events:
            found[(event.name, event.instruction)].append(event.ms)
    return {key: sum(times) / len(times) for key, times in found.items()}


def test_each_op_has_the_handle_executorch_propagates_back(pt2_run: Pt2Run) -> None:
    from executorch.devtools.etrecord import parse_etrecord
    from executorch.devtools.inspector._inspector_utils import propagate_back_debug_handle

    record = parse_etrecord(str(pt2_run.etrecord))  # our own file: unpickling is fine here
    assert propagate_back_debug_handle(
        record.exported_program, record.export_graph_id, record.edge_dialect_program)
    theirs = {n.name: str(n.meta["debug_handle"]) for n in record.exported_program.graph.nodes
              if n.op == "call_function" and n.meta.get("debug_handle")}
    ours = {n["id"]: attrs(n)["debug_handle"] for n in pt2_run.graph["nodes"]
            if "debug_handle" in attrs(n)}
    assert ours == theirs and len(ours) >= 10


def test_the_cpu_op_has_its_kernels_time_and_delegates_stay_within_their_calls(
    pt2_run: Pt2Run,
) -> None:
    nodes = {n["id"]: n for n in pt2_run.graph["nodes"]}
    events = event_averages(pt2_run.etdump)
    [cumsum] = [n for n in pt2_run.avg if nodes[n]["label"].startswith("cumsum")]
    [kernel] = [t for (name, _), t in events.items() if "cumsum" in name]
    assert pt2_run.avg[cumsum] == pytest.approx(kernel, rel=1e-3)
    convs = [n for n in pt2_run.avg if nodes[n]["label"].startswith("conv2d")]
    assert len(convs) == 2, pt2_run.avg  # each delegate's conv carries its kernel's time
    calls = [t for (name, _), t in events.items() if name == "DELEGATE_CALL"]
    assert len(calls) == 2
    delegated = sum(v for n, v in pt2_run.avg.items() if n != cumsum)
    assert 0 < delegated <= sum(calls) + 1e-6


def test_another_program_or_no_etrecord_is_one_line(
    pt2_run: Pt2Run, capsys: pytest.CaptureFixture[str]
) -> None:
    float_program, _, _ = pte_artifacts.float_and_quantized()
    other = pt2_run.folder / "float.pt2"
    torch.export.save(float_program, str(other))
    capsys.readouterr()
    assert pt2_run.once(other, "--etrecord", str(pt2_run.etrecord)) == 1
    [line] = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"etviz-lsp: error: {other}: not the program qcumsum.etrecord "
                           "recorded (op "), line
    assert pt2_run.once(pt2_run.pt2) == 1
    [line] = capsys.readouterr().err.strip().splitlines()
    assert line == (f"etviz-lsp: error: {pt2_run.pt2}: --etdump on a .pt2 needs --etrecord, "
                    "the ETRecord written when this program was lowered (a .pt2 has no debug "
                    "handles)")
