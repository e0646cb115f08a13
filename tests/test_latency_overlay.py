"""ETDump latency overlay (issue 17) on a real quantized XNNPACK program run here.

The program (``pte_artifacts.quantized_cumsum``: delegate -> CPU cumsum -> delegate) runs
with ETDump on through ``executorch.runtime``; ``--once --etdump`` attributes the events to
the ``.pte`` graph's nodes and the XNN nodes inside each delegate, checked against
ExecuTorch's own Inspector; Model Explorer, in a real Chromium, loads the node data with the
graph (``--serve``) and colours the nodes.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from etviz_lsp import cli
from etviz_lsp.errors import EtvizError
from etviz_lsp.graph.backends import xnnpack
from etviz_lsp.graph.overlays import latency
from etviz_lsp.graph.readers import etdump
from etviz_lsp.graph.readers.pte_reader import read_pte
from tests import pte_artifacts
from tests.explorer_fixtures import REPO_ROOT, explorer_home  # noqa: F401

RUNS = 5
METRIC_FILES = ("avg", "p50", "min", "max")
BROWSER_DIR = REPO_ROOT / "tests" / "browser"
ARTIFACTS = REPO_ROOT / "build" / "artifacts"


class Profiled:
    def __init__(self, folder: Path) -> None:
        made = pte_artifacts.quantized_cumsum(folder)
        self.pte, self.etrecord = made.pte, made.etrecord
        self.etdump, self.debug = pte_artifacts.profile_run(self.pte, RUNS)
        self.out = folder / "q.json"
        assert cli.main(["--once", str(self.pte), "--etdump", str(self.etdump),
                         "-o", str(self.out)]) == 0  # fmt: skip
        self.graphs = json.loads(self.out.read_text())
        self.node_data = {
            metric: json.loads((folder / f"q.latency-{metric}.json").read_text())
            for metric in METRIC_FILES
        }


@pytest.fixture(scope="session")
def profiled(tmp_path_factory: pytest.TempPathFactory) -> Profiled:
    return Profiled(tmp_path_factory.mktemp("profiled"))


@pytest.fixture(scope="session")
def inspector_events(profiled: Profiled) -> list[Any]:
    """ExecuTorch's Inspector's view of the same ETDump: the events of the method runs."""
    from executorch.devtools import Inspector

    inspector = Inspector(
        etdump_path=str(profiled.etdump), etrecord=str(profiled.etrecord),
        debug_buffer_path=str(profiled.debug),
    )  # fmt: skip
    return [e for block in inspector.event_blocks if block.name == "Execute" for e in block.events]


def graph(profiled: Profiled, graph_id: str) -> dict[str, Any]:
    return next(g for g in profiled.graphs["graphs"] if g["id"] == graph_id)


def attrs(node: dict[str, Any]) -> dict[str, str]:
    return {item["key"]: item["value"] for item in node["attrs"]}


def delegate_graphs(profiled: Profiled) -> list[dict[str, Any]]:
    return [g for g in profiled.graphs["graphs"] if g["id"].startswith("forward/Xnnpack")]


def delegate_kernels(inspector_events: list[Any]) -> dict[int, list[Any]]:
    """The Inspector's kernel events of each delegate call (by instruction), in order."""
    by_instruction: dict[int, list[Any]] = {}
    for event in inspector_events:
        if event.delegate_backend_name and not event.debug_handles:
            by_instruction.setdefault(event._instruction_id, []).append(event)
    return by_instruction


def call_instruction(sub: dict[str, Any]) -> int:
    """The instruction of the delegate call whose nested graph ``sub`` is."""
    return int(sub["groupNodeAttributes"][""]["delegate call"].split()[-1])


