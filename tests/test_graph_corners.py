"""The corners of torch.export (issue 21), each converted by both readers.

Every program in ``tests/corners.py`` is exported once, converted live (``fx_reader``),
saved with ``torch.export.save`` and read back by the direct ``.pt2`` reader and by
torch's own loader. For each: ids unique, every FX node a node, every input an edge,
the two readers' graphs equal; then what each corner must show.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import torch

from etviz_lsp.errors import EtvizError
from etviz_lsp.graph import convert
from etviz_lsp.graph.core import check, writer
from tests import corners
from tests.conftest import PYTHON

Json = dict[str, Any]


class Converted:
    """One corner program: the live program and its graphs by each path."""

    def __init__(self, program: torch.export.ExportedProgram, path: Path) -> None:
        self.program = program
        self.live = convert.from_programs([(path.stem, program)], label=path.name).to_json()
        torch.export.save(program, str(path))
        self.direct = convert.from_pt2(path).to_json()
        self.loaded = convert.from_pt2_loaded(path).to_json()

    def graph(self, suffix: str = "") -> Json:
        wanted = self.live["graphs"][0]["id"] + suffix
        (found,) = [g for g in self.direct["graphs"] if g["id"] == wanted]
        return found


@pytest.fixture(scope="session")
def converted(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Converted]:
    folder = tmp_path_factory.mktemp("corners")
    return {
        name: Converted(make(), folder / f"{name}.pt2") for name, make in corners.CORNERS.items()
    }


def by_id(graph: Json) -> dict[str, Json]:
    return {node["id"]: node for node in graph["nodes"]}


def attrs(node: Json) -> dict[str, str]:
    return {item["key"]: item["value"] for item in node["attrs"]}


def sources(node: Json) -> list[str]:
    return [edge["sourceNodeId"] for edge in node["incomingEdges"]]


def fx_graphs(program: torch.export.ExportedProgram) -> dict[str, torch.fx.Graph]:
    """Each graph module's FX graph by the graph id etviz gives it (nested: parent/attr)."""
    found: dict[str, torch.fx.Graph] = {}

    def walk(module: torch.fx.GraphModule, graph_id: str) -> None:
        found[graph_id] = module.graph
        for node in module.graph.nodes:
            if node.op == "get_attr":
                sub = getattr(module, str(node.target), None)
                sub_id = f"{graph_id}/{node.target}"
                if isinstance(sub, torch.fx.GraphModule) and sub_id not in found:
                    walk(sub, sub_id)

    return walk(program.graph_module, "") or found


# ---- what every corner must keep -------------------------------------------------------


@pytest.mark.parametrize("name", list(corners.CORNERS))
def test_ids_edges_links_and_namespaces_are_well_formed(
    name: str, converted: dict[str, Converted]
) -> None:
    item = converted[name]
    for collection in (item.live, item.direct, item.loaded):
        assert check.problems(collection) == []


@pytest.mark.parametrize("name", list(corners.CORNERS))
def test_every_fx_node_is_a_node_and_every_input_an_edge(
    name: str, converted: dict[str, Converted]
) -> None:
    item = converted[name]
    graphs = {g["id"]: g for g in item.live["graphs"]}
    root = item.live["graphs"][0]["id"]
    fx = fx_graphs(item.program)
    assert {root + suffix for suffix in fx} == set(graphs), "one graph per graph module"
    for suffix, fx_graph in fx.items():
        nodes = by_id(graphs[root + suffix])
        assert [n.name for n in fx_graph.nodes] == list(nodes)
        for fx_node in fx_graph.nodes:
            expected = [src.name for src in fx_node.all_input_nodes]
            assert sorted(set(sources(nodes[fx_node.name]))) == sorted(expected), fx_node.name


# Nodes torch's loader adds to a program it reads back (the direct reader mirrors the
# loader): a getitem for the unused None output of a functionalized mutating op.
LOADER_ADDS = {"custom_ops_decomposed": {"as_none"}}


