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
