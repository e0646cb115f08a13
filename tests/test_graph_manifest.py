"""One owner of a graph's files (issue 25): ``graph_files`` names every file beside a graph
JSON and writes its manifest last, atomically; the tools read the manifest, not the graph.

A real export script (quantize, XNNPACK lowering, ``--profile``) through the real CLI and
worker: the manifest lists exactly the files beside the graph, is the last of them written,
and carries what the language server's map needs (the same map as from the graph JSON).
By hand (``GraphFiles``): a stale overlay of an earlier run is not shown and goes, files not
ours stay, a damaged manifest is one line. The CLI's ``--serve`` loads the node data the
manifest lists (a real ``.pte``, a real Model Explorer server); the language server answers
a restored window's graph and navigates from the manifest with its graph JSON unreadable.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import urllib.parse
from pathlib import Path
from typing import Any

import pytest
from lsprotocol import types

from etviz_lsp import graph_files
from etviz_lsp.errors import EtvizError
from etviz_lsp.graph_files import GraphFiles, GraphInfo
from etviz_lsp.lsp import source_map
from tests import pte_artifacts
from tests.explorer_fixtures import explorer_home  # noqa: F401 (the module's server)
from tests.lsp_session import export_script, lsp_session, seed_workspace

SCRIPTS = Path(__file__).parent / "scripts"
LABEL = "quantize_lower.py"


def url_data(url: str) -> dict[str, Any]:
    return json.loads(urllib.parse.parse_qs(urllib.parse.urlparse(url).query)["data"][0])


def beside(graph_json: Path) -> set[Path]:
    """Every file (or folder) in the graph's folder named after it."""
    stem = graph_json.name.removesuffix(".json")
    return {p for p in graph_json.parent.iterdir() if p.name.startswith(f"{stem}.")} | (
        {graph_json} if graph_json.exists() else set()
    )


def a_run(graph: Path, *overlays: tuple[str, str], amend: bool = False) -> GraphFiles:
    """A run writing ``graph`` (one graph, one node) and node data beside it; not finished."""
    files = GraphFiles.amend(graph) if amend else GraphFiles(graph)
    graph.write_text('{"label": "m", "graphs": [{"id": "g", "nodes": [{"id": "n"}]}]}')
    files.wrote_graph("m", [(GraphInfo("g", 1), [{"id": "n"}])])
    for overlay, metric in overlays:
        files.write_overlay(overlay, metric, {"g": {"results": {"n": {"value": 1.0}}}})
    return files


# -- a real script run through the CLI ----------------------------------------------------


