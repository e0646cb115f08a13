"""The graph contract, checked on real exported programs (see builder.py's docstring)."""

from __future__ import annotations

import operator
from typing import Any

import pytest
import torch

from etviz_lsp.graph import convert
from tests import corpus
from tests.conftest import REPO_ROOT

Json = dict[str, Any]


@pytest.fixture(scope="session")
def programs() -> dict[str, torch.export.ExportedProgram]:
    return {name: make() for name, make in corpus.CORPUS.items()}


@pytest.fixture(scope="session")
def graphs(programs: dict[str, torch.export.ExportedProgram]) -> dict[str, Json]:
    return {
        name: convert.from_programs([(name, ep)], label=name).to_json()
        for name, ep in programs.items()
    }


def main_graph(collection: Json) -> Json:
    return collection["graphs"][0]


def nodes_by_id(graph: Json) -> dict[str, Json]:
    return {node["id"]: node for node in graph["nodes"]}


def attrs(node: Json) -> dict[str, str]:
    return {item["key"]: item["value"] for item in node["attrs"]}


def line_of(path: str, text: str) -> int:
    lines = (REPO_ROOT / path).read_text().splitlines()
    return next(i for i, line in enumerate(lines, 1) if text in line)


@pytest.mark.parametrize("name", list(corpus.CORPUS))
def test_one_node_per_fx_node_with_fx_name_as_id(name: str, programs, graphs) -> None:
    ids = [node["id"] for node in main_graph(graphs[name])["nodes"]]
    assert ids == [node.name for node in programs[name].graph.nodes]


@pytest.mark.parametrize("name", list(corpus.CORPUS))
def test_every_data_dependency_is_an_edge(name: str, programs, graphs) -> None:
    by_id = nodes_by_id(main_graph(graphs[name]))
    for fx_node in programs[name].graph.nodes:
        sources = [edge["sourceNodeId"] for edge in by_id[fx_node.name]["incomingEdges"]]
        assert sorted(sources) == sorted(n.name for n in fx_node.all_input_nodes), fx_node.name
        ids = [edge["targetNodeInputId"] for edge in by_id[fx_node.name]["incomingEdges"]]
        assert ids == [str(i) for i in range(len(ids))]


@pytest.mark.parametrize("name", list(corpus.CORPUS))
def test_every_edge_points_at_an_existing_output(name: str, graphs) -> None:
    for graph in graphs[name]["graphs"]:
        by_id = nodes_by_id(graph)
        for node in graph["nodes"]:
            for edge in node["incomingEdges"]:
                producer = by_id[edge["sourceNodeId"]]
                outputs = {meta["id"] for meta in producer["outputsMetadata"]}
                assert not outputs or edge["sourceNodeOutputId"] in outputs, (node["id"], edge)


def test_getitem_edges_carry_the_producers_output_index(programs, graphs) -> None:
    by_id = nodes_by_id(main_graph(graphs["mutation_model"]))
    getitems = [n for n in programs["mutation_model"].graph.nodes if n.target is operator.getitem]
    assert {n.args[1] for n in getitems} >= {0, 1}, "topk must give indices 0 and 1"
    for fx_node in getitems:
        (edge,) = by_id[fx_node.name]["incomingEdges"]
        assert edge["sourceNodeId"] == fx_node.args[0].name
        assert edge["sourceNodeOutputId"] == str(fx_node.args[1])
    topk = next(n for n in by_id.values() if n["label"] == "topk")
    shapes = [attrs_of(meta)["tensor_shape"] for meta in topk["outputsMetadata"]]
    assert shapes == ["float32[2, 3]", "int64[2, 3]"]


def attrs_of(meta: Json) -> dict[str, str]:
    return {item["key"]: item["value"] for item in meta["attrs"]}


