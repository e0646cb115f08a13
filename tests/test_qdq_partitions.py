"""Partitions and QDQ clusters on a real PT2E-quantized, really XNNPACK-lowered model.

The model (examples/quantize_and_lower.py) has a ``torch.cumsum`` XNNPACK refuses, so the
lowering makes several delegates with that CPU op between them. Expected memberships are
read from ExecuTorch's own objects (the lowered modules' ``original_module`` graphs, the
partitioner's ``delegation_tag``), never from our output.
"""

from __future__ import annotations

import copy
import json
import operator
import re
import subprocess
import sys
from typing import Any

import pytest
import torch

from etviz_lsp.graph import convert
from etviz_lsp.graph.core import palette
from tests.conftest import PYTHON, REPO_ROOT

sys.path.insert(0, str(REPO_ROOT / "examples"))
import quantize_and_lower as example  # noqa: E402

Json = dict[str, Any]


@pytest.fixture(scope="module")
def stages() -> dict[str, Any]:
    return example.stages()


@pytest.fixture(scope="module")
def graphs(stages: dict[str, Any]) -> dict[str, Json]:
    """The main graph of each stage, converted on its own."""
    out = {}
    for name, program in stages.items():
        collection = convert.from_programs([("net", program)], label=name).to_json()
        out[name] = collection["graphs"][0]
    return out


def attrs(node: Json) -> dict[str, str]:
    return {item["key"]: item["value"] for item in node["attrs"]}


def by_id(graph: Json) -> dict[str, Json]:
    return {node["id"]: node for node in graph["nodes"]}


def ops(graph: Json) -> list[Json]:
    return [n for n in graph["nodes"] if attrs(n)["kind"] == "op"]


def partition_groups(graph: Json) -> dict[str, set[str]]:
    groups: dict[str, set[str]] = {}
    for node in graph["nodes"]:
        key = attrs(node).get("partition")
        if key is not None:
            groups.setdefault(key, set()).add(node["id"])
    return groups


def lowered_modules(program: torch.export.ExportedProgram) -> list[tuple[str, Any]]:
    """``(get_attr name, LoweredBackendModule)`` in the order the graph calls them."""
    calls = [n for n in program.graph.nodes if "executorch_call_delegate" in str(n.target)]
    return [(c.args[0].name, getattr(program.graph_module, c.args[0].target)) for c in calls]


# --- after lowering ----------------------------------------------------------------------


def test_each_delegate_is_a_partition_holding_exactly_its_original_ops(stages, graphs) -> None:
    program = stages["lowered"].exported_program()
    modules = lowered_modules(program)
    assert len(modules) >= 2, "the cumsum must split the model into several delegates"
    groups = partition_groups(graphs["lowered"])
    assert set(groups) == {f"XnnpackBackend#{i}" for i in range(len(modules))}
    for index, (name, module) in enumerate(modules):
        assert module.backend_id == "XnnpackBackend"
        expected_ops = {
            f"{name}/{n.name}"
            for n in module.original_module.graph.nodes
            if n.op == "call_function"
        }
        key = f"XnnpackBackend#{index}"
        shown_ops = {i for i in groups[key] if attrs(by_id(graphs["lowered"])[i])["kind"] == "op"}
        assert shown_ops == expected_ops
        for node_id in groups[key]:
            pieces = by_id(graphs["lowered"])[node_id]["namespace"].split("/")
            assert f"XnnpackBackend #{index}" in pieces


def test_the_cpu_op_sits_between_partitions_outside_all_of_them(stages, graphs) -> None:
    graph = graphs["lowered"]
    nodes = by_id(graph)
    cumsum = next(n for n in ops(graph) if n["label"] == "cumsum")
    assert "partition" not in attrs(cumsum) and "qdq_cluster" not in attrs(cumsum)
    assert cumsum["namespace"] == ""
    assert "style" not in cumsum
    (edge,) = cumsum["incomingEdges"]
    getitem = nodes[edge["sourceNodeId"]]
    assert getitem["label"] == "getitem" and "partition" not in attrs(getitem)
    producer = nodes[getitem["incomingEdges"][0]["sourceNodeId"]]
    assert attrs(producer)["partition"] == "XnnpackBackend#0"
    consumers = [n for n in graph["nodes"] if cumsum["id"] in sources(n)]
    assert [attrs(n).get("partition") for n in consumers] == ["XnnpackBackend#1"]
    non_delegated = {n.name for n in stages["lowered"].exported_program().graph.nodes
                     if n.op == "call_function" and "delegate" not in str(n.target)
                     and n.target is not operator.getitem}
    assert {"aten_cumsum_default"} <= non_delegated
    assert all("partition" not in attrs(nodes[name]) for name in non_delegated)


