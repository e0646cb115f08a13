"""The memory plan of a ``.pte`` (issue 28), on real programs lowered here.

What etviz reads back from the file (each tensor's place, lifetimes from the instructions,
the peaks) is checked against ExecuTorch's own memory planning, which the test reads from
the ExecutorchProgramManager in memory: each node's ``meta["spec"]`` (memory id, offset,
bytes, lifetime in graph nodes). A portable-only program (a view, a scalar made a tensor,
mutable state, two outputs) and a quantized XNNPACK program (delegate -> CPU cumsum ->
delegate, with its ETRecord). The timeline SVG is opened in a real headless Chromium;
damaged memory fields give notes on the graph or one-line errors, never a crash.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import struct
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from etviz_lsp import cli
from etviz_lsp.errors import EtvizError
from etviz_lsp.graph import inputs
from etviz_lsp.graph.binary import flatbuf
from etviz_lsp.graph.core import model
from etviz_lsp.graph.memory import memory_files, memory_plan, memory_svg
from etviz_lsp.graph.readers import pte_reader
from etviz_lsp.graph_files import GraphFiles
from tests import pte_artifacts
from tests.explorer_fixtures import REPO_ROOT
from tests.test_pte_etrecord import artifacts  # noqa: F401 (the session fixture)

BROWSER_DIR = REPO_ROOT / "tests" / "browser"
SCRIPTS = REPO_ROOT / "tests" / "scripts"
ARTIFACTS = REPO_ROOT / "build" / "artifacts"
_BUILT: dict[str, tuple[Path, Any]] = {}


@pytest.fixture(scope="session")
def portable(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    if "portable" not in _BUILT:
        _BUILT["portable"] = pte_artifacts.portable_only(tmp_path_factory.mktemp("portable"))
    return _BUILT["portable"]


@pytest.fixture(params=["portable", "xnnpack"])
def program(request: pytest.FixtureRequest) -> tuple[Path, Any]:
    if request.param == "portable":
        return request.getfixturevalue("portable")
    made = request.getfixturevalue("artifacts")
    return made.pte, made.executorch


# ---- what ExecuTorch's memory planning says, from the program in memory ------------------


@dataclass
class Expected:
    planned: list[int]  # non_const_buffer_sizes
    storages: list[tuple[int, int, int, int, int]]  # mem id, offset, bytes, first, last
    live: list[int]  # bytes alive while each instruction runs
    out: list[int]  # bytes each instruction's new outputs take
    peaks: dict[int, tuple[int, int]]  # mem id -> (bytes, first instruction reaching them)
    at_peak: dict[int, list[tuple[int, int]]]  # mem id -> (bytes, offset), largest first


def _specs(node: Any) -> list[Any]:
    spec = node.meta.get("spec")
    specs = spec if isinstance(spec, (list, tuple)) else [spec]
    return [s for s in specs if hasattr(s, "mem_id")]


def _op_name(node: Any) -> str:
    schema = getattr(node.target, "_schema", None)
    return schema.name if schema is not None else getattr(node.target, "__name__", "")


def _emitting_nodes(nodes: list[Any], plan: Any) -> list[int]:
    """The graph node each instruction runs, matched in order by operator name."""
    from executorch.exir.schema import DelegateCall, KernelCall

    names = []
    for instruction in plan.chains[0].instructions:
        args = instruction.instr_args
        if isinstance(args, KernelCall):
            names.append(plan.operators[args.op_index].name)
        else:
            assert isinstance(args, DelegateCall), args
            names.append("executorch_call_delegate")
    emitted: list[int] = []
    for index, node in enumerate(nodes):
        if len(emitted) < len(names) and node.op == "call_function" \
                and _op_name(node) == names[len(emitted)]:
            emitted.append(index)
    assert len(emitted) == len(names), (names, [_op_name(n) for n in nodes])
    return emitted


def expected_plan(et: Any) -> Expected:
    plan = et.executorch_program.execution_plan[0]
    nodes = list(et.exported_program().graph.nodes)
    emitted = _emitting_nodes(nodes, plan)
    # A view's spec repeats its base's place and lifetime: one storage per place and time.
    storages: dict[tuple[int, int, int, int], int] = {}
    for node in nodes:
        for spec in _specs(node):
            if spec.const or spec.mem_id is None or spec.mem_offset is None:
                continue
            key = (spec.mem_id, spec.mem_offset, *spec.lifetime)
            storages[key] = max(storages.get(key, 0), spec.nbytes())

    def alive(node_index: int, mem: int | None = None) -> list[tuple[int, int]]:
        return [(size, offset) for (m, offset, a, b), size in storages.items()
                if a <= node_index <= b and mem in (None, m)]

    placed, out = [], [0] * len(emitted)
    for (mem, offset, a, b), size in storages.items():
        runs = [i for i, n in enumerate(emitted) if a <= n <= b]
        if runs:  # a spec alive only at the output node runs no instruction
            placed.append((mem, offset, size, runs[0], runs[-1]))
            if nodes[a].op != "placeholder":  # made by an instruction, not brought in
                out[runs[0]] += size
    peaks, at_peak = {}, {}
    for mem in {key[0] for key in storages}:
        top = max(sum(s for s, _ in alive(n, mem)) for n in range(len(nodes)))
        at = next(i for i, n in enumerate(emitted) if sum(s for s, _ in alive(n, mem)) == top)
        peaks[mem] = (top, at)
        at_peak[mem] = sorted(alive(emitted[at], mem), key=lambda t: (-t[0], t[1]))
    return Expected(
        list(plan.non_const_buffer_sizes), sorted(placed),
        [sum(s for s, _ in alive(n)) for n in emitted], out, peaks, at_peak,
    )


def _read(pte: Path) -> tuple[model.GraphCollection, memory_plan.MemoryPlan]:
    collection = inputs.known_kind(pte).read(pte)  # as opened: with the ETRecord beside it
    plans = memory_plan.plans_of(collection)
    assert len(plans) == 1
    return collection, plans[0]


def _attrs(node: model.Node) -> dict[str, str]:
    return {item["key"]: item["value"] for item in node["attrs"]}


# ---- the figures ------------------------------------------------------------------------


def test_memory_figures_equal_executorchs_planning(program: tuple[Path, Any]) -> None:
    pte, et = program
    expected = expected_plan(et)
    collection, plan = _read(pte)
    assert plan.notes == []
    assert [plan.buffers[m].planned for m in sorted(plan.buffers)] == expected.planned[1:]
    assert sorted((t.mem_id, t.offset, t.size, t.first, t.last) for t in plan.tensors) \
        == expected.storages
    assert plan.live == expected.live
    assert plan.out == expected.out
    graph = collection.graphs[0]
    nodes = {node["id"]: node for node in graph.nodes}
    info = graph.group_attrs[""]
    for mem, (peak, at) in expected.peaks.items():
        found = plan.buffers[mem]
        assert (found.peak, found.at) == (peak, at)
        alive = [(t.size, t.offset) for t in found.alive]
        assert sorted(alive) == sorted(expected.at_peak[mem])
        assert [size for size, _ in alive] == [size for size, _ in expected.at_peak[mem]]
        assert f"buffer {mem}: {peak:,} bytes at instruction {at}" in info["memory peak"]
        unused = expected.planned[mem] - peak
        assert f"{expected.planned[mem]:,} planned, {peak:,} at the peak, {unused:,}" \
            in info["memory planned vs peak"]
        assert _attrs(nodes[f"instruction_{at}"])["memory live"] == f"{expected.live[at]:,} bytes"
    for i, out in enumerate(expected.out):
        assert _attrs(nodes[f"instruction_{i}"])["memory out"] == f"{out:,} bytes"


def test_each_output_says_its_lifetime_and_delegates_keep_their_own_memory(
    artifacts: pte_artifacts.Artifacts,  # noqa: F811
) -> None:
    from executorch.exir.lowered_backend_module import get_lowered_backend_modules

    collection, plan = _read(artifacts.pte)
    nodes = {node["id"]: node for node in collection.graphs[0].nodes}
    for tensor in plan.tensors:  # "out 0 lifetime" beside "out 0 memory" (the place)
        attrs = _attrs(nodes[tensor.maker])
        assert attrs[f"out {tensor.maker_out} lifetime"].startswith(
            f"instructions {tensor.first}–{tensor.last}, {tensor.size:,} bytes")
    # The peak's tensors name the op that made them and the user's line (the ETRecord's).
    at_peak = collection.graphs[0].group_attrs[""]["memory at peak"]
    assert re.search(r"from instruction_1 \(aten::cumsum, \S*pte_artifacts\.py:\d+\)", at_peak)
    lowered = get_lowered_backend_modules(artifacts.executorch.exported_program().graph_module)
    calls = [n for n in collection.graphs[0].nodes if _attrs(n).get("backend")]
    assert len(calls) == len(lowered) == 2
    for call, module in zip(calls, lowered, strict=True):
        held = module.original_module.state_dict.values()
        weights = sum(t.nbytes for t in held) + sum(
            t.nbytes for t in module.original_module.constants.values())
        memory = _attrs(call)["memory"]
        assert memory.startswith("its own: XnnpackBackend allocates its working memory")
        assert f"constants {weights:,} bytes" in memory and _attrs(call)["blob size"] in memory


def test_cli_summary_files_and_timeline(
    portable: tuple[Path, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pte, et = portable
    expected = expected_plan(et)
    out = tmp_path / "m.json"
    assert cli.main(["--once", str(pte), "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    peak, at = expected.peaks[1]
    line = next(ln for ln in printed.splitlines() if "memory: forward buffer 1" in ln)
    assert f"peak {peak:,} of {expected.planned[1]:,} planned bytes at instruction {at}" in line
    top3 = [int(n.replace(",", "")) for n in re.findall(r"([\d,]+) bytes", line.split(
        "largest alive:")[1])]
    assert top3 == [size for size, _ in expected.at_peak[1][:3]]
    assert f"memory timeline: {tmp_path / 'm.memory.svg'}" in printed
    live = json.loads((tmp_path / "m.memory-live.json").read_text())["forward"]["results"]
    assert [live[f"instruction_{i}"]["value"] for i in range(len(live))] == expected.live
    made = json.loads((tmp_path / "m.memory-out.json").read_text())["forward"]["results"]
    assert [made[f"instruction_{i}"]["value"] for i in range(len(made))] == expected.out
    assert (tmp_path / "m.memory.svg").read_text().startswith("<svg")
    assert not list(tmp_path.glob(".*.tmp")), "written atomically, no temp left"
    chosen = tmp_path / "chosen.svg"
    assert cli.main(["--once", str(pte), "-o", str(out), "--memory-svg", str(chosen)]) == 0
    assert chosen.read_text().count('class="tensor"') == len(expected.storages)
    capsys.readouterr()
    pt2 = tmp_path / "m.pt2"
    pt2.write_bytes(b"PK\x03\x04")
    assert cli.main(["--once", str(pt2), "--memory-svg", str(chosen)]) == 1
    assert "--memory-svg goes with a .pte program" in capsys.readouterr().err


# ---- the timeline in a real browser ----------------------------------------------------


def _svg_report(svg: Path, shot: Path) -> dict[str, Any]:
    node = shutil.which("node")
    if node is None or not (BROWSER_DIR / "node_modules" / "playwright-core").is_dir():
        pytest.fail("browser test tools missing: run scripts/setup-browser.sh")
    done = subprocess.run([node, str(BROWSER_DIR / "check_memory_svg.mjs"), str(svg), str(shot)],
                          cwd=BROWSER_DIR, capture_output=True, text=True, timeout=180)
    report = json.loads(done.stdout.splitlines()[-1])
    assert done.returncode == 0 and report["phase"] == "svg", done.stdout + done.stderr
    return report


def test_the_timeline_opens_in_chromium_with_a_bar_per_tensor_and_the_peak(
    program: tuple[Path, Any], tmp_path: Path
) -> None:
    pte, et = program
    expected = expected_plan(et)
    files = GraphFiles(tmp_path / "m.json")
    svg = memory_files.write(pte_reader.read_pte(pte), files, None).svg
    assert svg is not None
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / f"memory-{pte.stem}.png"
    report = _svg_report(svg, shot)
    assert report["errors"] == [] and shot.stat().st_size > 5_000
    (panel,) = report["panels"]
    bars = panel["bars"]
    assert sorted((1, int(b["offset"]), int(b["bytes"]), int(b["first"]), int(b["last"]))
                  for b in bars) == expected.storages
    nodes = {n["id"] for n in pte_reader.read_pte(pte).graphs[0].nodes}
    assert all(b["node-id"] in nodes and b["graph-id"] == "forward" for b in bars)
    assert all(f"{int(b['bytes']):,} bytes" in b["title"] for b in bars)
    # Drawn where the numbers say: the bars under the peak's band are the tensors alive at
    # the peak, and their bytes add up to it; heights follow bytes.
    (peak,) = panel["peaks"]
    top, at = expected.peaks[1]
    assert (int(peak["instruction"]), int(peak["bytes"])) == (at, top)
    middle = peak["band"]["x"] + peak["band"]["width"] / 2
    under = [b for b in bars if b["box"]["x"] < middle < b["box"]["x"] + b["box"]["width"]]
    assert sorted((int(b["bytes"]), int(b["offset"])) for b in under) \
        == sorted(expected.at_peak[1])
    assert sum(int(b["bytes"]) for b in under) == top
    assert all(b["at-peak"] == "true" for b in under)
    ratios = [b["box"]["height"] / int(b["bytes"]) for b in bars if int(b["bytes"]) >= 64]
    assert ratios == pytest.approx([ratios[0]] * len(ratios), rel=0.01)
    # The peak line sits at the peak's bytes on the same scale.
    plot_bottom = max(b["box"]["y"] + b["box"]["height"] for b in bars if b["offset"] == "0")
    assert peak["line"]["y"] == pytest.approx(plot_bottom - top * ratios[0], abs=1.5)


# ---- damaged memory fields ------------------------------------------------------------


def _fields(data: bytes) -> list[tuple[int, str, int, str]]:
    """(value index, field, byte position, struct format) of each memory field present."""
    schema = pte_reader.program_schema()
    root = flatbuf.Table.root(memoryview(data), schema)
    plan = root.vector("execution_plan")[0]
    found = []
    for index, value in enumerate(plan.vector("values")):
        kind, tensor = value.union("val")
        if kind != "Tensor" or tensor is None or tensor.get("allocation_info") is None:
            continue
        alloc = tensor.get("allocation_info")
        for name in ("memory_id", "memory_offset_low", "memory_offset_high"):
            pos = alloc._field_pos(alloc._def(name).slot)  # present in the file: patchable
            if pos:
                found.append((index, name, pos, "<I"))
        sizes = tensor._field_pos(tensor._def("sizes").slot)
        start = sizes + struct.unpack_from("<I", data, sizes)[0]
        for dim in range(struct.unpack_from("<I", data, start)[0]):
            found.append((index, f"sizes[{dim}]", start + 4 + 4 * dim, "<i"))
    return found


def _patched(data: bytes, edits: list[tuple[int, str, int]]) -> bytes:
    buf = bytearray(data)
    for pos, fmt, number in edits:
        struct.pack_into(fmt, buf, pos, number)
    return bytes(buf)


def _field(data: bytes, value: int, name: str) -> tuple[int, str]:
    return next((pos, fmt) for v, n, pos, fmt in _fields(data) if (v, n) == (value, name))


def _open_everything(path: Path) -> list[str]:
    """Read, annotate, node data, SVG: the notes, or [] after a one-line error."""
    try:
        collection = pte_reader.read_pte(path)
    except EtvizError as exc:
        assert str(exc).startswith(str(path)) and "\n" not in str(exc), exc
        return []
    plans = memory_plan.plans_of(collection)
    json.dumps(collection.to_json())
    json.dumps(memory_plan.node_data(plans))
    assert memory_svg.render(plans, "t").startswith("<svg")
    memory_plan.summary_lines(plans)
    return [note for plan in plans for note in plan.notes]


def test_damaged_memory_fields_become_notes(
    portable: tuple[Path, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pte, et = portable
    data = pte.read_bytes()
    _, plan = _read(pte)
    placed = next(t for t in plan.tensors if t.offset > 0 and t.size == 64 and t.role == "")
    buffer = plan.buffers[1].planned
    offset, memory_id = (_field(data, placed.value, name) for name in
                         ("memory_offset_low", "memory_id"))
    dim0, dim1 = (_field(data, placed.value, f"sizes[{d}]") for d in (0, 1))
    cases = [
        ("tensors past the end of their buffer", [(*offset, buffer)]),
        ("memory ids the method does not plan", [(*memory_id, 7)]),
        ("sizes that give no byte count", [(*dim0, -3)]),
        # Two dims of 2**31 - 1 float32: past any byte count a tensor may have.
        ("sizes that give no byte count", [(*dim0, 2**31 - 1), (*dim1, 2**31 - 1)]),
        # Moved onto another tensor alive at the same time.
        ("tensors alive at once in the same bytes", [(*offset, placed.offset + 16)]),
    ]
    for kind, edits in cases:
        bad = tmp_path / "bad.pte"
        bad.write_bytes(_patched(data, edits))
        notes = _open_everything(bad)
        assert any(note.startswith(kind + ":") for note in notes), (kind, notes)
        out = tmp_path / "bad.json"
        assert cli.main(["--once", str(bad), "-o", str(out)]) == 0
        printed = capsys.readouterr().out
        assert f"forward: {kind}" in printed
        graph = json.loads(out.read_text())["graphs"][0]
        assert kind in graph["groupNodeAttributes"][""]["memory notes"]


def test_an_instruction_reading_a_later_value_is_a_note(
    portable: tuple[Path, Any], tmp_path: Path
) -> None:
    # Lifetimes out of order: instruction 0 made to read the value the last kernel writes.
    pte, _ = portable
    data = bytearray(pte.read_bytes())
    root = flatbuf.Table.root(memoryview(bytes(data)), pte_reader.program_schema())
    plan = root.vector("execution_plan")[0]
    first = plan.vector("chains")[0].vector("instructions")[0].union("instr_args")[1]
    assert first is not None
    args_pos = first._field_pos(first._def("args").slot)
    start = args_pos + struct.unpack_from("<I", data, args_pos)[0]
    last_out = plan.vector("outputs")[-1]
    struct.pack_into("<i", data, start + 4, last_out)  # its input argument
    bad = tmp_path / "order.pte"
    bad.write_bytes(bytes(data))
    notes = _open_everything(bad)
    assert any(n.startswith("tensors alive at once in the same bytes") for n in notes), notes


FUZZ = settings(
    max_examples=int(os.environ.get("ETVIZ_FUZZ_EXAMPLES", "150")),
    deadline=None,
    derandomize="ETVIZ_FUZZ_EXAMPLES" not in os.environ,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
NUMBERS = st.sampled_from([0, 1, 2, 7, 63, 64, 4096, 2**31 - 1, 2**31, 2**32 - 1, -1, -(2**31)])


@FUZZ
@given(picks=st.lists(st.tuples(st.integers(0, 10_000), NUMBERS | st.integers(-2**31, 2**32 - 1)),
                      min_size=1, max_size=6))
def test_fuzzed_memory_fields_never_crash(portable: tuple[Path, Any], tmp_path_factory,
                                          picks: list[tuple[int, int]]) -> None:
    pte, _ = portable
    data = pte.read_bytes()
    fields = _fields(data)
    edits = []
    for which, number in picks:
        _, _, pos, fmt = fields[which % len(fields)]
        low, high = (-(2**31), 2**31 - 1) if fmt == "<i" else (0, 2**32 - 1)
        edits.append((pos, fmt, min(max(number, low), high)))
    path = tmp_path_factory.getbasetemp() / "fuzzed-memory.pte"
    path.write_bytes(_patched(data, edits))
    _open_everything(path)


# ---- a script's executorch stage --------------------------------------------------------


@pytest.mark.slow
def test_a_scripts_executorch_stages_carry_the_memory_plan_of_their_pte(tmp_path: Path) -> None:
    # The stage is read from ExecuTorch's own specs in the worker; the .pte the same
    # program wrote is read from the file: the two agree, op for instruction.
    from tests.test_cli_script import cli

    shutil.copy(SCRIPTS / "lower_two.py", tmp_path)
    done = cli(tmp_path, "--once", "lower_two.py", "--no-numeric")
    assert done.returncode == 0, done.stderr
    graph_json = tmp_path / ".etviz" / "lower_two.py.json"
    graphs = {g["id"]: g for g in json.loads(graph_json.read_text())["graphs"]}
    stages = [g for g in graphs if g.endswith("(executorch)")]
    assert len(stages) == 2 and stages[0].startswith("portable @"), list(graphs)
    live = json.loads(graph_json.with_name("lower_two.py.memory-live.json").read_text())
    made = json.loads(graph_json.with_name("lower_two.py.memory-out.json").read_text())
    svg = graph_json.with_name("lower_two.py.memory.svg").read_text()
    for stage, pte in zip(stages, ["portable.pte", "delegated.pte"], strict=True):
        _, plan = _read(tmp_path / pte)
        info = graphs[stage]["groupNodeAttributes"][""]
        (peak,) = plan.buffers.values()
        assert f"buffer 1: {peak.peak:,} bytes at op {peak.at} " in info["memory peak"]
        assert info["memory planned vs peak"] == memory_plan.planned_vs_peak(peak)
        assert info["planned tensors"] == _info_of(plan)["planned tensors"]
        assert set(r["value"] for r in live[stage]["results"].values()) == set(plan.live)
        assert set(r["value"] for r in made[stage]["results"].values()) == set(plan.out)
        line = next(ln for ln in done.stdout.splitlines() if f"memory: {stage} buffer 1" in ln)
        assert f"peak {peak.peak:,} of {peak.planned:,} planned bytes at op {peak.at}" in line
        panel = svg.split(f'data-graph-id="{stage}" data-buffer="1"')[1].split("</g>")[0]
        assert panel.count('class="tensor"') == len(plan.tensors)
        assert f"{plan.instructions} ops;" in panel
    assert f"memory timeline: {graph_json.with_name('lower_two.py.memory.svg')}" in done.stdout


def _info_of(plan: memory_plan.MemoryPlan) -> dict[str, str]:
    return memory_plan.graph_info(plan, {})
