"""The line <-> node map behind navigation (``lsp/source_map.py``, ``lsp/navigation.py``).

The first tests map a real export (the bundled ConvNet, wrapped by a script of the test's
own): ops recorded in the imported model file and in the script. The others feed graph
JSON by hand, for shapes a real run here does not make (a ``.pt2`` from another machine,
partition- and cluster-prefixed ids, sources that do not parse).
"""

from __future__ import annotations

import importlib.util
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from etviz_lsp.lsp import navigation, source_map
from etviz_lsp.lsp.navigation import Mapped, Navigator
from tests.conftest import REPO_ROOT

CONVNET = (REPO_ROOT / "examples" / "convnet.py").resolve()
BLOCK_RETURN = 16  # 0-based: `return self.body(x) + x` in Block.forward
STEM = 27  # 0-based: `x = self.stem(x)` in ConvNet.forward
HEAD = 31  # 0-based: `return self.head(x)`

WRAPPER = textwrap.dedent("""\
    import torch
    from convnet import ConvNet


    class Wrapped(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.net = ConvNet()

        def forward(self, x):
            return torch.sigmoid(self.net(x))
    """)
WRAPPER_SIGMOID = 10  # 0-based line of `torch.sigmoid(...)`


def line_of(path: Path, text: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines()) if text in line)


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """A real export of a script-defined wrapper around the example ConvNet, converted."""
    import torch

    from etviz_lsp.graph import convert

    folder = tmp_path_factory.mktemp("script")
    script = folder / "wrap_convnet.py"
    script.write_text(WRAPPER)
    sys.path.insert(0, str(CONVNET.parent))
    try:
        spec = importlib.util.spec_from_file_location("wrap_convnet", script)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        net = module.Wrapped().eval()
        ep = torch.export.export(net, (torch.randn(1, 3, 8, 8),))
    finally:
        sys.path.remove(str(CONVNET.parent))
    data = convert.from_programs([("ep", ep)], label="wrap_convnet.py").to_json()
    return script.resolve(), data


def test_sanity_of_the_line_constants() -> None:
    assert line_of(CONVNET, "return self.body(x) + x") == BLOCK_RETURN
    assert line_of(CONVNET, "x = self.stem(x)") == STEM
    assert line_of(CONVNET, "return self.head(x)") == HEAD
    assert "torch.sigmoid" in WRAPPER.splitlines()[WRAPPER_SIGMOID]


def test_ops_map_to_the_imported_model_file_and_to_the_script(
    exported: tuple[Path, dict[str, Any]],
) -> None:
    script, data = exported
    smap = source_map.build(data, [script.parent])
    assert set(smap.files) == {CONVNET, script}
    [graph_id] = smap.graph_ids
    # one line of Block.forward makes every op of both blocks, in graph (topological) order
    block = [(n.node_id, n.namespace) for n in smap.nodes_at(CONVNET, BLOCK_RETURN)[graph_id]]
    assert [node for node, _ in block] == [
        "conv2d_1", "batch_norm", "relu", "add", "conv2d_2", "batch_norm_1", "relu_1", "add_1",
    ]
    assert block[0][1] == "net (ConvNet)/stages/0 (Block)/body (Sequential)/0 (Conv2d)"
    stem = smap.nodes_at(CONVNET, STEM)[graph_id]
    assert [(n.node_id, n.namespace) for n in stem] == [("conv2d", "net (ConvNet)/stem (Conv2d)")]
    # the op written in the script itself maps to the script, not to the model file
    assert [n.node_id for n in smap.nodes_at(script, WRAPPER_SIGMOID)[graph_id]] == ["sigmoid"]
    assert smap.nodes_at(CONVNET, WRAPPER_SIGMOID) == {}
    # and back: node -> file and 0-based line
    origin = smap.origin(graph_id, "conv2d_2")
    assert origin is not None and (origin.path, origin.line) == (CONVNET, BLOCK_RETURN)
    assert origin.recorded == f"{CONVNET}:{BLOCK_RETURN + 1}"
    sigmoid = smap.origin(graph_id, "sigmoid")
    assert sigmoid is not None and (sigmoid.path, sigmoid.line) == (script, WRAPPER_SIGMOID)