def test_labels_are_short_op_names_and_attrs_name_target_module_source(graphs) -> None:
    by_id = nodes_by_id(main_graph(graphs["nested_convnet"]))
    stem = next(
        n
        for n in by_id.values()
        if attrs(n)["module"] == "stem" and n["label"] != "weight" and attrs(n)["kind"] == "op"
    )
    assert stem["label"] == "conv2d"
    stem_attrs = attrs(stem)
    assert stem_attrs["target"] == "aten.conv2d.default"
    assert stem_attrs["padding"] == "[1, 1]"
    expected_line = line_of("examples/convnet.py", "x = self.stem(x)")
    assert stem_attrs["source"] == f"{REPO_ROOT / 'examples' / 'convnet.py'}:{expected_line}"
    head = next(n for n in by_id.values() if n["label"] == "linear")
    assert attrs(head)["module"] == "head"
    assert attrs(head)["source"].endswith(f":{line_of('examples/convnet.py', 'self.head(x)')}")


def test_namespace_is_the_module_hierarchy_with_attr_and_class(graphs) -> None:
    graph = main_graph(graphs["nested_convnet"])
    convs = [n for n in graph["nodes"] if attrs(n).get("module") == "stages.1.body.0"]
    assert [n["label"] for n in convs if attrs(n)["kind"] == "op"] == ["conv2d"]
    assert convs[0]["namespace"] == "stages/1 (Block)/body (Sequential)/0 (Conv2d)"
    layer = graph["groupNodeAttributes"]["stages/1 (Block)/body (Sequential)/0 (Conv2d)"]
    assert layer["class"] == "Conv2d"
    assert layer["path"] == "stages.1.body.0"
    block = ConvNetParams()
    assert layer["parameters"] == f"{block.count('stages.1.body.0'):,}"
    assert graph["groupNodeAttributes"]["stages/1 (Block)"]["parameters"] == (
        f"{block.count('stages.1'):,}"
    )
    assert "stages" in graph["groupNodeAttributes"], "the ModuleList gets a layer too"


class ConvNetParams:
    """Parameter counts straight from the nn.Module, to compare layer attrs with."""

    def __init__(self) -> None:
        from convnet import ConvNet

        self.model = ConvNet()

    def count(self, prefix: str) -> int:
        return sum(
            p.numel() for name, p in self.model.named_parameters() if name.startswith(prefix + ".")
        )


def test_parameters_sit_in_their_owner_layer_not_at_top_level(graphs) -> None:
    graph = main_graph(graphs["nested_convnet"])
    top_level = [n for n in graph["nodes"] if n["namespace"] == ""]
    assert {attrs(n)["kind"] for n in top_level} <= {"input", "op", "output"}
    weight = nodes_by_id(graph)["p_stages_0_body_0_weight"]
    assert attrs(weight)["kind"] == "parameter"
    assert weight["label"] == "weight"
    assert weight["namespace"] == "stages/0 (Block)/body (Sequential)/0 (Conv2d)"
    running_mean = nodes_by_id(graph)["b_stages_0_body_1_running_mean"]
    assert attrs(running_mean)["kind"] == "buffer"
    assert running_mean["namespace"].endswith("1 (BatchNorm2d)")
    x = nodes_by_id(graph)["x"]
    assert attrs(x)["kind"] == "input" and x["namespace"] == ""


def test_symbolic_dimensions_are_named(programs, graphs) -> None:
    ep = programs["dynamic_transformer"]
    x_shape = ep.graph_signature.user_inputs[0]
    seq_symbol = str(next(n for n in ep.graph.nodes if n.name == x_shape).meta["val"].shape[1])
    assert not seq_symbol.isdigit()
    by_id = nodes_by_id(main_graph(graphs["dynamic_transformer"]))
    out = attrs_of(by_id["x"]["outputsMetadata"][0])
    assert out["tensor_shape"] == f"float32[1, {seq_symbol}, 16]"
    softmax = next(n for n in by_id.values() if n["label"] == "softmax")
    assert f"[1, {seq_symbol}, {seq_symbol}]" in attrs_of(softmax["outputsMetadata"][0])["shape"]
    assert softmax["namespace"] == "layers/0/attn (Attention)"