def sources(node: Json) -> list[str]:
    return [edge["sourceNodeId"] for edge in node["incomingEdges"]]


def test_delegate_inputs_and_outputs_are_wired_to_the_surrounding_graph(stages, graphs) -> None:
    program = stages["lowered"].exported_program()
    nodes = by_id(graphs["lowered"])
    for call in (n for n in program.graph.nodes if "executorch_call_delegate" in str(n.target)):
        lowered = call.args[0].name
        original = getattr(program.graph_module, call.args[0].target).original_module
        user_inputs = original.graph_signature.user_inputs
        for placeholder, outer in zip(user_inputs, call.args[1:], strict=True):
            inner = nodes[f"{lowered}/{placeholder}"]
            assert sources(inner) == [outer.name]
        output_args = next(n for n in original.graph.nodes if n.op == "output").args[0]
        for getitem in call.users:
            index = getitem.args[1]
            assert sources(nodes[getitem.name]) == [f"{lowered}/{output_args[index].name}"]
    assert not [n for n in nodes.values() if "delegate" in n["label"]], "calls are expanded"
    assert len(nodes) == len(graphs["lowered"]["nodes"]), "node ids are unique"
    for node in nodes.values():
        for source in sources(node):
            assert source in nodes, (node["id"], source)


def test_partition_layers_carry_backend_size_and_compile_specs(stages, graphs) -> None:
    layers = graphs["lowered"]["groupNodeAttributes"]
    for index, (name, module) in enumerate(lowered_modules(stages["lowered"].exported_program())):
        layer = layers[partition_layer(graphs["lowered"], f"XnnpackBackend #{index}")]
        assert layer["backend"] == "XnnpackBackend"
        assert layer["lowered module"] == name
        assert layer["delegate size"] == f"{len(module.processed_bytes):,} bytes"
        specs = {f"compile spec {s.key}" for s in module.compile_specs}
        assert specs <= set(layer) and (specs or layer["compile specs"] == "(none)")


def partition_layer(graph: dict[str, Any], label: str) -> str:
    """The namespace of the partition layer named ``label``, wherever it is nested."""
    (found,) = [ns for ns in graph["groupNodeAttributes"] if ns.rsplit("/", 1)[-1] == label]
    return found


def test_partitions_sit_in_the_module_holding_their_ops_clusters_inside(graphs) -> None:
    graph = graphs["lowered"]
    convs = [n for n in ops(graph) if n["label"] == "convolution"]
    assert [n["namespace"] for n in convs] == [
        "first (ConvBlock)/XnnpackBackend #0/cluster aten_convolution_default",
        "second (ConvBlock)/XnnpackBackend #1/cluster aten_convolution_default_1",
    ]
    layers = graph["groupNodeAttributes"]
    assert layers["first (ConvBlock)"]["class"] == "ConvBlock"
    assert layers["first (ConvBlock)/XnnpackBackend #0"]["backend"] == "XnnpackBackend"
    linear = next(n for n in ops(graph) if n["label"] == "linear")
    assert linear["namespace"].startswith("head (Linear)/XnnpackBackend #2/cluster ")


def test_executorch_stage_expands_delegates_too(graphs) -> None:
    assert set(partition_groups(graphs["executorch"])) == set(partition_groups(graphs["lowered"]))


# --- before lowering: the partitioner's tags -------------------------------------------


def test_tagged_program_partitions_equal_the_delegation_tag_groups(stages, graphs) -> None:
    program = stages["tagged"].tagged_exported_program
    expected: dict[str, set[str]] = {}
    for node in program.graph.nodes:
        tag = node.meta.get("delegation_tag")
        if tag is not None:
            expected.setdefault(tag, set()).add(node.name)
    assert len(expected) >= 2
    assert partition_groups(graphs["tagged"]) == expected