@pytest.mark.parametrize("name", list(corners.CORNERS))
def test_both_readers_give_the_same_graphs(name: str, converted: dict[str, Converted]) -> None:
    item = converted[name]
    assert item.direct == item.loaded, "direct .pt2 reader = torch's loader + live reader"
    live, direct = item.live["graphs"], item.direct["graphs"]
    assert [g["id"] for g in live] == [g["id"] for g in direct]
    added = LOADER_ADDS.get(name, set())
    for mine, theirs in zip(live, direct, strict=True):
        kept = [n for n in theirs["nodes"] if n["id"] not in added]
        assert mine["nodes"] == kept, mine["id"]
        summary = dict(theirs["groupNodeAttributes"][""])
        extra_ops = len(theirs["nodes"]) - len(kept)
        summary["operator calls"] = str(int(summary["operator calls"]) - extra_ops)
        layers = {**theirs["groupNodeAttributes"], "": summary}
        assert mine == {**theirs, "nodes": kept, "groupNodeAttributes": layers}
    assert added <= {n["id"] for n in direct[0]["nodes"]}, "what the loader adds is there"


# ---- what each corner shows ------------------------------------------------------------


def test_a_shared_subgraph_is_one_graph_both_calls_run(converted: dict[str, Converted]) -> None:
    main = converted["shared_subgraph"].graph()
    shared = converted["shared_subgraph"].graph("/repeated_subgraph0")
    assert len(converted["shared_subgraph"].direct["graphs"]) == 2
    nodes = by_id(main)
    for load, call in (("repeated_subgraph0", "invoke_subgraph"),
                       ("repeated_subgraph0_1", "invoke_subgraph_1")):  # fmt: skip
        assert nodes[load]["subgraphIds"] == [shared["id"]]
        assert nodes[call]["subgraphIds"] == [shared["id"]]
        assert load in sources(nodes[call])
        assert attrs(nodes[call])["arg 1"] == "subgraph_0"
    assert sources(nodes["invoke_subgraph_1"])[1] == "getitem", "second call reads the first"


def test_an_input_named_like_a_branch_graph_is_just_an_input(
    converted: dict[str, Converted],
) -> None:
    main = converted["colliding_input"].graph()
    nodes = by_id(main)
    assert attrs(nodes["true_graph_0"])["kind"] == "input"
    assert "subgraphIds" not in nodes["true_graph_0"]
    assert "subgraphIds" not in nodes["sum_1"], "an op reading the input runs no graph"
    branches = [f"{main['id']}/true_graph_0", f"{main['id']}/false_graph_0"]
    assert nodes["cond"]["subgraphIds"] == branches
    assert nodes["true_graph_1"]["subgraphIds"] == branches[:1]
    assert sources(nodes["cond"]) == ["gt", "true_graph_1", "false_graph_1",
                                      "true_graph_0", "false_graph_0"]  # fmt: skip
    # Inputs named ``getitem`` and ``output``: torch's own nodes get other names.
    assert attrs(nodes["getitem"])["kind"] == attrs(nodes["output"])["kind"] == "input"
    assert sources(nodes["getitem_1"]) == ["cond"]
    assert sources(nodes["mul"]) == ["linear", "getitem"]
    assert attrs(nodes["output_1"])["kind"] == "output"
    # A submodule named like the branch graph: its layer, not the graph.
    assert nodes["linear"]["namespace"] == "true_graph_0 (Linear)"
    assert nodes["p_true_graph_0_weight"]["namespace"] == "true_graph_0 (Linear)"
    for name in ("linear", "p_true_graph_0_weight"):
        assert "subgraphIds" not in nodes[name], name


def test_nested_and_repeated_conds_each_link_their_own_branches(
    converted: dict[str, Converted],
) -> None:
    item = converted["nested_cond"]
    ids = [g["id"] for g in item.direct["graphs"]]
    root = ids[0]
    assert len(ids) == 7 == len(set(ids))
    outer_true = item.graph("/true_graph_0")
    assert by_id(outer_true)["cond"]["subgraphIds"] == [
        f"{root}/true_graph_0/true_graph_0", f"{root}/true_graph_0/false_graph_0"
    ]
    assert by_id(item.graph())["cond_1"]["subgraphIds"] == [
        f"{root}/true_graph_1", f"{root}/false_graph_1"
    ]
    params = by_id(item.graph())["p_inner_lin_weight"]
    assert params["namespace"] == "inner (Inner)/lin", "owner's layer, not the root's"


