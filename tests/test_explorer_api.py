"""``visualize`` / ``visualize_with_clusters``: write a JSON, or show through the shared server."""

from __future__ import annotations

import http.client
import json
import sys
from pathlib import Path
from urllib.parse import parse_qs, quote, urlsplit

import pytest
import torch

from etviz_lsp import api, explorer
from tests.explorer_fixtures import REPO_ROOT, explorer_home, server_processes  # noqa: F401


@pytest.fixture(scope="module")
def program() -> torch.export.ExportedProgram:
    sys.path.insert(0, str(REPO_ROOT / "examples"))
    try:
        from convnet import ConvNet, example_inputs
    finally:
        sys.path.remove(str(REPO_ROOT / "examples"))
    return torch.export.export(ConvNet().eval(), example_inputs())


def shown_graph(url: str) -> dict:
    """The graph JSON the server hands the page for this URL (through the guard)."""
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    model = json.loads(query["data"][0])["models"][0]["url"]
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    token = query["etviz_token"][0]
    conn.request("GET", f"/api/v1/read_text_file?path={quote(model)}&etviz_token={token}")
    response = conn.getresponse()
    assert response.status == 200
    return json.loads(json.loads(response.read())["content"])


def test_json_file_name_writes_and_starts_no_server(
    program: torch.export.ExportedProgram,
    tmp_path: Path,
    explorer_home: Path,  # noqa: F811
) -> None:
    target = tmp_path / "my_model.json"
    assert api.visualize(program, str(target)) == str(target)
    data = json.loads(target.read_text())
    assert data["label"] == "program" and data["graphs"][0]["id"] == "program (exported)"
    assert explorer.current_server() is None and server_processes(explorer_home) == []


def test_cluster_function_is_applied(
    program: torch.export.ExportedProgram, tmp_path: Path
) -> None:
    target = tmp_path / "clusters.json"
    api.visualize_with_clusters(
        program, target, get_node_qdq_cluster_name=lambda n: "stem" if n.name == "conv2d" else None
    )
    nodes = json.loads(target.read_text())["graphs"][0]["nodes"]
    clustered = [n["id"] for n in nodes if {"key": "qdq_cluster", "value": "stem"} in n["attrs"]]
    assert clustered == ["conv2d"]
    plain = tmp_path / "plain.json"
    api.visualize_with_clusters(program, plain)  # a float model: no cluster found
    assert "qdq_cluster" not in plain.read_text()


def test_visualize_shows_through_the_shared_server(
    program: torch.export.ExportedProgram,
    explorer_home: Path,  # noqa: F811
) -> None:
    url = api.visualize(program, no_open_in_browser=True, timeout=90)
    server = explorer.current_server()
    assert server is not None and url.startswith(server.base_url + "/?")
    graph = shown_graph(url)
    assert graph["graphs"][0]["id"] == "program (exported)"

    # ExecuTorch's positional style visualize(ep, reuse_server, no_open_in_browser)
    again = api.visualize(program, True, True)
    assert again == url and explorer.current_server() == server
    assert [p.pid for p in server_processes(explorer_home)] == [server.pid]


def _fancy_relu_pass_result(program: torch.export.ExportedProgram) -> tuple[object, object]:
    """A real ExecuTorch pass on the edge program: every relu becomes a custom op (a
    backend's own op, which the edge dialect's verifier refuses)."""
    from executorch.exir import to_edge
    from executorch.exir.dialects._ops import ops as exir_ops
    from executorch.exir.pass_base import ExportPass

    namespace = "etviz_test"
    if not hasattr(torch.ops, namespace) or not hasattr(torch.ops.etviz_test, "fancy_relu"):
        @torch.library.custom_op(f"{namespace}::fancy_relu", mutates_args=())
        def fancy_relu(x: torch.Tensor) -> torch.Tensor:
            return x.clamp_min(0)

        @fancy_relu.register_fake
        def _(x: torch.Tensor) -> torch.Tensor:
            return torch.empty_like(x)

    class ReluToFancy(ExportPass):
        def call_operator(self, op, args, kwargs, meta):  # type: ignore[no-untyped-def]
            if op == exir_ops.edge.aten.relu.default:
                op = torch.ops.etviz_test.fancy_relu.default
            return super().call_operator(op, args, kwargs, meta)

    edge = to_edge(program)
    result = ReluToFancy()(edge.exported_program().graph_module)
    assert result is not None and result.modified
    return edge, result.graph_module


def test_visualize_graph_shows_a_pass_result_with_custom_ops(
    program: torch.export.ExportedProgram, tmp_path: Path
) -> None:
    from executorch.exir.program._program import _update_exported_program_graph_module

    edge, graph_module = _fancy_relu_pass_result(program)
    with pytest.raises(Exception, match="fancy_relu"):  # what a plain program would say
        _update_exported_program_graph_module(edge.exported_program(), graph_module)

    target = tmp_path / "after_pass.json"
    assert api.visualize_graph(
        graph_module, edge, json_file_name=target, name="after_pass",
        get_node_partition_name=lambda n: "npu" if "convolution" in n.name else None,
    ) == str(target)
    (graph,) = json.loads(target.read_text())["graphs"]
    api.visualize(edge, tmp_path / "before.json", name="before")
    before = json.loads((tmp_path / "before.json").read_text())["graphs"][0]
    fancy = [n for n in graph["nodes"] if "fancy_relu" in n["label"]]
    relus = [n for n in before["nodes"] if n["label"].endswith("relu")]
    assert fancy and len(fancy) == len(relus), (len(fancy), len(relus))
    # The pass kept each op's module: the custom op sits in the layer the relu sat in.
    assert sorted(n["namespace"] for n in fancy) == sorted(n["namespace"] for n in relus)
    convs = [n for n in graph["nodes"] if "convolution" in n["id"]]
    assert convs and all(n["namespace"].startswith("partition #0 (npu)") for n in convs)