def test_every_conv_and_the_cpu_op_get_their_kernels_latency(
    profiled: Profiled, inspector_events: list[Any]
) -> None:
    """XNNPACK times its kernels in whole microseconds: a conv this small often takes less,
    so 0.0 is a true reading (seen: every kernel of a delegate 0.0 in all 5 runs, for 3
    delegates of 400). What holds whatever the timer shows: each conv is attributed (a
    value, not negative, its attributes) and carries its own Convolution kernel's time; the
    delegate's kernels are all accounted for; what runs on the nanosecond clock (the
    delegate call, the CPU op matched by its instruction) is above 0."""
    avg = profiled.node_data["avg"]
    kernels = delegate_kernels(inspector_events)
    assert len(delegate_graphs(profiled)) == 2
    for sub in delegate_graphs(profiled):
        events = kernels[call_instruction(sub)]
        results = avg[sub["id"]]["results"]
        [conv] = [n for n in sub["nodes"] if n["label"] == "XNNConv2d"]
        [conv_event] = [e for e in events if xnnpack.event_kind(e.name) == "Convolution"]
        assert results[conv["id"]]["value"] >= 0 and "latency avg (ms)" in attrs(conv)
        assert results[conv["id"]]["value"] == pytest.approx(conv_event.perf_data.avg, abs=1e-6)
        # Every kernel of the call is on an XNN node or listed as runtime-inserted: counted
        # (whatever the timer read), and its time is there too.
        facts = sub["groupNodeAttributes"][""]
        listed = [e for e in events if f"{e.name} " in facts["runtime-inserted kernels"]]
        assert len(results) + len(listed) == len(events), (results, facts)
        placed = sum(r["value"] for r in results.values())
        placed += float(facts["runtime-inserted kernels avg (ms)"])
        assert placed == pytest.approx(sum(e.perf_data.avg for e in events), abs=1e-4)
        assert float(facts["delegate call avg (ms)"]) > 0
    top = graph(profiled, "forward")
    cumsum = next(n for n in top["nodes"] if n["label"] == "aten::cumsum")
    [event] = [e for e in inspector_events if e.name == "native_call_cumsum.out"]
    assert cumsum["id"] == f"instruction_{event._instruction_id}"
    assert avg["forward"]["results"][cumsum["id"]]["value"] > 0
    assert float(attrs(cumsum)["latency avg (ms)"]) > 0
    kernel = float(attrs(cumsum)["latency avg (ms)"])
    assert float(attrs(cumsum)["OPERATOR_CALL avg (ms)"]) >= kernel  # the call around it


def test_node_data_files_are_model_explorer_node_data_keyed_by_our_ids(profiled: Profiled) -> None:
    ids = {g["id"]: {n["id"] for n in g["nodes"]} for g in profiled.graphs["graphs"]}
    for metric, data in profiled.node_data.items():
        assert set(data) == set(ids), metric  # the method and both delegate graphs
        for graph_id, entry in data.items():
            assert entry["results"] and set(entry["results"]) <= ids[graph_id]
            assert all(isinstance(r["value"], float) for r in entry["results"].values())
            assert [stop["stop"] for stop in entry["gradient"]] == [0, 0.5, 1]
    for graph_id, results in profiled.node_data["avg"].items():
        for node_id, result in results["results"].items():
            low = profiled.node_data["min"][graph_id]["results"][node_id]["value"]
            high = profiled.node_data["max"][graph_id]["results"][node_id]["value"]
            p50 = profiled.node_data["p50"][graph_id]["results"][node_id]["value"]
            assert low <= result["value"] <= high and low <= p50 <= high


def test_partition_sum_equals_the_delegate_call_within_its_reported_overhead(
    profiled: Profiled,
) -> None:
    top = {n["id"]: n for n in graph(profiled, "forward")["nodes"]}
    for sub in delegate_graphs(profiled):
        facts = sub["groupNodeAttributes"][""]
        call = top[f"instruction_{facts['delegate call'].split()[-1]}"]
        call_ms = profiled.node_data["avg"]["forward"]["results"][call["id"]]["value"]
        kernels = sum(r["value"] for r in profiled.node_data["avg"][sub["id"]]["results"].values())
        assert float(facts["kernels on XNN nodes avg (ms)"]) == pytest.approx(kernels, abs=1e-4)
        assert float(facts["latency sum avg (ms)"]) == pytest.approx(kernels, abs=1e-4)
        inserted = float(facts["runtime-inserted kernels avg (ms)"])
        overhead = float(facts["call overhead avg (ms)"])
        # The kernels run inside the call: their sum is under it, and what they leave over
        # (the delegate's own work outside kernels) is reported, not hidden. The kernels may
        # all read 0.0 (whole microseconds); the call, on the nanosecond clock, never does.
        assert call_ms > 0 and 0 <= kernels + inserted <= call_ms
        assert overhead == pytest.approx(call_ms - kernels - inserted, abs=2e-4)
        assert attrs(call)["call overhead avg (ms)"] == facts["call overhead avg (ms)"]