def test_parameters_inputs_and_outputs_have_no_source(
    exported: tuple[Path, dict[str, Any]],
) -> None:
    script, data = exported
    smap = source_map.build(data, [script.parent])
    [graph_id] = smap.graph_ids
    for node_id in ("x", "output", "p_net_stem_weight"):
        assert smap.has_node(graph_id, node_id)
        assert smap.origin(graph_id, node_id) is None
    mapped = sum(len(nodes[graph_id]) for nodes in smap.lines_of(CONVNET).values())
    ops = [n for n in data["graphs"][0]["nodes"] if _attr(n, "kind") == "op"]
    assert mapped + 1 == len(ops)  # every op but the script's sigmoid is in convnet.py


def _attr(node: dict[str, Any], key: str) -> str | None:
    return next((a["value"] for a in node["attrs"] if a["key"] == key), None)


def node(node_id: str, source: str | None = None, namespace: str = "") -> dict[str, Any]:
    attrs = [{"key": "kind", "value": "op"}]
    if source is not None:
        attrs.append({"key": "source", "value": source})
    return {"id": node_id, "label": node_id.rsplit("/", 1)[-1], "namespace": namespace,
            "attrs": attrs}


def collection(*graphs: tuple[str, list[dict[str, Any]]]) -> dict[str, Any]:
    return {"label": "script.py", "graphs": [{"id": g, "nodes": n} for g, n in graphs]}


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "net.py").write_text("line1\nline2\nline3\n")
    (tmp_path / "script.py").write_text("a\nb\n")
    return tmp_path.resolve()


def test_delegated_and_clustered_ids_are_opaque_and_graphs_keep_their_order(
    project: Path,
) -> None:
    net = f"{project}/models/net.py"
    data = collection(
        ("edge", [node("conv2d", f"{net}:2", "conv (Conv2d)"), node("relu", f"{net}:2")]),
        ("lowered", [
            node("lowered_module_0", None),
            node("lowered_module_0/conv2d", f"{net}:2", "lowered_module_0/conv (Conv2d)"),
            node("cluster (conv2d_1)/quantize_per_tensor", f"{net}:2"),
            node("lowered_module_0/relu", f"{net}:3"),
        ]),
    )
    smap = source_map.build(data, [project])
    at_2 = smap.nodes_at(project / "models" / "net.py", 1)
    assert list(at_2) == ["edge", "lowered"]
    assert [n.node_id for n in at_2["edge"]] == ["conv2d", "relu"]
    assert [n.node_id for n in at_2["lowered"]] == [
        "lowered_module_0/conv2d", "cluster (conv2d_1)/quantize_per_tensor",
    ]
    origin = smap.origin("lowered", "lowered_module_0/relu")
    assert origin is not None and origin.line == 2
    assert smap.origin("lowered", "lowered_module_0") is None
    assert smap.graphs_with("conv2d") == ["edge"]


def test_a_pt2_from_another_machine_maps_to_the_workspace_copy(project: Path) -> None:
    data = collection(("ep", [
        node("a", "/home/someone/checkout/models/net.py:1"),  # longest tail: models/net.py
        node("b", "C:\\Users\\someone\\proj\\script.py:2"),  # a Windows spelling
        node("c", "models/net.py:3"),  # relative to the folder it ran in
        node("d", "/home/someone/checkout/gone.py:1"),  # nowhere here
    ]))
    smap = source_map.build(data, [project / "models", project])
    net = project / "models" / "net.py"
    assert [(o.path, o.line) for o in map(lambda n: smap.origin("ep", n), "abc") if o] == [
        (net, 0), (project / "script.py", 1), (net, 2),
    ]
    gone = smap.origin("ep", "d")
    assert gone is not None and gone.path is None
    assert gone.recorded == "/home/someone/checkout/gone.py:1"
    assert set(smap.files) == {net, project / "script.py"}


