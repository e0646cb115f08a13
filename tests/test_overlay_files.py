"""The overlay naming rule: which node-data files a graph page loads with its graph, and in
which order (``graph_files``: the files the graph's manifest lists)."""

from __future__ import annotations

from pathlib import Path

from etviz_lsp.graph_files import GraphFiles, GraphInfo, node_data_of, overlay_path


def _run(graph: Path, *overlays: tuple[str, str], amend: bool = False) -> list[Path]:
    """A run that writes ``graph`` (``amend``: rewrites it keeping its node ids) and the
    given node data beside it; the overlay files written."""
    files = GraphFiles.amend(graph) if amend else GraphFiles(graph)
    graph.write_text('{"label": "m", "graphs": [{"id": "g", "nodes": []}]}')
    files.wrote_graph("m", [(GraphInfo("g", 0), [])])
    written = [files.write_overlay(overlay, metric, {}) for overlay, metric in overlays]
    files.finish()
    return written


def current_overlays(graph: Path) -> list[Path]:
    return list(node_data_of(graph).files)


def test_overlay_path_sits_beside_the_graph(tmp_path: Path) -> None:
    assert overlay_path(tmp_path / "m.json", "latency", "avg") == tmp_path / "m.latency-avg.json"


def test_a_page_loads_only_this_runs_overlays_the_colouring_one_last(tmp_path: Path) -> None:
    graph = tmp_path / "m.json"
    [stale] = _run(graph, ("latency", "avg"))  # an earlier run's
    (tmp_path / "m.v2.json").write_text("{}")  # another graph, not an overlay
    (tmp_path / "other.latency-avg.json").write_text("{}")  # another graph's overlay
    p50, sqnr = _run(graph, ("latency", "p50"), ("numeric", "sqnr"))
    found = current_overlays(graph)
    assert found == [p50, sqnr]  # Model Explorer colours by the last one loaded
    assert stale not in found
    [avg] = _run(graph, ("latency", "avg"), amend=True)  # a profile: node ids kept
    assert current_overlays(graph) == [p50, sqnr, avg]
    # A .pte's memory plan: bytes alive colour the graph, unless numbers or time are there.
    live, made = _run(graph, ("memory", "live"), ("memory", "out"), amend=True)
    assert current_overlays(graph) == [p50, made, live, sqnr, avg]


def test_a_rewrite_keeping_ids_keeps_its_overlays(tmp_path: Path) -> None:
    graph = tmp_path / "m.json"
    [stale] = _run(graph, ("latency", "avg"))
    [sqnr] = _run(graph, ("numeric", "sqnr"))
    _run(graph, amend=True)
    assert current_overlays(graph) == [sqnr]
    assert stale not in current_overlays(graph)


def test_a_graph_with_glob_characters_in_its_name(tmp_path: Path) -> None:
    [avg] = _run(tmp_path / "m[1].json", ("latency", "avg"))
    assert current_overlays(tmp_path / "m[1].json") == [avg]


def test_no_graph_no_overlays(tmp_path: Path) -> None:
    assert current_overlays(tmp_path / "missing.json") == []