def test_attribution_agrees_with_executorchs_inspector(
    profiled: Profiled, inspector_events: list[Any]
) -> None:
    avg = profiled.node_data["avg"]
    by_instruction = delegate_kernels(inspector_events)
    assert sorted(by_instruction) == [0, 2]  # the two delegate calls
    for instruction, kernels in by_instruction.items():
        sub_id = next(
            g["id"] for g in delegate_graphs(profiled) if call_instruction(g) == instruction
        )
        xnodes = [n for n in graph(profiled, sub_id)["nodes"] if n["id"].startswith("xnode_")]
        # Inspector's kernel events, in order, next to the XNN node each was given.
        assert len(kernels) == len(xnodes)
        for kernel, xnode in zip(kernels, xnodes, strict=True):
            matched = xnnpack.kernel_matches(kernel.name, xnode["label"])
            assert matched, (kernel.name, xnode["label"])
            ours = avg[sub_id]["results"][xnode["id"]]["value"]
            assert ours == pytest.approx(kernel.perf_data.avg, abs=1e-6), kernel.name
    named = {e.name: e for e in inspector_events}
    top = avg["forward"]["results"]
    calls = [e for e in inspector_events if e.name == "DELEGATE_CALL"]
    for call in calls:
        assert top[f"instruction_{call._instruction_id}"]["value"] == pytest.approx(
            call.perf_data.avg, abs=1e-6
        )
    cumsum = named["native_call_cumsum.out"]
    assert top[f"instruction_{cumsum._instruction_id}"]["value"] == pytest.approx(
        cumsum.perf_data.avg, abs=1e-6
    )
    # Every event of every run is accounted for: attributed, method-level, or counted.
    summary = graph(profiled, "forward")["groupNodeAttributes"][""]
    total = sum(len(e.perf_data.raw) for e in inspector_events if e.perf_data is not None)
    attributed = int(summary["events attributed"])
    method_level = int(summary["method-level events"])
    assert attributed + method_level == total
    assert summary["events not attributed"] == "0"
    assert method_level == RUNS  # Method::execute once per run
    assert summary["etdump"] == f"{profiled.etdump.name} ({RUNS} runs)"


def test_another_programs_etdump_is_counted_not_attributed(profiled: Profiled) -> None:
    collection = read_pte(profiled.pte)
    top = collection.graphs[0]
    top.nodes = [n for n in top.nodes if n["id"] != "instruction_2"]  # a program without it
    found = latency.attribute(collection, etdump.read_etdump(profiled.etdump))
    summary = graph(profiled, "forward")["groupNodeAttributes"][""]
    every = int(summary["events attributed"]) + int(summary["method-level events"])
    assert found.attributed == 0 and found.unattributed == every
    assert top.group_attrs[""]["events not attributed"].startswith(f"{every} ")
    assert found.node_data == {}


def test_runtime_inserted_kernels_stay_on_the_delegate_and_fused_nodes_get_none() -> None:
    events = ["Convert (NC) #1", "Transpose (ND, X8) #1", "Convolution (NHWC, QS8) IGEMM #1",
              "Fully Connected (NC, QS8) GEMM #1"]  # fmt: skip
    # No transpose node in this graph: XNNPACK inserted it at run time. The clamp was fused
    # into the convolution's kernel, so it has no event of its own.
    nodes = ["XNNConvert", "XNNConv2d", "XNNClamp", "XNNFullyConnected"]
    assert latency.align(events, nodes, xnnpack.kernel_matches) == [0, None, 1, 3]
    assert xnnpack.event_kind("Fully Connected (NC, QS8) GEMM #1") == "Fully Connected"
    assert xnnpack.kernel_matches("Tanh (NC, F32) #1", "XNNTanh")