@pytest.fixture(scope="module")
def profiled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``--once quantize_lower.py --profile``: numeric, memory, correspondence, latency."""
    folder = tmp_path_factory.mktemp("manifest")
    shutil.copy(SCRIPTS / LABEL, folder)
    out = folder / "out" / "q.json"
    out.parent.mkdir()
    done = subprocess.run(
        [sys.executable, "-m", "etviz_lsp", "--once", LABEL, "-o", str(out), "--profile",
         "--profile-iterations", "3"],
        cwd=folder, capture_output=True, text=True, timeout=900,
        env={**os.environ, "XDG_CACHE_HOME": str(folder / "cache")},
    )
    assert done.returncode == 0, done.stderr
    return out


@pytest.mark.slow
def test_the_manifest_lists_exactly_the_files_beside_the_graph_written_last(
    profiled: Path,
) -> None:
    manifest = graph_files.read(profiled)
    assert manifest is not None and manifest.label == LABEL
    listed = {f.path for f in manifest.files}
    manifest_file = graph_files.manifest_path(profiled)
    # exactly what lies beside the graph (the partial stages: removed after a good run)
    assert beside(profiled) == listed | {manifest_file}
    assert all(f.path.exists() for f in manifest.files)
    roles = {f.role for f in manifest.files}
    assert roles == {"graph", "correspondence", "kept-program", "memory-svg", "overlay"}
    # Model Explorer colours by the node data loaded last: the average latency
    kinds = [f.kind for f in manifest.files if f.role == graph_files.OVERLAY]
    assert kinds == [
        "latency-max", "latency-min", "latency-p50", "memory-out", "numeric-max-abs-error",
        "memory-live", "numeric-sqnr", "latency-avg",
    ]
    # written last, by the run that wrote everything it lists
    last = manifest_file.stat().st_mtime_ns
    assert all(f.path.stat().st_mtime_ns <= last for f in manifest.files)
    assert {f.run for f in manifest.files} == {manifest.run}


@pytest.mark.slow
def test_the_manifest_holds_the_graphs_and_the_map_the_graph_json_would_give(
    profiled: Path,
) -> None:
    collection = json.loads(profiled.read_text())
    manifest = graph_files.read(profiled)
    assert manifest is not None
    assert [(g.id, g.node_count) for g in manifest.graphs] == [
        (g["id"], len(g["nodes"])) for g in collection["graphs"]
    ]
    ops = {g.id: g.op_nodes for g in manifest.graphs}
    for graph in collection["graphs"]:
        kinds = [a["value"] for n in graph["nodes"] for a in n.get("attrs", [])
                 if a["key"] == "kind"]
        assert ops[graph["id"]] == kinds.count("op")
    # the program stage of the profile is in the graph the run wrote
    assert any(g.id.endswith("(program)") for g in manifest.graphs)
    roots = [profiled.parent.parent]
    from_manifest = source_map.from_manifest(manifest, roots)
    from_json = source_map.build(collection, roots)
    script = (profiled.parent.parent / LABEL).resolve()
    assert from_manifest.files == from_json.files and script in from_manifest.files
    assert from_manifest.lines_of(script) == from_json.lines_of(script) != {}
    for graph in collection["graphs"]:
        for node in graph["nodes"]:
            assert from_manifest.origin(graph["id"], node["id"]) == from_json.origin(
                graph["id"], node["id"])
    # smaller than the graph it describes
    assert graph_files.manifest_path(profiled).stat().st_size < profiled.stat().st_size / 3


# -- by hand: stale files, files not ours, damage ------------------------------------------


def test_a_stale_overlay_from_an_earlier_run_is_not_shown_and_goes(tmp_path: Path) -> None:
    graph = tmp_path / "m.json"
    elsewhere = tmp_path / "chosen.svg"
    earlier = a_run(graph, ("latency", "avg"), ("numeric", "sqnr"))
    earlier.write_memory_svg("<svg/>", elsewhere)  # --memory-svg: not beside the graph
    earlier.finish()
    stale = graph_files.overlay_path(graph, "latency", "avg")
    ours_not = [tmp_path / "m.v2-final.json", tmp_path / "other.latency-avg.json"]
    for path in ours_not:
        path.write_text("{}")
    # an overlay of the same run's name pattern, written now but never listed
    unlisted = graph_files.overlay_path(graph, "latency", "p50")
    unlisted.write_text("{}")

    sqnr = a_run(graph, ("numeric", "sqnr")).finish().overlays
    assert list(graph_files.node_data_of(graph).files) == sqnr
    assert stale not in graph_files.node_data_of(graph).files and not stale.exists()
    assert unlisted not in graph_files.node_data_of(graph).files  # never listed: not shown
    assert all(p.exists() for p in [*ours_not, elsewhere, unlisted])  # never listed: stays


def test_a_profile_amends_the_manifest_under_its_own_run(tmp_path: Path) -> None:
    graph = tmp_path / "m.json"
    run = a_run(graph, ("numeric", "sqnr"))
    run.record(graph_files.KEPT_PROGRAM, run.kept_folder)
    run.kept_folder.mkdir()
    first = run.finish()
    profile = a_run(graph, ("latency", "avg"), amend=True)
    second = profile.finish()
    runs = {f.kind or f.role: f.run for f in second.files}
    assert runs == {"graph": profile.run, "kept-program": first.run,
                    "numeric-sqnr": first.run, "latency-avg": profile.run}
    assert second.run == profile.run != first.run
    # a plain re-run keeps nothing of them: the kept program folder goes too
    a_run(graph).finish()
    assert beside(graph) == {graph, graph_files.manifest_path(graph)}


def test_a_reader_of_the_manifest_never_sees_half_of_it(tmp_path: Path) -> None:
    graph = tmp_path / "m.json"
    a_run(graph, ("latency", "avg")).finish()
    path = graph_files.manifest_path(graph)
    with path.open("rb") as reading:  # opened before the next run's manifest
        a_run(graph, ("numeric", "sqnr")).finish()
        old = json.loads(reading.read())
    assert [f["kind"] for f in old["files"] if f["role"] == "overlay"] == ["latency-avg"]
    assert [f.kind for f in graph_files.read(graph).files if f.kind] == ["numeric-sqnr"]
    assert not list(tmp_path.glob(".*.tmp"))


@pytest.mark.parametrize(("text", "cause"), [
    ("{", "cannot read the graph manifest"),
    ('{"version": 99}', "not a version 1 graph manifest"),
    ('{"version": 1, "label": "m"}', "damaged graph manifest"),
])
def test_a_damaged_manifest_is_one_line_naming_it(tmp_path: Path, text: str, cause: str) -> None:
    graph = tmp_path / "m.json"
    a_run(graph, ("latency", "avg")).finish()
    path = graph_files.manifest_path(graph)
    path.write_text(text)
    with pytest.raises(EtvizError) as damaged:
        graph_files.read(graph)
    line = str(damaged.value)
    assert line.startswith(f"{path}: ") and cause in line and "\n" not in line
    assert graph_files.node_data_of(graph).files == ()  # the graph alone
    a_run(graph).finish()  # a new run writes a good one over it, removing nothing
    assert graph_files.overlay_path(graph, "latency", "avg").exists()


def test_node_data_never_comes_from_outside_the_graphs_folder(tmp_path: Path) -> None:
    graph = tmp_path / "m.json"
    manifest = a_run(graph, ("latency", "avg")).finish().to_json()
    manifest["files"][-1]["path"] = "../secret.json"
    graph_files.manifest_path(graph).write_text(json.dumps(manifest))
    with pytest.raises(EtvizError, match="is not beside the graph"):
        graph_files.read(graph)
    assert graph_files.node_data_of(graph).files == ()


# -- the CLI and the language server read it ----------------------------------------------


@pytest.mark.slow
def test_cli_serve_loads_the_node_data_the_manifest_lists(
    tmp_path: Path, explorer_home: Path  # noqa: F811
) -> None:
    pte, _ = pte_artifacts.portable_only(tmp_path)
    out = tmp_path / "portable.json"
    done = subprocess.run(
        [sys.executable, "-m", "etviz_lsp", "--once", str(pte), "-o", str(out), "--serve",
         "--no-browser"], capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr
    url = re.search(r"Model Explorer \(pid \d+, port \d+\): (\S+)", done.stdout)
    assert url is not None, done.stdout
    data = url_data(url.group(1))
    manifest = graph_files.read(out)
    assert manifest is not None
    assert [Path(p).name for p in data["nodeData"]] == [
        graph_files.data_name(p) for p in manifest.overlays
    ] == ["memory-out.json", "memory-live.json"]  # bytes alive colour the graph: last
    assert data["nodeDataTargets"] == [manifest.label] * 2 == ["portable.pte"] * 2
    for copy, listed in zip(data["nodeData"], manifest.overlays, strict=True):
        assert Path(copy).read_bytes() == listed.read_bytes()


@pytest.mark.slow
async def test_the_language_server_shows_and_maps_the_last_graph_from_its_manifest(
    tmp_path: Path,
) -> None:
    script = seed_workspace(tmp_path, {"net.py": export_script(2)}) / "net.py"
    async with lsp_session(tmp_path, trusted=True) as session:
        shown = await session.visualize(script)
        graph_json = Path(url_data(shown.url)["models"][0]["url"])
        manifest = graph_files.read(graph_json)
        assert manifest is not None
        assert [(g.id, g.nodeCount) for g in shown.graphs] == [
            (g.id, g.node_count) for g in manifest.graphs
        ]
        graph_json.write_text("not JSON: the server must not need it")
        before = len(session.graph_ready)
        last = await session.visualize(script, {"showLast": True})
        assert last.last is True
        assert [(g.id, g.nodeCount) for g in last.graphs] == [
            (g.id, g.node_count) for g in manifest.graphs
        ]
        forward = await session.client.workspace_execute_command_async(
            types.ExecuteCommandParams(
                command="etviz.server.nodeAt", arguments=[script.as_uri(), 11]
            )
        )
        assert forward["graphId"] == manifest.graphs[0].id
        assert len(forward["nodeIds"]) == 2  # `return self.layers(x)`: both Linear layers
        await session.next_graph(script, before)  # the fresh run showLast started
        assert await session.close() == []
