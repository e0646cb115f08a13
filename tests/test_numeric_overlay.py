"""AOT numeric overlay (issue 17, item 2): per-op error of a real PT2E-quantized program
against its float program on the example inputs, matched by ``from_node`` provenance, as
Model Explorer node data keyed by the quantized graph's own node ids."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path
from typing import Any

import pytest

from etviz_lsp import cli, graph_files
from etviz_lsp.graph import convert
from etviz_lsp.graph.overlays import numeric
from etviz_lsp.worker import numeric_overlay
from tests import pte_artifacts


@pytest.fixture(scope="module")
def programs() -> tuple[Any, Any, tuple[Any, ...]]:
    return pte_artifacts.float_and_quantized()


def _clip_output_of(program: Any, op: str, factor: float) -> Any:
    """A copy whose quantize/dequantize after ``op`` has its scale divided by ``factor``:
    the op's output clips (what a wrong observer range or config does)."""
    broken = copy.deepcopy(program)
    node = next(n for n in broken.graph.nodes if n.name == op)
    quantize = next(iter(node.users))
    for qdq in (quantize, next(iter(quantize.users))):
        assert "quantize" in str(qdq.target), qdq
        qdq.args = (qdq.args[0], qdq.args[1] / factor, *qdq.args[2:])
    broken.graph_module.recompile()
    return broken


def test_every_compute_op_is_matched_and_quantization_error_is_small(programs) -> None:
    float_program, quantized, inputs = programs
    errors = numeric.op_errors(float_program, quantized, inputs)
    assert sorted(e.node for e in errors) == ["conv2d", "conv2d_1", "cumsum", "relu"]
    assert all(e.node == e.source for e in errors)  # provenance leads back to the float op
    for error in errors:  # int8 on this small model: tens of dB, errors of a few steps
        assert 20 < error.sqnr_db < 80 and 0 < error.max_abs < 0.1, error


def test_a_deliberately_clipped_op_ranks_worst(programs) -> None:
    float_program, quantized, inputs = programs
    healthy = {e.node: e for e in numeric.op_errors(float_program, quantized, inputs)}
    broken = numeric.op_errors(float_program, _clip_output_of(quantized, "conv2d_1", 20), inputs)
    assert broken[0].node == "conv2d_1"  # worst first
    assert broken[0].sqnr_db < healthy["conv2d_1"].sqnr_db - 10
    assert broken[0].max_abs > 10 * healthy["conv2d_1"].max_abs
    assert all(e.sqnr_db > broken[0].sqnr_db + 10 for e in broken[1:])
    # The other ops read nothing of the clipped output: their errors are as before.
    for error in broken[1:]:
        assert error.sqnr_db == pytest.approx(healthy[error.node].sqnr_db)


def test_node_data_is_keyed_by_the_quantized_graphs_node_ids(programs) -> None:
    float_program, quantized, inputs = programs
    errors = numeric.op_errors(float_program, quantized, inputs)
    collection = convert.from_programs([("quantized", quantized)], "numeric")
    graph = collection.graphs[0]
    data = numeric.node_data(graph.id, errors)
    ids = {node["id"] for node in graph.nodes}
    for name, entry in data.items():
        results = entry[graph.id]["results"]
        assert set(results) == {e.node for e in errors} and set(results) <= ids, name
    sqnr = data["sqnr"][graph.id]["results"]
    assert all(math.isfinite(r["value"]) for r in sqnr.values())
    assert data["sqnr"][graph.id]["gradient"][0]["bgColor"] == "#7f0000"  # low SQNR is bad


def test_the_graph_info_lists_the_worst_ops_and_nodes_say_their_error(programs) -> None:
    float_program, quantized, inputs = programs
    broken = _clip_output_of(quantized, "conv2d_1", 20)
    errors = numeric.op_errors(float_program, broken, inputs)
    graph = convert.from_programs([("broken", broken)], "numeric").graphs[0]
    numeric.annotate(graph, errors, worst=2)
    listed = graph.group_attrs[""]["worst ops (SQNR dB)"]
    assert listed.startswith("conv2d_1 ") and listed.count(",") == 1, listed
    conv = next(n for n in graph.nodes if n["id"] == "conv2d_1")
    shown = {item["key"]: item["value"] for item in conv["attrs"]}
    assert float(shown["quantization SQNR (dB)"]) == pytest.approx(errors[0].sqnr_db, abs=0.01)
    assert shown["compared with (float op)"] == "conv2d_1"


CLIPPED = Path(__file__).parent / "scripts" / "quantize_clipped.py"


def test_a_script_run_writes_the_overlay_after_its_graph_and_says_the_worst_op(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "c.json"
    assert cli.main(["--once", str(CLIPPED), "-o", str(out)]) == 0
    [line] = [s for s in capsys.readouterr().out.splitlines() if "numeric overlay:" in s]
    assert "(quantized): linear (linear) SQNR " in line and "(worst of 6 ops)" in line, line
    overlays = list(graph_files.node_data_of(out).files)  # what its manifest lists
    # SQNR last: Model Explorer colours the graph by the node data it loaded last
    assert [p.name for p in overlays] == ["c.numeric-max-abs-error.json", "c.numeric-sqnr.json"]
    [(graph_id, sqnr)] = json.loads(overlays[1].read_text()).items()
    worst = min(sqnr["results"], key=lambda n: sqnr["results"][n]["value"])
    assert worst == "linear" and sqnr["results"]["linear"]["value"] < 5
    graph = next(g for g in json.loads(out.read_text())["graphs"] if g["id"] == graph_id)
    assert graph["groupNodeAttributes"][""]["worst ops (SQNR dB)"].startswith("linear ")

    assert cli.main(["--once", str(CLIPPED), "--no-numeric", "-o", str(out)]) == 0
    assert "numeric overlay" not in capsys.readouterr().out
    assert list(graph_files.node_data_of(out).files) == []  # the earlier files are stale


def test_over_budget_is_a_note_and_the_graphs_stay_as_they_were(programs) -> None:
    float_program, quantized, _ = programs
    stages = [
        numeric_overlay.Stage(kind, p, convert.from_programs([(kind, p)], kind).graphs[0])
        for kind, p in (("exported", float_program), ("quantized", quantized))
    ]
    overlay = numeric_overlay.compute(stages, seconds=0.0)
    assert overlay.errors == {}
    [note] = overlay.notes
    assert note == "quantized: numeric overlay skipped: over 0 s"
    assert "worst ops (SQNR dB)" not in stages[1].graph.group_attrs.get("", {})
    assert numeric_overlay.write(overlay, graph_files.GraphFiles(Path("never-written.json"))) == []
    assert numeric_overlay.compute(stages).errors["quantized"]  # in budget: compared
