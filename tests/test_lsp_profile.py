"""Profile on This Machine (issue 17) through the real server over stdio: a quantize + XNNPACK
lowering script runs in the real worker, ``etviz.server.profile`` runs its ExecuTorch program
in a fresh worker child with ETDump on, and the panel's URL loads the latency node data.

Checked as a user sees it: the answer and the ``graphReady`` URL carry ``nodeData`` naming
latency files in the guarded cache, with values on the XNNPACK conv and linear kernels and
positive ones on the program's kernels and delegate calls, the run's numeric overlay kept
and the average latency loaded last (the colours); the progress bar says what ran; a re-run
hides the (now stale) latency overlay; with ``etviz.profile: onSave`` a save profiles too;
a script with no ExecuTorch program gets the one-line reason; nothing is left running.
"""

from __future__ import annotations

import json
import re
import shutil
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from lsprotocol import types
from pygls.exceptions import JsonRpcException

from tests.lsp_session import Session, export_script, lsp_session

pytestmark = [pytest.mark.slow]

SCRIPT = Path(__file__).parent / "scripts" / "quantize_lower.py"
ITERATIONS = 7


def url_data(url: str) -> dict[str, Any]:
    return json.loads(urllib.parse.parse_qs(urllib.parse.urlparse(url).query)["data"][0])


def overlay_kinds(data: dict[str, Any]) -> list[str]:
    """``.../m.data/latency-avg.json`` -> ``latency-avg``, in the URL's loading order."""
    return [Path(p).name.rsplit(".", 2)[-2] for p in data.get("nodeData", [])]


def latency_kinds(data: dict[str, Any]) -> list[str]:
    return [k for k in overlay_kinds(data) if k.startswith("latency-")]


async def profile(session: Session, path: Path) -> Any:
    return await session.client.workspace_execute_command_async(
        types.ExecuteCommandParams(command="etviz.server.profile", arguments=[path.as_uri()])
    )


def kernel_values(node_data: dict[str, Any], graphs: dict[str, Any]) -> dict[str, list[float]]:
    """XNN node label -> its latency values, over every delegate graph of the overlay."""
    found: dict[str, list[float]] = {}
    for graph_id, data in node_data.items():
        labels = {n["id"]: n["label"] for n in graphs[graph_id]["nodes"]}
        for node_id, result in data["results"].items():
            found.setdefault(labels[node_id], []).append(result["value"])
    return found


