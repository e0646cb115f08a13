"""`.pte` programs and ETRecords, on real artifacts made here (see ``tests/pte_artifacts.py``).

What ExecuTorch holds in memory (the emitted ``Program``, the lowered modules, the programs
the ETRecord was made from) is the reference; our readers only ever see the files.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

from etviz_lsp.cli import main
from etviz_lsp.errors import EtvizError
from etviz_lsp.graph import convert, inputs
from etviz_lsp.graph.core import model, palette
from etviz_lsp.graph.readers import etrecord, pte_reader
from tests import pte_artifacts
from tests.conftest import REPO_ROOT

_BUILT: dict[str, Any] = {}


@pytest.fixture(scope="session")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> pte_artifacts.Artifacts:
    if "q" not in _BUILT:
        _BUILT["q"] = pte_artifacts.quantized_cumsum(tmp_path_factory.mktemp("pte"))
    return _BUILT["q"]


@pytest.fixture(scope="session")
def two_methods(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    if "two" not in _BUILT:
        _BUILT["two"] = pte_artifacts.two_methods(tmp_path_factory.mktemp("pte2"))
    return _BUILT["two"]


def attrs(node: model.Node) -> dict[str, str]:
    return {item["key"]: item["value"] for item in node["attrs"]}


def by_id(graph: model.Graph) -> dict[str, model.Node]:
    return {node["id"]: node for node in graph.nodes}


def opened(path: Path) -> model.GraphCollection:
    """``path`` opened as the CLI, the worker and the server open it: through its row of
    the kinds table, which finds the ETRecord beside a ``.pte`` (``inputs.companion``)."""
    return inputs.known_kind(path).read(path)


def instructions(graph: model.Graph) -> list[model.Node]:
    return [n for n in graph.nodes if "instruction" in attrs(n) and n["id"].startswith("instr")]


def plan_of(manager: Any, index: int = 0) -> Any:
    return manager.executorch_program.execution_plan[index]


# ---- the .pte graph -------------------------------------------------------------------


def test_one_node_per_instruction_labelled_by_operator_and_backend(artifacts) -> None:
    graph = pte_reader.read_pte(artifacts.pte, etrecord=None).graphs[0]
    plan = plan_of(artifacts.executorch)
    expected = []
    backend_count: dict[str, int] = {}
    for instruction in plan.chains[0].instructions:
        args = instruction.instr_args
        if type(args).__name__ == "KernelCall":
            expected.append(plan.operators[args.op_index].name)
        else:
            backend = plan.delegates[args.delegate_index].id
            expected.append(f"{backend} #{backend_count.get(backend, 0)}")
            backend_count[backend] = backend_count.get(backend, 0) + 1
    assert [n["label"] for n in instructions(graph)] == expected
    assert expected == ["XnnpackBackend #0", "aten::cumsum", "XnnpackBackend #1"]
    assert graph.id == "forward"


def test_delegates_and_the_cpu_kernel_between_them_are_wired_by_value(artifacts) -> None:
    graph = pte_reader.read_pte(artifacts.pte).graphs[0]
    nodes = by_id(graph)

    def sources(node_id: str) -> list[str]:
        return [e["sourceNodeId"] for e in nodes[node_id]["incomingEdges"]]

    assert sources("instruction_0") == ["input_0"]
    assert sources("instruction_1") == ["instruction_0"]  # the cumsum reads delegate 0's out
    assert sources("instruction_2") == ["instruction_1"]
    assert sources("output") == ["instruction_2"]
    cumsum = attrs(nodes["instruction_1"])
    assert cumsum["overload"] == "out"
    assert cumsum["args[1]"] == "1"  # dim=1, a literal, not an edge
    assert cumsum[pte_reader.RUNS_ON] == pte_reader.CPU


def test_blob_sizes_are_the_lowered_modules_payloads(artifacts) -> None:
    graph = pte_reader.read_pte(artifacts.pte).graphs[0]
    lowered = artifacts.edge_manager.exported_program().graph_module
    payloads = [len(lowered.get_submodule(f"lowered_module_{i}").processed_bytes) for i in (0, 1)]
    sizes = [attrs(n)["blob size"] for n in instructions(graph) if "blob size" in attrs(n)]
    assert sizes == [f"{size:,} bytes" for size in payloads]
    assert all(size > 500 for size in payloads)


def test_tensor_shapes_memory_plan_and_colours(artifacts) -> None:
    graph = pte_reader.read_pte(artifacts.pte).graphs[0]
    plan = plan_of(artifacts.executorch)
    nodes = by_id(graph)
    for node in instructions(graph):
        index = plan.chains[0].instructions[int(attrs(node)["instruction"])].instr_args.args[-1]
        tensor = plan.values[index].val
        dtype = pte_reader.DTYPES[tensor.scalar_type.name]
        shape = node["outputsMetadata"][0]["attrs"][0]
        assert shape == {"key": "tensor_shape", "value": f"{dtype}{list(tensor.sizes)}"}
    assert nodes["input_0"]["outputsMetadata"][0]["attrs"][0]["value"] == "float32[1, 3, 8, 8]"
    summary = graph.group_attrs[""]
    planned = plan.non_const_buffer_sizes
    assert summary["memory plan"] == ", ".join(
        f"buffer {i}: {size:,} bytes" for i, size in enumerate(planned) if i
    )
    assert summary["instructions"] == "3" and summary["kernel calls (CPU)"] == "1"
    assert nodes["instruction_1"]["style"] == palette.cpu_kernel_style()
    delegate_style = nodes["instruction_0"]["style"]
    assert delegate_style["backgroundColor"] != palette.CPU_KERNEL_FILL
    assert delegate_style["backgroundColor"] != nodes["instruction_2"]["style"]["backgroundColor"]


def test_xnnpack_blobs_open_as_nested_graphs_of_their_nodes(artifacts) -> None:
    graphs = opened(artifacts.pte).graphs
    assert [g.id for g in graphs] == [
        "forward", "forward/XnnpackBackend #0", "forward/XnnpackBackend #1",
    ]
    top = by_id(graphs[0])
    assert top["instruction_0"]["subgraphIds"] == ["forward/XnnpackBackend #0"]
    assert "subgraphIds" not in top["instruction_1"]  # the CPU kernel has nothing inside
    nested = graphs[2].group_attrs[""]  # says whose graph it is
    assert nested["delegate call"] == "instruction 2"
    assert nested["blob size"] == attrs(top["instruction_2"])["blob size"]
    inner = by_id(graphs[1])
    conv = next(n for n in inner.values() if n["label"] == "XNNConv2d")
    conv_attrs = attrs(conv)
    assert conv_attrs["kernel_height"] == "3" and conv_attrs["group_output_channels"] == "8"
    assert conv["outputsMetadata"][0]["attrs"][0]["value"] == "qint8[1, 8, 8, 8]"  # int8 inside
    assert "per tensor: scale" in conv_attrs["out 0 quantization"]
    # its handle is one of the instruction's, and names the convolution it came from
    handles = attrs(top["instruction_0"])["debug handles"].split(", ")
    assert conv_attrs["debug_handle"] in handles
    assert conv_attrs["edge ops"] == "aten_convolution_default"
    # the delegate's input is the XNNPACK graph's input, same tensor
    (first,) = [n for n in inner.values() if attrs(n)["kind"] == "input"]
    assert first["outputsMetadata"] == top["input_0"]["outputsMetadata"]


def test_every_method_is_a_graph(two_methods) -> None:
    path, manager = two_methods
    graphs = [g for g in pte_reader.read_pte(path).graphs if "/" not in g.id]  # not the XNN ones
    program = manager.executorch_program
    assert [g.id for g in graphs] == [plan.name for plan in program.execution_plan]
    assert [g.id for g in graphs] == ["forward", "shift"]
    for graph, plan in zip(graphs, program.execution_plan, strict=True):
        assert len(instructions(graph)) == len(plan.chains[0].instructions)
    shift = by_id(graphs[1])
    assert [n["label"] for n in instructions(graphs[1])] == ["XnnpackBackend #0", "aten::cumsum"]
    assert [e["sourceNodeId"] for e in shift["instruction_0"]["incomingEdges"]] == [
        "input_0", "input_1",
    ]
    # forward's constant (the 2.0 it multiplies by) is a node feeding the delegate
    forward = by_id(graphs[0])
    fed = [e["sourceNodeId"] for e in forward["instruction_0"]["incomingEdges"]]
    assert fed[0] == "input_0" and attrs(forward[fed[1]])["kind"] == "constant"


_TORCH_FREE = """
import sys
sys.modules["torch"] = None  # any import of torch now fails
from pathlib import Path
from etviz_lsp.graph import inputs
collection = inputs.known_kind(Path(sys.argv[1])).read(Path(sys.argv[1]))
print(len(collection.graphs), sorted(m for m in sys.modules if m.startswith(("torch", "exec"))))
"""


@pytest.mark.parametrize("which", ["pte", "etrecord"])
def test_the_readers_run_with_torch_unimportable(artifacts, which: str) -> None:
    path = artifacts.pte if which == "pte" else artifacts.etrecord
    done = subprocess.run(
        [sys.executable, "-c", _TORCH_FREE, str(path)],
        capture_output=True, text=True, cwd=REPO_ROOT, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    count, modules = done.stdout.split(" ", 1)
    assert int(count) == 3  # forward and its two XNNPACK graphs; or the ETRecord's stages
    assert json.loads(modules.replace("'", '"')) == ["torch"]  # only the None we put there


# ---- the ETRecord -----------------------------------------------------------------------


def _without_summary(graph: model.Graph) -> tuple[Any, Any]:
    layers = {k: v for k, v in graph.group_attrs.items() if k}
    return graph.nodes, layers


def test_etrecord_stages_equal_the_graphs_of_the_same_programs(artifacts) -> None:
    from executorch.devtools.etrecord import parse_etrecord

    collection = etrecord.read_etrecord(artifacts.etrecord)
    ids = [g.id for g in collection.graphs]
    assert ids == ["qcumsum (exported)", "forward (edge)", "forward (lowered)"]
    parsed = parse_etrecord(str(artifacts.etrecord))  # ExecuTorch's reader (unpickles: ours)
    exported = convert.from_programs([("m", parsed.exported_program)], "m").graphs[0]
    edge = convert.from_programs([("m", parsed.edge_dialect_program)], "m").graphs[0]
    assert _without_summary(collection.graphs[0]) == _without_summary(exported)
    assert _without_summary(collection.graphs[1]) == _without_summary(edge)
    handles = [attrs(n).get("debug_handle") for n in collection.graphs[1].nodes]
    assert sum(1 for h in handles if h) == 14  # every op node carries its handle


def test_the_lowered_view_puts_delegated_ops_in_partition_layers(artifacts) -> None:
    lowered = etrecord.read_etrecord(artifacts.etrecord).graphs[2]
    by_layer: dict[str, set[str]] = {}
    for node in lowered.nodes:
        a = attrs(node)
        if a["kind"] == "op":
            by_layer.setdefault(a.get("partition", "cpu"), set()).add(a["target"].split(".")[-2])
    assert by_layer["cpu"] == {"cumsum"}
    assert "convolution" in by_layer["XnnpackBackend#0"]
    assert "relu" in by_layer["XnnpackBackend#0"]
    assert "convolution" in by_layer["XnnpackBackend#1"]
    namespaces = {n["namespace"] for n in lowered.nodes}
    assert "XnnpackBackend #0/conv1 (Conv2d)" in {ns.rsplit("/cluster", 1)[0] for ns in namespaces}
    (second,) = [ns for ns in lowered.group_attrs if ns.rsplit("/", 1)[-1] == "XnnpackBackend #1"]
    assert lowered.group_attrs[second]["instruction"] == "2"


def test_pte_instructions_link_to_the_edge_ops_they_run(artifacts) -> None:
    graph = opened(artifacts.pte).graphs[0]  # the .etrecord beside it is found
    lowered = artifacts.edge_manager.exported_program().graph_module
    nodes = by_id(graph)
    for number, instruction in ((0, "instruction_0"), (1, "instruction_2")):
        inner = lowered.get_submodule(f"lowered_module_{number}").original_module.graph
        expected = {
            n.meta["debug_handle"] for n in inner.nodes
            if n.op == "call_function" and "debug_handle" in n.meta
        }  # fmt: skip
        assert attrs(nodes[instruction])["debug handles"] == ", ".join(map(str, sorted(expected)))
    # The CPU kernel: the lowered program's op left outside the delegates, by the handle
    # ExecuTorch's emitter recorded for that instruction (the one ETDump events carry).
    (cumsum,) = [n for n in lowered.graph.nodes if "cumsum" in str(n.target)]
    linked = attrs(nodes["instruction_1"])
    assert linked["debug handles"] == str(artifacts.executorch.debug_handle_map["forward"][1])
    assert linked["edge ops"] == cumsum.name == "aten_cumsum_default"
    assert linked["source"].endswith("pte_artifacts.py:29")  # the torch.cumsum line
    assert graph.group_attrs[""]["etrecord"] == artifacts.etrecord.name


def test_a_foreign_etrecord_is_not_linked(artifacts, two_methods) -> None:
    graphs = pte_reader.read_pte(two_methods[0], etrecord=artifacts.etrecord).graphs
    for graph in graphs:
        if "/" not in graph.id:  # a method (not a delegate's XNNPACK graph)
            assert "not linked" in graph.group_attrs[""]["etrecord"]
        assert not any("edge ops" in attrs(n) or "source" in attrs(n) for n in graph.nodes)


def test_the_pickles_of_an_etrecord_stay_closed(artifacts, tmp_path: Path) -> None:
    marker = tmp_path / "payload-ran"

    class Payload:
        def __reduce__(self) -> tuple[Any, ...]:
            return (os.system, (f"touch {marker}",))

    import pickle

    hostile = tmp_path / "hostile.etrecord"
    with zipfile.ZipFile(artifacts.etrecord) as src, zipfile.ZipFile(hostile, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename.endswith(("_state_dict", "_constants", "_example_inputs")):
                data = pickle.dumps(Payload())
            dst.writestr(info, data)
    collection = inputs.known_kind(hostile).read(hostile, allow_pickle=True)
    assert len(collection.graphs) == 3
    pte = tmp_path / "hostile.pte"  # and as the ETRecord beside a .pte
    pte.write_bytes(artifacts.pte.read_bytes())
    assert "edge ops" in attrs(opened(pte).graphs[0].nodes[1])
    assert not marker.exists()
    pickle.loads(pickle.dumps(Payload()))  # control: the payload is real when unpickled
    assert marker.exists()


# ---- bad files: one line naming the file ------------------------------------------------


def _damaged(artifacts, folder: Path) -> dict[str, tuple[Path, str]]:
    pte = artifacts.pte.read_bytes()
    cases = {
        "empty.pte": (b"", "too short"),
        "text.pte": (b"hello, this is not a program at all\n" * 4, "not an ExecuTorch program"),
        "truncated.pte": (pte[: len(pte) // 3], "truncated .pte"),
        "zip.pte": (artifacts.etrecord.read_bytes(), "a zip file, not an ExecuTorch program"),
        "garbled.pte": (pte[:8] + bytes(reversed(pte[8:1800])) + pte[1800:], "damaged .pte"),
        "empty.etrecord": (b"", "not an ETRecord (not a zip file)"),
        "program.etrecord": (pte, "not an ETRecord"),
    }
    found = {}
    for name, (data, cause) in cases.items():
        path = folder / name
        path.write_bytes(data)
        found[name] = (path, cause)
    plain = folder / "plain.etrecord"
    with zipfile.ZipFile(plain, "w") as archive:
        archive.writestr("notes.txt", "hi")
    found["plain.etrecord"] = (plain, "not an ETRecord (no ETRECORD_V0 entry)")
    broken_map = folder / "map.etrecord"
    with zipfile.ZipFile(artifacts.etrecord) as src, zipfile.ZipFile(broken_map, "w") as dst:
        for info in src.infolist():
            dst.writestr(info, b"{oops" if info.filename == "debug_handle_map" else src.read(info))
    found["map.etrecord"] = (broken_map, "debug_handle_map is not valid JSON")
    return found


def test_damaged_files_give_one_line_errors(artifacts, tmp_path: Path) -> None:
    for name, (path, cause) in _damaged(artifacts, tmp_path).items():
        with pytest.raises(EtvizError, match=".") as raised:  # noqa: PT011 (checked below)
            inputs.known_kind(path).read(path)
        message = str(raised.value)
        assert message.startswith(str(path)), name
        assert cause in message, (name, message)
        assert "\n" not in message, name


def test_a_damaged_etrecord_beside_a_pte_leaves_it_unlinked(artifacts, tmp_path: Path) -> None:
    pte = tmp_path / "model.pte"
    pte.write_bytes(artifacts.pte.read_bytes())
    (tmp_path / "model.etrecord").write_bytes(b"PK\x03\x04 cut short")
    graph = opened(pte).graphs[0]
    assert graph.group_attrs[""]["etrecord"].startswith("model.etrecord: not linked, it cannot")
    assert len(instructions(graph)) == 3
    with pytest.raises(EtvizError, match="model.etrecord: truncated or damaged ETRecord"):
        pte_reader.read_pte(pte, etrecord=tmp_path / "model.etrecord")


def test_cli_once_on_pte_and_etrecord(artifacts, tmp_path: Path, capsys) -> None:
    out = tmp_path / "pte.json"
    assert main(["--once", str(artifacts.pte), "-o", str(out), "--etrecord",
                 str(artifacts.etrecord)]) == 0  # fmt: skip
    data = json.loads(out.read_text())
    assert [g["id"] for g in data["graphs"]][0] == "forward"
    assert data["label"] == artifacts.pte.name
    assert main(["--once", str(artifacts.etrecord), "-o", str(tmp_path / "e.json")]) == 0
    assert "3 graph(s)" in capsys.readouterr().out
    bad = tmp_path / "bad.pte"
    bad.write_bytes(b"\0" * 64)
    assert main(["--once", str(bad), "-o", str(tmp_path / "b.json")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"etviz-lsp: error: {bad}: not an ExecuTorch program")
    assert "\n" not in err and not (tmp_path / "b.json").exists()
    assert main(["--once", str(artifacts.etrecord), "--etrecord", str(artifacts.etrecord)]) == 1
    assert "--etrecord goes with a .pt2 or .pte program" in capsys.readouterr().err


def test_the_table_decides_every_kind() -> None:
    assert inputs.suffixes() == (".py", ".pt2", ".pte", ".etrecord")
    assert [k.suffix for k in inputs.KINDS if k.runs_script] == [".py"]
    assert [k.suffix for k in inputs.KINDS if k.needs_trust] == [".py"]
    assert [k.suffix for k in inputs.KINDS if k.may_unpickle] == [".pt2"]
    assert inputs.expected() == "an export script .py, a .pt2, a .pte or an .etrecord"
    with pytest.raises(EtvizError, match="unsupported file type '.onnx'"):
        inputs.known_kind(Path("m.onnx"))
