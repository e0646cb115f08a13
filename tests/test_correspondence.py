"""Stage correspondence (issue 18) on a real script: export -> PT2E quantize (XNNPACKQuantizer)
-> to_edge -> XNNPACK lowering with a CPU op (torch.cumsum) -> to_executorch, run by the real
CLI (``--once``, a real worker child), read from the side file it writes beside the graph."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from etviz_lsp import graph_files
from etviz_lsp.graph.overlays import correspondence
from tests.conftest import REPO_ROOT

Json = dict[str, Any]
SCRIPT = REPO_ROOT / "examples" / "quantize_and_lower.py"


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Json, Json]:
    """The graph collection and its correspondence, as ``--once`` wrote them."""
    folder = tmp_path_factory.mktemp("compare")
    out = folder / "stages.json"
    env = {**os.environ, "XDG_CACHE_HOME": str(folder / "cache")}
    done = subprocess.run(
        [sys.executable, "-m", "etviz_lsp", "--once", str(SCRIPT), "-o", str(out),
         "--", str(folder / "script_own.json")],
        cwd=folder, env=env, capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, done.stderr
    manifest = graph_files.read(out)
    side = manifest.file(graph_files.CORRESPONDENCE) if manifest else None
    assert side == folder / "stages.correspondence.json"
    return json.loads(out.read_text()), json.loads(side.read_text())


def _written_by_a_run(graph_json: Path, doc: Json) -> Path:
    """A script run's files at ``graph_json``: its graph, this correspondence, the manifest."""
    files = graph_files.GraphFiles(graph_json)
    graph_json.write_text(json.dumps({"label": doc["label"], "graphs": []}))
    files.wrote_graph(doc["label"], [])
    side = files.write_correspondence(doc)
    files.finish()
    return side


def stage_of(doc: Json, stage: str) -> Json:
    (found,) = [s for s in doc["stages"] if s["stage"] == stage]
    return found


def pair_to(doc: Json, stage: str) -> Json:
    graph_id = stage_of(doc, stage)["graphId"]
    (found,) = [p for p in doc["pairs"] if p["to"] == graph_id]
    return found


def counterparts(doc: Json, node: str, before: str, after: str) -> list[str]:
    """Nodes of stage ``before`` whose origins meet those of ``node`` of stage ``after``:
    what the compare view selects for any two stages, consecutive or not."""
    mine = set(stage_of(doc, after)["nodes"][node]["origins"])
    nodes = stage_of(doc, before)["nodes"]
    return [
        n for n, info in nodes.items()
        if info["kind"] != "wrapper" and mine & set(info["origins"])
    ]


def graph(collection: Json, graph_id: str) -> Json:
    (found,) = [g for g in collection["graphs"] if g["id"] == graph_id]
    return found


def attrs(node: Json) -> dict[str, str]:
    return {a["key"]: a["value"] for a in node["attrs"]}


def test_stages_in_capture_order_and_consecutive_pairs(run) -> None:
    _, doc = run
    stages = [s["stage"] for s in doc["stages"]]
    assert stages == ["exported", "quantized", "edge", "lowered", "executorch"]
    ids = [s["graphId"] for s in doc["stages"]]
    assert [(p["from"], p["to"]) for p in doc["pairs"]] == list(zip(ids, ids[1:], strict=False))


def test_every_op_of_the_lowered_graph_maps_back_to_its_exported_ops(run) -> None:
    collection, doc = run
    lowered = stage_of(doc, "lowered")
    exported_target = {
        "aten_convolution_default": "conv2d", "aten_convolution_default_1": "conv2d_1",
        "aten_relu_default": "relu", "aten_relu_default_1": "relu_1",
        "aten_cumsum_default": "cumsum", "aten_mean_dim": "mean", "aten_linear_default": "linear",
    }
    ops = {n: info for n, info in lowered["nodes"].items() if info["kind"] == "op"}
    # The graph's own op nodes: the side file covers each of them (delegates expanded).
    nodes = graph(collection, lowered["graphId"])["nodes"]
    shown = {n["id"] for n in nodes if attrs(n).get("kind") == "op"}
    assert set(lowered["nodes"]) <= shown
    assert len(ops) == 7
    for node in ops:
        expected = [exported_target[node.split("/")[-1]]]
        assert counterparts(doc, node, "exported", "lowered") == expected, node
    # The convolutions sit inside XNNPACK partitions; the cumsum on the CPU between them.
    assert ops["lowered_module_0/aten_convolution_default"]["delegated"] is True
    assert ops["aten_cumsum_default"]["delegated"] is False


def test_quantize_dequantize_nodes_are_reported_as_added(run) -> None:
    collection, doc = run
    pair = pair_to(doc, "quantized")
    quantized = graph(collection, pair["to"])
    qdq = [n["id"] for n in quantized["nodes"] if "quantize_per_" in attrs(n).get("target", "")]
    assert len(qdq) == 15
    assert sorted(pair["changes"]["new q/dq"]) == sorted(qdq)
    assert set(qdq) <= set(pair["changes"]["added"])
    assert pair["counts"]["new q/dq"] == 15 and pair["removed"] == []
    # The compute ops kept their identity through quantization: one to one.
    assert pair["forward"]["conv2d"] == ["conv2d"]