def test_tagged_partitions_are_named_by_backend_from_the_partition_result(stages, graphs) -> None:
    tags = stages["tagged"].partition_tags
    labels = graphs["tagged"]["groupNodeAttributes"][""]["partitions"].split(", ")
    assert len(labels) == len(tags)
    for index, label in enumerate(labels):
        assert re.fullmatch(rf"XnnpackBackend #{index} \((tag\d+)\)", label), label
    first = partition_layer(graphs["tagged"], labels[0])
    assert graphs["tagged"]["groupNodeAttributes"][first]["backend"] == "XnnpackBackend"


def test_user_partition_function_replaces_the_tags(stages) -> None:
    program = stages["tagged"].tagged_exported_program

    def by_block(node: torch.fx.Node) -> str | None:
        stack = node.meta.get("nn_module_stack") or {}
        paths = [path for path, _ in stack.values()]
        return "first block" if "first" in paths else None

    graph = convert.from_programs(
        [("net", program)], label="net", partition_name=by_block
    ).to_json()["graphs"][0]
    groups = partition_groups(graph)
    expected = {n.name for n in program.graph.nodes if by_block(n) == "first block"}
    assert groups == {"first block": expected}
    assert all("partition #0 (first block)" in by_id(graph)[i]["namespace"].split("/")
               for i in expected)


# --- QDQ clusters ------------------------------------------------------------------------


def expected_clusters(program: torch.export.ExportedProgram) -> dict[str, set[str]]:
    """Read straight off the FX graph: each compute op, the dequantize nodes it reads
    (through a permute), the relu after it and the quantize nodes that follow."""
    def is_q(node: torch.fx.Node, kind: str) -> bool:
        return node.op == "call_function" and str(node.target).startswith(
            f"quantized_decomposed.{kind}"
        )

    clusters = {}
    for node in program.graph.nodes:
        if node.op != "call_function" or is_q(node, "quantize") or is_q(node, "dequantize"):
            continue
        if node.target in (torch.ops.aten.relu.default, operator.getitem):
            continue
        members = {node.name}
        for arg in node.all_input_nodes:
            if is_q(arg, "dequantize"):
                members.add(arg.name)
        after = [u for u in node.users if u.target is torch.ops.aten.relu.default] or [node]
        for user in after:
            if user is not node:
                members.add(user.name)
            members |= {u.name for u in user.users if is_q(u, "quantize")}
        if len(members) > 1:
            clusters[node.name] = members
    return clusters


def cluster_groups(graph: Json) -> dict[str, set[str]]:
    groups: dict[str, set[str]] = {}
    for node in graph["nodes"]:
        name = attrs(node).get("qdq_cluster")
        if name is not None:
            groups.setdefault(name, set()).add(node["id"])
    return groups


def test_clusters_of_the_quantized_program_are_exact(stages, graphs) -> None:
    expected = expected_clusters(stages["quantized"])
    assert set(expected) == {"conv2d", "conv2d_1", "linear", "cumsum", "mean"}
    assert cluster_groups(graphs["quantized"]) == expected


def test_clusters_are_layers_inside_the_module_hierarchy(graphs) -> None:
    graph = graphs["quantized"]
    nodes = by_id(graph)
    for member in cluster_groups(graph)["conv2d"]:
        assert nodes[member]["namespace"] == "first (ConvBlock)/cluster conv2d"
    assert nodes["linear"]["namespace"] == "head (Linear)/cluster linear"
    assert nodes["cumsum"]["namespace"] == "cluster cumsum", "cumsum runs in the root module"
    layer = graph["groupNodeAttributes"]["first (ConvBlock)/cluster conv2d"]
    assert layer["compute op"] == "conv2d" and layer["members"] == "5"