def test_sources_that_do_not_parse_count_as_none(project: Path) -> None:
    data = [{"id": "g", "nodes": [  # a bare list of graphs is a shape Model Explorer reads
        node("a", "no line number"), node("b", f"{project}/script.py:0"),
        node("c", f"{project}/script.py:x"), node("d", ""),
    ]}]
    smap = source_map.build(data, [project])
    assert smap.files == []
    assert all(smap.origin("g", n) is None and smap.has_node("g", n) for n in "abcd")
    with pytest.raises(ValueError):
        source_map.build("not a graph", [])


def test_the_map_is_read_from_the_manifest_beside_the_json(project: Path) -> None:
    from etviz_lsp import graph_files
    from etviz_lsp.graph.core.writer import write_json_atomic

    path = project / "graph.json"
    data = collection(("g", [node("n", f"{project}/script.py:2")]))
    files = graph_files.GraphFiles(path)
    write_json_atomic(path, data)
    files.wrote_graph(data["label"], [
        (graph_files.GraphInfo(g["id"], len(g["nodes"])), g["nodes"]) for g in data["graphs"]
    ])
    files.finish()
    path.write_text("not read again")  # the map comes from the manifest
    manifest = graph_files.read(path)
    assert manifest is not None
    smap = source_map.from_manifest(manifest, [project])
    assert smap.label == "script.py"
    assert [n.node_id for n in smap.nodes_at(project / "script.py", 1)["g"]] == ["n"]


# -- the navigator: which graph a line resolves to, answers, lenses ----------------------


def navigator_for(project: Path, urls: list[tuple[Path, dict[str, Any]]]) -> Navigator:
    net = f"{project}/models/net.py"
    data = collection(
        ("exported", [node("conv2d", f"{net}:2", "stem (Conv2d)"), node("x")]),
        ("quantized", [
            node("dq", f"{net}:2"), node("conv2d", f"{net}:2", "stem (Conv2d)"),
            node("q", f"{net}:2"), node("linear", f"{net}:3", "head (Linear)"),
        ]),
    )

    def url_maker(graph_file: Path, state: dict[str, Any]) -> str:
        urls.append((graph_file, state))
        return f"http://127.0.0.1:1/?{len(urls)}"

    nav = Navigator(url_maker)
    script = project / "script.py"
    nav.graph_shown(Mapped(script, project / "graph.json", source_map.build(data, [project])))
    return nav


def test_node_at_picks_the_first_graph_then_the_one_navigated_in(project: Path) -> None:
    urls: list[tuple[Path, dict[str, Any]]] = []
    nav = navigator_for(project, urls)
    net = project / "models" / "net.py"
    answer = nav.node_at(net, 1)
    assert answer["source"] == (project / "script.py").as_uri()
    assert (answer["graphId"], answer["nodeIds"], answer["namespaces"]) == (
        "exported", ["conv2d"], ["stem (Conv2d)"],
    )
    assert answer["graphs"] == [{"graphId": "exported", "count": 1},
                                {"graphId": "quantized", "count": 3}]
    assert answer["url"] == "http://127.0.0.1:1/?1"
    graph_file, state = urls[0]
    assert graph_file == project / "graph.json"
    [pane] = state["paneStates"]
    assert pane["selectedNodeId"] == "conv2d"
    assert pane["selectedGraphId"] == "exported"
    assert pane["deepestExpandedGroupNodeIds"] == ["stem (Conv2d)___group___"]
    # an explicit graph wins; a node selected in the page makes its graph the default
    assert nav.node_at(net, 1, "quantized")["nodeIds"] == ["dq", "conv2d", "q"]
    assert nav.source_of(None, "q")["graphId"] == "quantized"
    assert nav.node_at(net, 1)["graphId"] == "quantized"
    assert nav.line_counts(net) == {1: ("quantized", 3), 2: ("quantized", 1)}
    # a line that made nothing
    assert nav.node_at(net, 0) == {"source": None, "graphId": None, "nodeIds": [],
                                   "namespaces": [], "graphs": []}


