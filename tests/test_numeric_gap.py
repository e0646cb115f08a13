"""The runtime numeric gap (issue 17, item 2) on a real quantized XNNPACK program run here.

``pte_artifacts.quantized_cumsum`` (delegate -> CPU cumsum -> delegate, ETRecord with its
representative inputs) runs with ETDump and a debug buffer through ``executorch.runtime``:
once on the ETRecord's own inputs, once on other inputs. ``--once --debug-buffer`` writes
the gap per instruction (ExecuTorch's ``Inspector.calculate_numeric_gap``), keyed by the
``.pte`` graph's node ids; a bad debug buffer is one line naming it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from etviz_lsp import cli
from tests import pte_artifacts


class Gapped:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        made = pte_artifacts.quantized_cumsum(folder)
        self.pte, self.etrecord = made.pte, made.etrecord
        args, _ = made.exported.example_inputs  # what the ETRecord's reference runs on
        self.same = pte_artifacts.profile_run(self.pte, 1, inputs=args, stem="same")
        self.other = pte_artifacts.profile_run(self.pte, 1, stem="other")  # new inputs

    def run(self, run: tuple[Path, Path], name: str, *extra: str) -> int:
        etdump, debug = run
        return cli.main(["--once", str(self.pte), "--etdump", str(etdump),
                         "--debug-buffer", str(debug), "-o", str(self.folder / f"{name}.json"),
                         *extra])  # fmt: skip

    def gap(self, name: str) -> dict[str, Any]:
        return json.loads((self.folder / f"{name}.numeric-gap.json").read_text())


@pytest.fixture(scope="module")
def gapped(tmp_path_factory: pytest.TempPathFactory) -> Gapped:
    made = Gapped(tmp_path_factory.mktemp("gap"))
    assert made.run(made.same, "same", "--allow-pickle") == 0
    assert made.run(made.other, "other", "--allow-pickle") == 0
    return made


def instructions(gapped: Gapped) -> dict[str, str]:
    """The .pte graph's instruction nodes: id -> label."""
    graphs = json.loads((gapped.folder / "same.json").read_text())["graphs"]
    forward = next(g for g in graphs if g["id"] == "forward")
    return {n["id"]: n["label"] for n in forward["nodes"] if n["id"].startswith("instruction_")}


def test_each_delegate_and_the_cpu_op_get_the_gap_on_their_instruction(gapped: Gapped) -> None:
    [(graph_id, data)] = gapped.gap("same").items()
    assert graph_id == "forward"
    nodes = instructions(gapped)
    results = data["results"]
    assert set(results) <= set(nodes)
    labels = sorted(nodes[n] for n in results)
    # XNNPACK logs no intermediates: one gap per delegate call; the portable cumsum its own
    assert labels.count("aten::cumsum") == 1 and len(labels) == 3, labels
    # Same inputs as the ETRecord's reference: the runtime agrees (int8 kernels exactly).
    assert all(r["value"] > 100 for r in results.values()), results
    assert data["gradient"][0]["bgColor"] == "#7f0000"  # low SNR is bad


def test_other_inputs_than_the_reference_show_a_large_gap(gapped: Gapped) -> None:
    same = gapped.gap("same")["forward"]["results"]
    other = gapped.gap("other")["forward"]["results"]
    assert set(other) == set(same)
    assert all(r["value"] < 10 for r in other.values()), other


def test_the_gap_is_the_inspectors(gapped: Gapped) -> None:
    from executorch.devtools import Inspector

    etdump, debug = gapped.other
    inspector = Inspector(
        etdump_path=str(etdump), etrecord=str(gapped.etrecord), debug_buffer_path=str(debug)
    )
    frame = inspector.calculate_numeric_gap("SNR")
    theirs = sorted(round(min(row["gap"]), 3) for row in frame.to_dict("records"))
    ours = sorted(r["value"] for r in gapped.gap("other")["forward"]["results"].values())
    assert ours == pytest.approx(theirs, abs=1e-3)


def test_a_bad_debug_buffer_is_one_line_naming_it(
    gapped: Gapped, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = gapped.folder / "bad_debug.bin"
    bad.write_bytes(b"\x01" * 100)
    assert gapped.run((gapped.same[0], bad), "bad", "--allow-pickle") == 1
    [line] = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"etviz-lsp: error: {bad}: cannot compute the numeric gap")
    missing = gapped.folder / "missing.bin"
    assert gapped.run((gapped.same[0], missing), "bad", "--allow-pickle") == 1
    assert capsys.readouterr().err.strip() == f"etviz-lsp: error: {missing}: no such file"


def test_the_gap_needs_the_pickle_opt_in(
    gapped: Gapped, capsys: pytest.CaptureFixture[str]
) -> None:
    assert gapped.run(gapped.same, "no_opt_in") == 1
    [line] = capsys.readouterr().err.strip().splitlines()
    assert str(gapped.etrecord) in line and "--allow-pickle" in line
    assert not (gapped.folder / "no_opt_in.json").exists()  # refused before any work