def test_loops_link_their_graphs_and_state_sits_with_its_owner(
    converted: dict[str, Converted],
) -> None:
    item = converted["loops"]
    main = item.graph()
    nodes = by_id(main)
    root = main["id"]
    assert nodes["while_loop"]["subgraphIds"] == [
        f"{root}/while_loop_cond_graph_0", f"{root}/while_loop_body_graph_0"
    ]
    assert nodes["while_loop_1"]["subgraphIds"] == [
        f"{root}/while_loop_cond_graph_1", f"{root}/while_loop_body_graph_1"
    ], "a second loop runs its own graphs"
    assert nodes["map_impl"]["subgraphIds"] == [f"{root}/body_graph_0"]
    assert nodes["scan"]["subgraphIds"] == [f"{root}/scan_combine_graph_0"]
    weight = nodes["p_lin_weight"]
    assert weight["namespace"] == "lin" and attrs(weight)["module"] == "lin"
    layers = main["groupNodeAttributes"]
    assert "parameters" not in layers, "no 'module state owned by the root module' layer"
    assert layers["lin"]["parameters"] == "12"


def test_custom_ops_show_their_literal_arguments(converted: dict[str, Converted]) -> None:
    nodes = by_id(converted["custom_ops"].graph())
    scaled = attrs(nodes["scaled"])
    assert scaled["target"] == "etviz_corners.scaled.default"
    assert (scaled["factor"], scaled["mode"]) == ("0.5", "fast")
    assert attrs(nodes["accumulate"])["weight"] == "3"
    assert sources(nodes["accumulate"]) == ["b_total", "scaled"]
    assert nodes["accumulate"]["outputsMetadata"] == [], "a mutating op returns nothing"
    functional = by_id(converted["custom_ops_decomposed"].graph())
    wrapped = attrs(functional["auto_functionalized_v2"])
    assert (wrapped["weight"], wrapped["_total_base_index"]) == ("3", "0"), "keyword literals"
    assert attrs(functional["getitem_1"])["mutates"] == "total"


def me_split(namespace: str) -> list[str]:
    """Model Explorer's ``splitNamespace`` (0.1.34 web app), then its label unescape."""
    marker = "\x00"
    pieces = namespace.replace("\\/", marker).split("/")
    return [p.replace(marker, "/") for p in pieces if p]


def test_odd_module_names_keep_their_own_layers(converted: dict[str, Converted]) -> None:
    main = converted["odd_names"].graph()
    nodes = by_id(main)
    layers = main["groupNodeAttributes"]
    assert nodes["linear"]["namespace"] == "a\\/b (Linear)"
    assert nodes["linear_1"]["namespace"] == "a_b (Linear)"
    assert attrs(nodes["linear"])["module"] == "a/b"
    assert me_split(nodes["conv1d"]["namespace"]) == ["bad name (x)", "conv/odd (Conv1d)"]
    assert attrs(nodes["conv1d"])["module"] == "bad name (x).conv/odd"
    for param, op in [("p_a_b_weight", "linear"), ("p_a_b_weight_1", "linear_1"),
                      ("p_bad_name__x__conv_odd_weight", "conv1d"),
                      ("p_dash_name_weight", "linear_2"), ("p__n_code_weight", "linear_3"),
                      ("p_7_weight", "linear_4")]:  # fmt: skip
        assert nodes[param]["namespace"] == nodes[op]["namespace"], param
    assert layers["bad name (x)/conv\\/odd (Conv1d)"]["parameters"] == "2"
    assert layers["a\\/b (Linear)"]["parameters"] == "20"
    assert {"ünïcode (Linear)", "dash-name (Linear)", "7 (Linear)"} <= set(layers)
    assert "parameters" not in layers
    # A module named ``constants`` (never called) and the root's lifted constant: two layers.
    assert nodes["p_constants_weight"]["namespace"] == "constants"
    assert layers["constants"]["path"] == "constants"
    assert nodes["c_lifted_tensor_0"]["namespace"] == "constants #2"
    assert layers["constants #2"] == {"kind": "module state owned by the root module"}


def test_every_literal_is_shown(converted: dict[str, Converted]) -> None:
    nodes = by_id(converted["literals"].graph())
    symbol = next(
        a["value"] for m in nodes["sym_size_int_1"]["outputsMetadata"] for a in m["attrs"]
        if a["key"] == "value"
    )
    assert attrs(nodes["add"])["other"] == "1j"
    assert attrs(nodes["pad"])["pad"] == f"[0, {symbol}]"
    assert attrs(nodes["mul"])["b"] == "2" and attrs(nodes["floordiv"])["b"] == "2"
    assert attrs(nodes["new_ones"])["size"] == f"[({symbol}//2), 2]"
    assert attrs(nodes["index"])["indices"] == "[None, i]"
    zeros = attrs(nodes["zeros"])
    assert (zeros["dtype"], zeros["layout"], zeros["device"]) == ("float16", "strided", "cpu")
    assert attrs(nodes["clone"])["memory_format"] == "channels_last"