def test_quantization_parameters_on_nodes_and_cluster(stages, graphs) -> None:
    program = stages["quantized"]
    nodes = by_id(graphs["quantized"])
    conv = next(n for n in program.graph.nodes if n.name == "conv2d")
    weight_dq = conv.args[1]
    assert "dequantize_per_channel" in str(weight_dq.target)
    scales = program.state_dict[program.graph_signature.inputs_to_buffers[weight_dq.args[1].name]]
    dq_attrs = attrs(nodes[weight_dq.name])
    assert dq_attrs["axis"] == "0" and dq_attrs["range"] == "[-127, 127]"
    assert dq_attrs["scales"].startswith(f"[{float(scales[0])!r}, ")
    assert dq_attrs["scales"].endswith(f"({scales.numel()} channels)")
    act_dq = conv.args[0]
    act_attrs = attrs(nodes[act_dq.name])
    assert act_attrs["scale"] == repr(float(act_dq.args[1]))
    assert act_attrs["zero_point"] == str(act_dq.args[2]) and act_attrs["dtype"] == "int8"
    layer = graphs["quantized"]["groupNodeAttributes"]["first (ConvBlock)/cluster conv2d"]
    assert f"scale={act_attrs['scale']}" in layer[f"dequantize {act_dq.name}"]
    assert "per-channel axis=0" in layer[f"dequantize {weight_dq.name}"]


def test_clusters_never_cross_a_partition(graphs) -> None:
    for stage in ("tagged", "lowered"):
        nodes = by_id(graphs[stage])
        for name, members in cluster_groups(graphs[stage]).items():
            partitions = {attrs(nodes[m]).get("partition") for m in members}
            assert len(partitions) == 1 and None not in partitions, (stage, name, partitions)
    lowered = cluster_groups(graphs["lowered"])
    assert len(lowered) == 3, lowered  # two convs and the head; cumsum's q/dq are delegated


def test_cluster_names_from_node_meta_win_over_detection(stages) -> None:
    program = copy.deepcopy(stages["quantized"])
    named = {}
    for node in program.graph.nodes:
        if node.name in ("conv2d", "relu", "dequantize_per_tensor"):
            node.meta["cluster"] = "conv+relu"
            named[node.name] = "conv+relu"
    graph = convert.from_programs([("q", program)], label="q").to_json()["graphs"][0]
    assert cluster_groups(graph) == {"conv+relu": set(named)}
    assert by_id(graph)["relu"]["namespace"] == "first (ConvBlock)/cluster conv+relu"


def test_user_cluster_function(stages) -> None:
    program = stages["quantized"]
    graph = convert.from_programs(
        [("q", program)],
        label="q",
        cluster_name=lambda node: "heads" if node.name in ("linear", "mean") else None,
    ).to_json()["graphs"][0]
    assert cluster_groups(graph) == {"heads": {"linear", "mean"}}


# --- colours -----------------------------------------------------------------------------


def first_config(graph: Json, namespace: str) -> Json | None:
    """What Model Explorer does: the first groupNodeConfig whose regex matches."""
    for config in graph.get("groupNodeConfigs", []):
        if re.search(config["namespaceRegex"], namespace):
            return config
    return None


def test_partitions_and_clusters_are_coloured_in_the_json(graphs) -> None:
    graph = graphs["lowered"]
    layers = [ns for ns in graph["groupNodeAttributes"] if ns]
    fills, borders = {}, set()
    for namespace in layers:
        config = first_config(graph, namespace)
        last = namespace.rsplit("/", 1)[-1]
        if last.startswith("cluster "):
            assert config and config["backgroundColor"] == palette.CLUSTER_FILL
        elif last.startswith("XnnpackBackend #"):
            assert config is not None
            fills[last] = config["backgroundColor"]
            borders.add(config["borderColor"])
        else:
            assert config is None, namespace  # module layers keep Model Explorer's shades
    assert len(fills) == len(set(fills.values())) == 3, "one shade per partition"
    assert len(borders) == 1, "one colour per backend"
    nodes = by_id(graph)
    conv = next(n for n in ops(graph) if n["label"] == "convolution")
    assert conv["style"] == {"backgroundColor": fills["XnnpackBackend #0"],
                             "borderColor": palette.CLUSTER_BORDER}
    boundary_q = nodes["lowered_module_0/quantized_decomposed_quantize_per_tensor_default"]
    assert boundary_q["style"]["backgroundColor"] == fills["XnnpackBackend #0"]
    assert boundary_q["style"]["borderColor"] != palette.CLUSTER_BORDER


def test_other_backends_get_other_hues() -> None:
    hues = {palette.backend_hue(b) for b in ("XnnpackBackend", "VulkanBackend", "MyNpuBackend")}
    assert len(hues) == 3
    assert not 20 <= palette.backend_hue("MyNpuBackend") < 60, "amber is for clusters"


