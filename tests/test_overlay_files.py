"""The overlay naming rule: which node-data files a graph page loads with its graph."""

from __future__ import annotations

import os
from pathlib import Path

from etviz_lsp.overlay_files import current_overlays, overlay_path, rewrite_keeping_overlays


def _touch(path: Path, mtime_ns: int) -> Path:
    path.write_text("{}")
    os.utime(path, ns=(mtime_ns, mtime_ns))
    return path


def test_overlay_path_sits_beside_the_graph(tmp_path: Path) -> None:
    assert overlay_path(tmp_path / "m.json", "latency", "avg") == tmp_path / "m.latency-avg.json"


def test_a_page_loads_only_this_runs_overlays_the_colouring_one_last(tmp_path: Path) -> None:
    graph = _touch(tmp_path / "m.json", 2_000)
    stale = _touch(overlay_path(graph, "latency", "avg"), 1_000)  # an earlier run's
    p50 = _touch(overlay_path(graph, "latency", "p50"), 2_000)
    sqnr = _touch(overlay_path(graph, "numeric", "sqnr"), 3_000)
    _touch(tmp_path / "m.v2.json", 3_000)  # another graph, not an overlay
    _touch(tmp_path / "other.latency-avg.json", 3_000)  # another graph's overlay
    found = current_overlays(graph)
    assert found == [p50, sqnr]  # Model Explorer colours by the last one loaded
    assert stale not in found
    avg = _touch(overlay_path(graph, "latency", "avg"), 3_000)
    assert current_overlays(graph) == [p50, sqnr, avg]
    # A .pte's memory plan: bytes alive colour the graph, unless numbers or time are there.
    live = _touch(overlay_path(graph, "memory", "live"), 3_000)
    made = _touch(overlay_path(graph, "memory", "out"), 3_000)
    assert current_overlays(graph) == [p50, made, live, sqnr, avg]


def test_a_rewrite_keeping_ids_keeps_its_overlays(tmp_path: Path) -> None:
    graph = _touch(tmp_path / "m.json", 1_000)
    sqnr = _touch(overlay_path(graph, "numeric", "sqnr"), 1_000)
    stale = _touch(overlay_path(graph, "latency", "avg"), 500)
    rewrite_keeping_overlays(graph, lambda: graph.write_text('{"graphs": []}'))
    assert current_overlays(graph) == [sqnr]
    assert stale not in current_overlays(graph)


def test_a_graph_with_glob_characters_in_its_name(tmp_path: Path) -> None:
    graph = _touch(tmp_path / "m[1].json", 1)
    avg = _touch(overlay_path(graph, "latency", "avg"), 1)
    assert current_overlays(graph) == [avg]


def test_no_graph_no_overlays(tmp_path: Path) -> None:
    assert current_overlays(tmp_path / "missing.json") == []