def test_outputs_of_every_kind_are_shown(converted: dict[str, Converted]) -> None:
    nodes = by_id(converted["outputs"].graph())
    output = nodes["output"]
    assert attrs(output)["values"] == "[mul, sym_size_int_1, True, None, add, sub, sum_1]"
    assert sources(output) == ["mul", "sym_size_int_1", "add", "sub", "sum_1"]
    shape = [a["value"] for m in nodes["sym_size_int_1"]["outputsMetadata"] for a in m["attrs"]]
    assert shape[0].startswith("SymInt: s")


# ---- the structural check itself -------------------------------------------------------


def duplicated(collection: Json) -> Json:
    graph = collection["graphs"][0]
    first = graph["nodes"][0]
    return {**collection, "graphs": [{**graph, "nodes": [*graph["nodes"], dict(first)]}]}


def test_the_check_finds_each_kind_of_fault(converted: dict[str, Converted]) -> None:
    good = converted["nested_cond"].direct
    assert check.problems(good) == []
    assert "repeated" in check.problems(duplicated(good))[0]
    graph = good["graphs"][0]
    broken_edge = {**graph, "nodes": [{**graph["nodes"][3], "incomingEdges": [
        {"sourceNodeId": "nowhere", "sourceNodeOutputId": "0", "targetNodeInputId": "0"}]}]}
    assert "missing node 'nowhere'" in check.problems([broken_edge])[0]
    cond = next(n for n in graph["nodes"] if n["id"] == "cond")
    alone = {**cond, "incomingEdges": []}
    assert "missing graph" in check.problems([{**graph, "nodes": [alone]}])[0]
    for namespace in ("a//b", "/a", "a/", "x;y"):
        assert check.namespace_problem(namespace), namespace
    assert check.namespace_problem("a\\/b (Linear)/c") is None