def test_delegate_wrappers_are_added_and_ops_delegated_or_left_on_cpu(run) -> None:
    collection, doc = run
    pair = pair_to(doc, "lowered")
    assert sorted(pair["changes"]["delegate wrapper"]) == ["getitem", "getitem_1", "getitem_2"]
    # Three getitems the graph shows plus three executorch_call_delegate calls it replaces by
    # their ops.
    assert pair["counts"]["added"] == 6
    assert sorted(pair["changes"]["on CPU"]) == ["aten_cumsum_default", "aten_mean_dim"]
    delegated = pair["changes"]["delegated"]
    assert "lowered_module_0/aten_convolution_default" in delegated
    assert all(n.startswith("lowered_module_") for n in delegated) and len(delegated) == 20
    assert "aten_cumsum_default" in pair["forward"]["aten_cumsum_default"]


def test_a_decomposed_op_maps_one_to_many(run) -> None:
    _, doc = run
    pair = pair_to(doc, "edge")
    # to_edge decomposes linear into permute_copy + addmm (and its output's q/dq follow it).
    kinds = {n: info["kind"] for n, info in stage_of(doc, "edge")["nodes"].items()}
    parts = pair["forward"]["linear"]
    ops = [n for n in parts if kinds[n] == "op"]
    assert ops == ["aten_permute_copy_default", "aten_addmm_default"]
    assert {kinds[n] for n in parts} == {"op", "qdq"}
    assert sorted(pair["changes"]["decomposed"]) == sorted(ops)
    assert pair["backward"]["aten_addmm_default"][0] == "linear"  # the op first, then its q/dq


def test_the_later_graph_shows_the_counts_and_marks_its_changed_nodes(run) -> None:
    collection, doc = run
    pair = pair_to(doc, "lowered")
    lowered = graph(collection, pair["to"])
    info = lowered["groupNodeAttributes"][""]
    assert info["compared with"] == pair["from"]
    assert info["ops added"] == "6" and info["ops delegated"] == "20" and info["on CPU"] == "2"
    nodes = {n["id"]: n for n in lowered["nodes"]}
    cumsum = nodes["aten_cumsum_default"]
    assert attrs(cumsum)["change"] == "on CPU"
    assert cumsum["style"]["borderColor"] == correspondence.CHANGE_BORDERS["on CPU"]
    conv = nodes["lowered_module_0/aten_convolution_default"]
    assert attrs(conv)["change"] == "delegated"
    assert "borderColor" in conv["style"]  # the partition's own colours stay
    # The first stage has nothing to compare with.
    first = graph(collection, doc["stages"][0]["graphId"])
    assert "compared with" not in first["groupNodeAttributes"][""]


def test_executorch_stage_keeps_the_mapping_and_adds_its_buffers(run) -> None:
    _, doc = run
    pair = pair_to(doc, "executorch")
    assert pair["forward"]["lowered_module_0/aten_convolution_default"] == [
        "lowered_module_0/aten_convolution_default"
    ]
    assert {"alloc", "alloc_1"} <= set(pair["changes"]["added"])
    assert "alloc" not in pair["changes"]["on CPU"]


def test_the_language_server_answers_the_stages_from_the_side_file(run, tmp_path, monkeypatch):
    """``etviz.server.compare`` reads what the worker wrote beside the file's cached graph."""
    from etviz_lsp.lsp.commands import RequestFailed
    from etviz_lsp.lsp.compare import compare_answer
    from etviz_lsp.lsp.explorer_server import ExplorerServer

    monkeypatch.setenv("ETVIZ_STATE_DIR", str(tmp_path / "state"))
    explorer = ExplorerServer(None)
    graph_json = explorer.graph_file_for(SCRIPT)
    with pytest.raises(RequestFailed, match="no stages to compare yet; visualize the script"):
        compare_answer(explorer, (SCRIPT.as_uri(),))
    _, doc = run
    graph_json.parent.mkdir(parents=True, exist_ok=True)
    _written_by_a_run(graph_json, doc)
    answer = compare_answer(explorer, (SCRIPT.as_uri(),))
    assert [s["stage"] for s in answer["stages"]] == [s["stage"] for s in doc["stages"]]
    assert answer["correspondence"]["label"] == "quantize_and_lower.py"
    assert answer["stages"][0]["url"] is None  # no Model Explorer server known yet
    with pytest.raises(RequestFailed, match=r"expected \[fileUri\]"):
        compare_answer(explorer, (1, 2))


def test_a_pt2_written_over_a_script_output_drops_its_stale_correspondence(run, tmp_path):
    """One ``.pt2`` is one stage: the side file of an earlier script run at the same output
    must not describe graphs that are no longer there."""
    import torch

    from etviz_lsp.once import run_once

    _, doc = run
    out = tmp_path / "graph.json"
    side = _written_by_a_run(out, doc)
    pt2 = tmp_path / "tiny.pt2"
    torch.export.save(torch.export.export(torch.nn.Linear(2, 2), (torch.randn(1, 2),)), pt2)
    run_once(pt2, out)
    assert out.is_file() and not side.exists()