def test_damaged_or_wrong_etdump_is_one_line_and_leaves_the_output(
    profiled: Profiled, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "kept.json"
    out.write_text("last good graph")
    truncated = tmp_path / "cut.etdp"
    truncated.write_bytes(profiled.etdump.read_bytes()[: profiled.etdump.stat().st_size // 2])
    cases = {
        truncated: "truncated ETDump",
        profiled.pte: "not an ETDump",
        tmp_path / "missing.etdp": "no such file",
    }
    for bad, cause in cases.items():
        code = cli.main(["--once", str(profiled.pte), "--etdump", str(bad), "-o", str(out)])
        err = capsys.readouterr().err.strip()
        assert code == 1 and len(err.splitlines()) == 1, err
        assert str(bad) in err and cause in err, err
        assert out.read_text() == "last good graph"
        assert not list(tmp_path.glob("kept.latency-*.json"))
    flipped = bytearray(profiled.etdump.read_bytes())
    flipped[20:60] = b"\xff" * 40  # offsets inside the FlatBuffer pointing anywhere
    (tmp_path / "flipped.etdp").write_bytes(bytes(flipped))
    try:  # read, or refused as damaged: any other exception fails the test
        etdump.read_etdump(tmp_path / "flipped.etdp")
    except EtvizError as exc:
        assert "damaged ETDump" in str(exc) and len(str(exc).splitlines()) == 1, exc
    pt2_like = tmp_path / "m.pt2"
    shutil.copy(profiled.etrecord, pt2_like)
    assert cli.main(["--once", str(pt2_like), "--etdump", str(profiled.etdump)]) == 1
    assert "--etdump on a .pt2 needs --etrecord" in capsys.readouterr().err


def _overlay_report(shots: Path, pages: list[tuple[str, str]]) -> list[dict[str, Any]]:
    node = shutil.which("node")
    if node is None or not (BROWSER_DIR / "node_modules" / "playwright-core").is_dir():
        pytest.fail("browser test tools missing: run scripts/setup-browser.sh")
    args = [node, str(BROWSER_DIR / "check_overlay.mjs"), str(shots)]
    for name, url in pages:
        args += [name, url]
    done = subprocess.run(args, cwd=BROWSER_DIR, capture_output=True, text=True, timeout=300)
    reports = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert done.returncode == 0 and all(r["phase"] == "overlay" for r in reports), done.stdout
    return reports


def _spread(node_data: dict[str, Any]) -> float:
    values = [r["value"] for r in node_data["results"].values()]
    return max(values) - min(values)


def _with_graph(url: str, graph_id: str) -> str:
    from urllib.parse import parse_qs, quote, urlsplit

    query = parse_qs(urlsplit(url).query)
    data = json.loads(query["data"][0])
    pane = {"selectedGraphId": graph_id, "widthFraction": 1, "selected": True,
            "deepestExpandedGroupNodeIds": [], "selectedNodeId": "", "selectedCollectionLabel": ""}
    data["uiState"] = {"paneStates": [pane]}
    return re.sub(r"data=[^&]*", "data=" + quote(json.dumps(data), safe=""), url)


def test_model_explorer_shows_the_latency_overlay_in_chromium(
    profiled: Profiled, explorer_home: Path, capsys: pytest.CaptureFixture[str]  # noqa: F811
) -> None:
    code = cli.main(["--once", str(profiled.pte), "--etdump", str(profiled.etdump),
                     "-o", str(profiled.out), "--serve", "--no-browser"])  # fmt: skip
    printed = capsys.readouterr().out
    assert code == 0, printed
    url = re.search(r"(http://127\.0\.0\.1:\d+/\S+)", printed)
    assert url is not None, printed
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    avg = profiled.node_data["avg"]
    # Model Explorer spreads its gradient from the smallest value to the largest, so it
    # colours nothing in a graph whose values are all equal (a delegate whose kernels all
    # read 0.0 us): the page shows the delegate whose kernels the timer told apart.
    sub_id = max(delegate_graphs(profiled), key=lambda g: _spread(avg[g["id"]]))["id"]
    reports = _overlay_report(
        ARTIFACTS, [("latency-forward", _with_graph(url.group(1), "forward")),
                    ("latency-delegate", _with_graph(url.group(1), sub_id))],
    )  # fmt: skip
    for report, graph_id in zip(reports, ["forward", sub_id], strict=True):
        assert report["failedRequests"] == []
        # The page read the graph and the four overlays, all from the guarded cache.
        reads = [r for r in report["reads"] if r.startswith("200 ")]
        assert any(r.endswith(".data/latency-avg.json") for r in reads), report["reads"]
        assert "latency-p50.json" in report["bodyText"] and "latency-max.json" in report["bodyText"]
        # The Node data table's coloured rows: a node, its four values, the colour of the
        # one Model Explorer colours the graph by (loaded last: the average).
        coloured = [r for r in report["table"] if r["background"] != "rgba(0, 0, 0, 0)"]
        results = avg[graph_id]["results"]
        if _spread(avg[graph_id]) == 0:  # both delegates' kernels read alike: nothing coloured
            assert coloured == [], coloured
            continue
        assert len(coloured) == len(results), coloured
        shown = [float(r["cells"][-1]) for r in coloured]
        expected = sorted(r["value"] for r in results.values())
        assert sorted(shown) == pytest.approx(expected, abs=1e-6)
        slowest = max(coloured, key=lambda r: float(r["cells"][-1]))
        fastest = min(coloured, key=lambda r: float(r["cells"][-1]))
        assert slowest["background"] == "rgb(127, 0, 0)", coloured  # the gradient's ends
        assert fastest["background"] == "rgb(255, 245, 235)", coloured
    for name in ("latency-forward", "latency-delegate"):
        assert (ARTIFACTS / f"{name}.png").stat().st_size > 10_000


def test_node_data_reaches_model_explorer_only_through_the_cache(
    profiled: Profiled, explorer_home: Path  # noqa: F811
) -> None:
    from etviz_lsp import explorer, graph_files
    from etviz_lsp.explorer import locations
    from etviz_lsp.explorer.urls import graph_url

    server = explorer.ensure_server(timeout=90)
    paths = [profiled.out.with_name(f"q.latency-{m}.json") for m in METRIC_FILES]
    manifest = graph_files.read(profiled.out, navigation=False)
    assert manifest is not None and set(paths) <= set(manifest.overlays)
    node_data = graph_files.NodeData(manifest.label, tuple(paths))  # the label it lists
    url = graph_url(server, profiled.out, node_data=node_data)
    from urllib.parse import parse_qs, urlsplit

    data = json.loads(parse_qs(urlsplit(url).query)["data"][0])
    cache = str(locations.cache_dir())
    assert len(data["nodeData"]) == 4 and all(p.startswith(cache) for p in data["nodeData"])
    assert data["nodeDataTargets"] == [profiled.graphs["label"]] * 4
    for published, original in zip(data["nodeData"], paths, strict=True):
        assert Path(published).read_bytes() == original.read_bytes()


_TORCH_FREE = """
import sys
sys.modules["torch"] = None  # any import of torch now fails
from etviz_lsp import cli
code = cli.main(["--once", sys.argv[1], "--etdump", sys.argv[2], "-o", sys.argv[3]])
print(code, sorted(m for m in sys.modules if m.startswith(("torch", "executorch"))))
"""


def test_the_overlay_is_made_with_torch_unimportable(profiled: Profiled, tmp_path: Path) -> None:
    out = tmp_path / "free.json"
    done = subprocess.run(
        [sys.executable, "-c", _TORCH_FREE, str(profiled.pte), str(profiled.etdump), str(out)],
        capture_output=True, text=True, cwd=REPO_ROOT, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "0 ['torch']"  # only the None we put there
    made = json.loads((tmp_path / "free.latency-avg.json").read_text())
    assert made == profiled.node_data["avg"]  # the same run gives the same overlay


FUZZ = settings(
    max_examples=int(os.environ.get("ETVIZ_FUZZ_EXAMPLES", "150")),
    deadline=None,
    derandomize="ETVIZ_FUZZ_EXAMPLES" not in os.environ,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


@FUZZ
@given(
    edits=st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 255)), max_size=8),
    cut=st.none() | st.floats(0, 1),
)
def test_fuzzed_etdumps_are_read_and_attributed_or_refused_in_one_line(
    profiled: Profiled, tmp_path: Path, edits: list[tuple[float, int]], cut: float | None
) -> None:
    buf = bytearray(profiled.etdump.read_bytes())
    for where, value in edits:
        buf[int(where * len(buf))] = value
    path = tmp_path / "fuzzed.etdp"
    path.write_bytes(bytes(buf[: int(cut * len(buf))] if cut is not None else buf))
    try:
        dump = etdump.read_etdump(path)
    except EtvizError as exc:
        assert str(exc).startswith(str(path)) and "\n" not in str(exc), str(exc)
        return
    found = latency.attribute(read_pte(profiled.pte), dump)
    json.dumps(found.node_data)
    assert found.attributed + found.unattributed + found.method_level == sum(
        len(run.events) for run in dump.executions()
    )