def test_source_of_answers_and_reasons(project: Path) -> None:
    nav = navigator_for(project, [])
    net_uri = (project / "models" / "net.py").as_uri()
    assert nav.source_of("quantized", "linear") == {
        "uri": net_uri, "line": 2, "graphId": "quantized", "nodeId": "linear",
        "source": (project / "script.py").as_uri(),
    }
    assert nav.source_of("exported", "x")["reason"] == navigation.NO_SOURCE
    assert nav.source_of("exported", "x")["uri"] is None
    assert nav.source_of("exported", "nope")["reason"] == navigation.UNKNOWN_NODE
    # the page's selection message has no graph id: the node is found by id
    assert nav.source_of(None, "linear")["line"] == 2
    assert nav.source_of("not a graph", "linear")["uri"] == net_uri  # unknown graph: by id


def test_show_in_graph_makes_its_graph_current(project: Path) -> None:
    nav = navigator_for(project, [])
    net = project / "models" / "net.py"
    assert nav.show_in_graph(net, 2)["graphId"] == "quantized"  # only graph with line 3
    assert nav.node_at(net, 1)["graphId"] == "quantized"


def test_a_newer_graph_of_another_script_wins_and_a_rerun_replaces_the_map(
    project: Path,
) -> None:
    nav = navigator_for(project, [])
    net = project / "models" / "net.py"
    other = project / "other.py"
    data = collection(("other ep", [node("mm", f"{net}:2"), node("linear", f"{net}:1")]))
    nav.graph_shown(Mapped(other, project / "other.json", source_map.build(data, [project])))
    answer = nav.node_at(net, 1)
    assert (answer["source"], answer["nodeIds"]) == (other.as_uri(), ["mm"])
    # a node id both collections hold: the graph id says which one
    assert nav.source_of("quantized", "linear")["line"] == 2
    assert nav.source_of("other ep", "linear")["line"] == 0
    assert nav.source_of(None, "linear")["source"] == other.as_uri()  # the newest
    assert nav.line_counts(net) == {0: ("other ep", 1), 1: ("other ep", 1), 2: ("quantized", 1)}
    # a re-run of the first script makes it the most recent again, with its new map
    rerun = collection(("exported", [node("conv2d_9", f"{net}:2")]))
    script = project / "script.py"
    nav.graph_shown(Mapped(script, project / "graph.json", source_map.build(rerun, [project])))
    assert nav.node_at(net, 1)["nodeIds"] == ["conv2d_9"]
    assert nav.node_at(net, 2)["nodeIds"] == []  # the old map's linear is gone
    assert nav.source_of(None, "mm", other)["line"] == 1


def test_hover_lists_the_ops_per_graph(project: Path) -> None:
    nav = navigator_for(project, [])
    text = nav.hover_text(project / "models" / "net.py", 1)
    assert text is not None
    assert text.splitlines() == [
        "**etviz**: 1 op in `exported`",
        "- `exported`: `conv2d`",
        "- `quantized`: `dq`, `conv2d`, `q`",
    ]
    assert nav.hover_text(project / "models" / "net.py", 0) is None


def test_layer_prefixes_and_lens_titles() -> None:
    assert navigation.layer_prefixes("a (A)/b (B)/c") == ["a (A)", "a (A)/b (B)", "a (A)/b (B)/c"]
    assert navigation.layer_prefixes("") == []
    assert navigation.lens_title(1) == "Show in Graph (1 op)"
    assert navigation.lens_title(3) == "Show in Graph (3 ops)"