def test_the_writer_refuses_a_malformed_graph_and_reports_it(
    converted: dict[str, Converted], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    report = tmp_path / "report.txt"
    monkeypatch.setenv(check.CHECK_ENV, str(report))
    target = tmp_path / "graph.json"
    target.write_text('{"label": "last good", "graphs": []}')
    with pytest.raises(EtvizError, match="node id .* repeated"):
        writer.write_json_atomic(target, duplicated(converted["custom_ops"].direct))
    assert target.read_text() == '{"label": "last good", "graphs": []}'
    assert "repeated" in report.read_text()


def test_a_subprocess_writing_a_malformed_graph_is_reported(
    converted: dict[str, Converted], tmp_path: Path
) -> None:
    """Children inherit the check (the suite's report is read when it ends)."""
    assert os.environ.get(check.CHECK_ENV), "the suite checks every graph it writes"
    source = tmp_path / "bad.json"
    source.write_bytes(writer.dumps(duplicated(converted["custom_ops"].direct)))
    report = tmp_path / "child-report.txt"
    script = (
        "import json, sys; from pathlib import Path\n"
        "from etviz_lsp.graph.core.writer import write_json_atomic\n"
        "write_json_atomic(Path(sys.argv[2]), json.loads(Path(sys.argv[1]).read_text()))\n"
    )
    env = {**os.environ, check.CHECK_ENV: str(report)}  # not the suite's: this one is meant
    done = subprocess.run(
        [PYTHON, "-c", script, str(source), str(tmp_path / "out.json")],
        env=env, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode != 0 and "malformed graph" in done.stderr
    assert "node id" in report.read_text() and not (tmp_path / "out.json").exists()


# ---- Model Explorer's own reading of our namespaces ------------------------------------

_ME_SPLIT = re.compile(
    r'function (\w+)\((\w+)\)\{return \2\.replace\(/\\\\\\//g,"___escaped_slash___"\)'
    r'\.split\("/"\)[^}]*\}'
)
_ME_UNESCAPE = re.compile(r'function (\w+)\((\w+)\)\{return \2\.replace\(/\\\\\\//g,"/"\)\}')


def model_explorer_layers(namespaces: list[str]) -> list[list[str]]:
    """Each namespace as the installed Model Explorer web app splits it into layers and
    labels them: its own ``splitNamespace`` and unescape, read from its bundle, run in Node."""
    import model_explorer

    bundles = list((Path(model_explorer.__file__).parent / "web_app").glob("worker-*.js"))
    assert bundles, "Model Explorer's web app worker bundle"
    code = bundles[0].read_text(encoding="utf-8")
    split, unescape = _ME_SPLIT.search(code), _ME_UNESCAPE.search(code)
    assert split and unescape, "Model Explorer changed how it splits namespaces"
    split_fn, unescape_fn = split.group(1), unescape.group(1)
    script = (
        f"{split.group(0)}\n{unescape.group(0)}\n"
        "const input = JSON.parse(require('fs').readFileSync(0, 'utf8'));\n"
        f"const layers = input.map(ns => {split_fn}(ns).map({unescape_fn}));\n"
        "console.log(JSON.stringify(layers));"
    )
    done = subprocess.run(
        ["node", "-e", script], input=json.dumps(namespaces), capture_output=True, text=True,
        timeout=60, check=True,
    )
    return json.loads(done.stdout)


def test_model_explorer_reads_odd_names_as_the_modules_they_are(
    converted: dict[str, Converted],
) -> None:
    main = converted["odd_names"].graph()
    nodes = by_id(main)
    wanted = {
        "linear": ["a/b (Linear)"],
        "linear_1": ["a_b (Linear)"],
        "conv1d": ["bad name (x)", "conv/odd (Conv1d)"],
        "linear_2": ["dash-name (Linear)"],
        "linear_3": ["ünïcode (Linear)"],
        "linear_4": ["7 (Linear)"],
    }
    seen = model_explorer_layers([nodes[name]["namespace"] for name in wanted])
    assert dict(zip(wanted, seen, strict=True)) == wanted
    layers = [ns for ns, layer in main["groupNodeAttributes"].items() if "path" in layer]
    paths = [main["groupNodeAttributes"][ns]["path"] for ns in layers]
    depths = [len(labels) for labels in model_explorer_layers(layers)]
    assert depths == [path.count(".") + 1 for path in paths], "one layer per module level"


def test_names_with_commas_and_semicolons_read_where_torch_cannot_load_them(
    tmp_path: Path,
) -> None:
    program = corners.names_torch_cannot_load()
    path = tmp_path / "commas.pt2"
    torch.export.save(program, str(path))
    with pytest.raises(RuntimeError, match="error when deserializing"):
        torch.export.load(str(path))  # torch's own loader splits the names apart
    direct = convert.from_pt2(path).to_json()
    live = convert.from_programs([(path.stem, program)], label=path.name).to_json()
    assert direct == live
    nodes = by_id(direct["graphs"][0])
    assert attrs(nodes["linear"])["module"] == "a,b"
    assert attrs(nodes["linear_1"])["module"] == "c;d"
    namespaces = [nodes["linear"]["namespace"], nodes["linear_1"]["namespace"]]
    assert model_explorer_layers(namespaces) == [["a,b (Linear)"], ["c\uff1bd (Linear)"]]
    assert nodes["p_c_d_weight"]["namespace"] == nodes["linear_1"]["namespace"]


def test_a_name_repeated_in_an_archive_still_gives_unique_ids(
    converted: dict[str, Converted], tmp_path: Path
) -> None:
    """A damaged or hand-made archive may name two values alike (torch's own writer does
    not): the second node gets ``name#2`` and its consumers read it, not the first."""
    from tests.test_pt2_archive import rewrite

    def rename_add(name: str, data: bytes) -> bytes:
        if "/models/" not in name:
            return data
        program = json.loads(data)
        graph = program["graph_module"]["graph"]
        for node in graph["nodes"]:
            if node.get("name") == "add":
                node["outputs"][0]["as_tensor"]["name"] = "scaled"
        graph["outputs"] = [{"as_tensor": {"name": "scaled"}}]
        return json.dumps(program).encode()

    source = tmp_path / "custom_ops.pt2"
    torch.export.save(converted["custom_ops"].program, str(source))
    damaged = rewrite(source, tmp_path / "repeated.pt2", rename_add)
    collection = convert.from_pt2(damaged).to_json()
    assert check.problems(collection) == []
    nodes = by_id(collection["graphs"][0])
    assert attrs(nodes["scaled"])["target"] == "etviz_corners.scaled.default"
    assert attrs(nodes["scaled#2"])["target"] == "aten.add.Tensor"
    assert sources(nodes["scaled#2"]) == ["scaled", "b_total"], "reads the first, defined before"
    assert sources(nodes["output"]) == ["scaled#2"], "the output reads the latest"