# --- stages and names --------------------------------------------------------------------


def test_graph_names_say_the_stage(stages) -> None:
    items = [("net", stages[name]) for name in ("edge", "tagged", "lowered", "executorch")]
    collection = convert.from_programs(items, label="net").to_json()
    ids = [g["id"] for g in collection["graphs"]]
    assert ids == ["net (edge)", "net (tagged)", "net (lowered)", "net (executorch)"]


def test_every_method_of_an_edge_manager() -> None:
    from executorch.exir import to_edge

    class Two(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x.relu()

    programs = {
        "forward": torch.export.export(Two(), (torch.randn(2),)),
        "encode": torch.export.export(Two(), (torch.randn(3),)),
    }
    collection = convert.from_programs([("m", to_edge(programs))], label="m").to_json()
    assert [g["id"] for g in collection["graphs"]] == ["m.encode (edge)", "m.forward (edge)"]


def test_lowered_collection_matches_model_explorer_schema(stages) -> None:
    from model_explorer import graph_builder as gb

    from tests.test_me_format import construct

    collection = convert.from_programs([("net", stages["lowered"])], label="net").to_json()
    construct(gb.GraphCollection, collection, "collection")


def ui_rule_for(rules: list[Json], node: Json) -> Json | None:
    """Model Explorer's node styler: the first rule all of whose queries match."""
    texts = [f"{item['key']}:{item['value']}" for item in node["attrs"]]
    for rule in rules:
        queries = [q for q in rule["queries"] if q["type"] == "regex"]
        if all(any(re.search(q["queryRegex"], t, re.I) for t in texts) for q in queries):
            return rule
    return None


def test_import_rules_colour_op_nodes_like_the_json_does(graphs) -> None:
    rules = [r for r in palette.import_rules() if r["nodeType"] == "op_nodes"]
    for node in graphs["lowered"]["nodes"]:
        rule = ui_rule_for(rules, node)
        style = node.get("style")
        if style is None:
            assert rule is None, node["id"]
            continue
        assert rule is not None, node["id"]
        assert rule["styles"]["node_bg_color"]["value"] in {
            palette.partition_fill(palette_info(node)), palette.CLUSTER_FILL
        }
        assert rule["styles"]["node_border_color"]["value"] == style["borderColor"]


def palette_info(node: Json) -> Any:
    from etviz_lsp.graph.core import ir

    key = attrs(node).get("partition", "")
    backend = key.split("#")[0] if "#" in key else ""
    return ir.PartitionInfo(backend=backend, index=0, label="")


# --- the direct .pt2 reader and the API --------------------------------------------------


def test_direct_pt2_reader_finds_the_same_clusters(stages, graphs, tmp_path) -> None:
    path = tmp_path / "quantized.pt2"
    torch.export.save(stages["quantized"], str(path))
    graph = convert.from_pt2(path).to_json()["graphs"][0]
    assert cluster_groups(graph) == cluster_groups(graphs["quantized"])
    namespaces = {n["id"]: n["namespace"] for n in graph["nodes"]}
    assert namespaces == {n["id"]: n["namespace"] for n in graphs["quantized"]["nodes"]}


def test_visualize_with_clusters_writes_the_json_and_returns(stages, tmp_path) -> None:
    import etviz_lsp

    out = tmp_path / "my_model.json"
    written = etviz_lsp.visualize_with_clusters(
        stages["quantized"],
        str(out),
        get_node_qdq_cluster_name=lambda node: "all" if node.op == "call_function" else None,
    )
    assert written == str(out)
    collection = json.loads(out.read_text())
    assert collection["label"] == "program"
    (graph,) = collection["graphs"]
    assert graph["id"] == "program (quantized)"
    assert set(cluster_groups(graph)) == {"all"}
    etviz_lsp.visualize(stages["lowered"], json_file_name=out)
    lowered = json.loads(out.read_text())["graphs"][0]
    assert lowered["id"] == "program (lowered)"
    assert len(partition_groups(lowered)) == 3, "visualize draws partitions too"


def test_importing_the_package_does_not_import_torch() -> None:
    code = "import sys, etviz_lsp; assert 'torch' not in sys.modules; etviz_lsp.visualize"
    result = subprocess.run([PYTHON, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