def test_symint_output_is_shown(graphs) -> None:
    graph = main_graph(graphs["symint_model"])
    sym = next(n for n in graph["nodes"] if n["label"] == "sym_size")
    meta = attrs_of(sym["outputsMetadata"][0])
    assert meta["dtype"] == "SymInt"
    assert meta["tensor_shape"].startswith("SymInt: ")
    output = next(n for n in graph["nodes"] if n["id"] == "output")
    assert sym["id"] in [e["sourceNodeId"] for e in output["incomingEdges"]]


def test_cond_branches_are_subgraphs_reachable_from_the_node(graphs) -> None:
    collection = graphs["cond_model"]
    ids = [g["id"] for g in collection["graphs"]]
    cond = next(n for n in main_graph(collection)["nodes"] if n["label"] == "cond")
    assert len(cond["subgraphIds"]) == 2
    assert set(cond["subgraphIds"]) <= set(ids)
    branches = {gid: g for g in collection["graphs"] for gid in [g["id"]]}
    labels = {
        gid: sorted(n["label"] for n in branches[gid]["nodes"]) for gid in cond["subgraphIds"]
    }
    assert any("linear" in found and "relu" in found for found in labels.values()), labels
    assert any("cos" in found for found in labels.values()), labels


def test_mutated_buffer_and_multiple_outputs(programs, graphs) -> None:
    graph = main_graph(graphs["mutation_model"])
    by_id = nodes_by_id(graph)
    mutating = [n for n in graph["nodes"] if attrs(n).get("mutates") == "count"]
    assert len(mutating) == 1 and mutating[0]["label"] == "add"
    output = by_id["output"]
    assert len(output["incomingEdges"]) == 4  # the buffer write-back plus three user outputs
    assert by_id["b_count"]["namespace"] == "buffers"


def test_quantized_program_has_no_bogus_layers(graphs) -> None:
    graph = main_graph(graphs["quantized_convnet"])
    namespaces = {n["namespace"] for n in graph["nodes"]}
    assert not any("<locals>" in ns or "Wrapper" in ns for ns in namespaces), namespaces
    quantize = [n for n in graph["nodes"] if n["label"] == "quantize_per_tensor"]
    assert quantize, "PT2E convert leaves quantize nodes"
    q_attrs = attrs(quantize[0])
    assert q_attrs["target"] == "quantized_decomposed.quantize_per_tensor.default"
    assert {"scale", "zero_point", "quant_min", "quant_max", "dtype"} <= set(q_attrs)
    assert q_attrs["dtype"] == "int8"
    assert any(ns.startswith("stages/0 (Block)") for ns in namespaces)


def test_edge_program_nodes_carry_debug_handles() -> None:
    from executorch.exir import to_edge

    edge = to_edge(corpus.nested_convnet())
    collection = convert.from_programs([("convnet", edge)], label="convnet").to_json()
    graph = main_graph(collection)
    assert graph["id"] == "convnet (edge)"
    ops = [n for n in graph["nodes"] if attrs(n)["kind"] == "op"]
    assert ops and all(attrs(n).get("debug_handle", "").isdigit() for n in ops)
    assert {n["label"] for n in ops} >= {"convolution", "relu"}
    assert all(attrs(n)["target"].startswith("aten.") for n in ops if n["label"] == "relu")


def test_summary_counts(graphs) -> None:
    collection = convert.from_programs([("c", corpus.nested_convnet())], label="c")
    summary = convert.summarize(collection)
    graph = main_graph(graphs["nested_convnet"])
    assert summary.op_nodes == sum(1 for n in graph["nodes"] if attrs(n)["kind"] == "op")
    assert summary.layers == len(graph["groupNodeAttributes"]) - 1
    assert summary.graphs == 1