async def test_profile_command_shows_latency_on_the_xnnpack_kernels(tmp_path: Path) -> None:
    async with lsp_session(tmp_path, trusted=True, profileIterations=ITERATIONS) as session:
        workspace = session.root / "workspace"
        script = workspace / "quantize_lower.py"
        shutil.copy(SCRIPT, script)
        plain = await session.visualize(script)
        # the run's numeric overlay and its executorch stage's memory plan (issue 28), no
        # latency before a profile; the SQNR colours the graph (loaded last)
        assert overlay_kinds(url_data(plain.url)) == [
            "memory-out", "numeric-max-abs-error", "memory-live", "numeric-sqnr",
        ]

        # the executorch stage's memory timeline, for "Show Memory Timeline": its bars name
        # nodes of the graphs the page shows
        timeline = Path(plain.memorySvg)
        assert timeline.name.endswith(".memory.svg"), plain.memorySvg
        bar_graphs = set(re.findall(r'data-graph-id="([^"]+)"', timeline.read_text()))
        assert bar_graphs and bar_graphs <= {g.id for g in plain.graphs}

        before = len(session.graph_ready)
        answer = await profile(session, script)
        ready = await session.next_graph(script, before)
        assert ready.url == answer["url"] and ready.memorySvg == plain.memorySvg
        data = url_data(answer["url"])
        overlays = data["nodeData"]
        # The run's numeric overlay stays (same node ids); the average latency loads last:
        # Model Explorer colours the graph by the last node data it loaded.
        assert overlay_kinds(data) == [
            "latency-max", "latency-min", "latency-p50", "memory-out", "numeric-max-abs-error",
            "memory-live", "numeric-sqnr", "latency-avg",
        ]
        assert data["nodeDataTargets"] == ["quantize_lower.py"] * 8
        average = overlays[-1]
        graph_json = Path(data["models"][0]["url"])
        graphs = {g["id"]: g for g in json.loads(graph_json.read_text())["graphs"]}
        program = "et_program @ quantize_lower.py:31 (program)"
        assert [g["id"] for g in answer["graphs"]][-3:] == [
            program, f"{program}/XnnpackBackend #0", f"{program}/XnnpackBackend #1",
        ]
        # the files beside the graph JSON (what the URL's copies were made from)
        avg = json.loads(graph_json.with_name(f"{graph_json.stem}.latency-avg.json").read_text())
        assert json.loads(Path(average).read_text()) == avg
        # XNNPACK times its kernels in whole microseconds: a linear of 8 x 4 (and often
        # the conv) takes less, so its 0.0 is a true reading. Each is attributed all the
        # same; the program's own nodes (CPU kernels, delegate calls) run on the
        # nanosecond clock and are above 0.
        kernels = kernel_values({k: v for k, v in avg.items() if "/" in k}, graphs)
        assert len(kernels["XNNConv2d"]) == len(kernels["XNNFullyConnected"]) == 1, kernels
        assert min(kernels["XNNConv2d"] + kernels["XNNFullyConnected"]) >= 0
        assert all(v["value"] > 0 for v in avg[program]["results"].values())
        # ... and on the lowered stage the user reads, at its source lines (issue 28): the
        # graphReady's stage, its conv with its kernel's time
        [lowered] = [g.id for g in ready.graphs if g.id.endswith("(lowered)")]
        # the page opens there, not on the program stage the profile appended last
        assert data["uiState"]["paneStates"][0]["selectedGraphId"] == lowered
        nodes = {n["id"]: n for n in graphs[lowered]["nodes"]}
        timed = {nodes[i]["label"]: nodes[i] for i in avg[lowered]["results"]}
        assert "convolution" in timed, timed
        conv_attrs = {a["key"]: a["value"] for a in timed["convolution"]["attrs"]}
        assert "quantize_lower.py:" in conv_attrs["source"] and "latency avg (ms)" in conv_attrs
        assert answer["profile"]["runs"] == ITERATIONS
        assert answer["profile"]["unattributed"] == 0
        assert f"{ITERATIONS} runs on this machine" in answer["summary"]
        # the guard serves the node data from the cache, with the page's token
        info = urllib.parse.urlparse(answer["url"])
        token = urllib.parse.parse_qs(info.query)["etviz_token"][0]
        read = (f"{info.scheme}://{info.netloc}/api/v1/read_text_file?"
                f"{urllib.parse.urlencode({'path': average, 'etviz_token': token})}")
        with urllib.request.urlopen(read, timeout=10) as served:
            assert json.loads(json.loads(served.read())["content"]) == avg
        titles = {getattr(r, "title", None) for reports in session.client.progress_reports.values()
                  for r in reports}
        assert "etviz: profile quantize_lower.py" in titles

        # A plain re-run rewrites the graph: the profile's overlay is an earlier run's now
        before = len(session.graph_ready)
        session.save(script, script.read_text() + "\n")
        rerun = await session.next_graph(script, before)
        assert latency_kinds(url_data(rerun.url)) == []
        assert "uiState" not in url_data(rerun.url)  # the panel's own choice (the last stage)
        assert not any(g.id.endswith("(program)") for g in rerun.graphs)

        # onSave: every run profiles its program too
        session.client.workspace_did_change_configuration(
            types.DidChangeConfigurationParams(settings={"etviz": {"profile": "onSave"}})
        )
        before = len(session.graph_ready)
        session.save(script, script.read_text() + "\n")
        saved = await session.next_graph(script, before)
        assert sorted(latency_kinds(url_data(saved.url))) == [
            f"latency-{m}" for m in ("avg", "max", "min", "p50")
        ]
        assert "numeric-sqnr" in overlay_kinds(url_data(saved.url))
        assert saved.profile.runs == ITERATIONS
        assert url_data(saved.url)["uiState"]["paneStates"][0]["selectedGraphId"] == lowered

        # nothing to profile: a script that makes no ExecuTorch program
        exported = workspace / "exported_only.py"
        exported.write_text(export_script(layers=1))
        with pytest.raises(JsonRpcException) as refused:
            await profile(session, exported)
        assert "nothing to profile: the last run made no ExecuTorch program" in str(refused.value)
        assert await session.close() == []
