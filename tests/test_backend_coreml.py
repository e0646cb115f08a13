"""A Core ML delegate opens into its ML program's operations (``graph/backends/coreml.py``),
on a program lowered here with ExecuTorch's ``CoreMLPartitioner`` (coremltools converts on
Linux; only running needs a Mac); damaged payloads give a line, and so does a missing
coremltools.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from etviz_lsp.graph.backends import coreml, registry
from etviz_lsp.graph.core import check
from etviz_lsp.graph.readers import pte_reader
from tests import backend_programs as bp
from tests.conftest import REPO_ROOT
from tests.test_pte_fuzz import EDITS, FUZZ
from tests.test_pte_fuzz import _mutated as mutated

BACKEND = "CoreMLBackend"
# What Core ML's conversion makes of the edge ops (its MIL passes, seen in the payload): the
# batch norm folded into the convolution, the others one MIL op each under MIL's names,
# and a cast in and out (float16 compute precision, its default) that no edge op has.
FUSIONS: bp.Fusions = [
    (("conv2d", "_native_batch_norm_legit_no_training"), ("conv",)),
    (("relu",), ("relu",)),
    (("mean",), ("reduce_mean",)),
    (("cumsum",), ("cumsum",)),
    (("linear",), ("linear",)),
    ((), ("cast", "cast")),
]


@pytest.fixture(scope="module")
def lowered(tmp_path_factory: pytest.TempPathFactory) -> bp.Lowered:
    return bp.lowered(BACKEND, tmp_path_factory.mktemp("coreml"))


def test_the_delegate_opens_into_the_ops_of_its_partition(lowered: bp.Lowered) -> None:
    collection = pte_reader.read_pte(lowered.pte)
    (graph,) = bp.delegate_graphs(collection, BACKEND)  # Core ML takes the whole net
    (module,) = bp.lowered_modules(lowered.edge)
    ops = bp.op_labels(graph)
    assert sorted(ops) == sorted(bp.explained(bp.partition_ops(module), FUSIONS).elements())
    facts = graph.group_attrs[""]
    assert facts["model"].startswith("ML program (Core ML spec ")
    assert facts["inputs"] == "x" and facts["outputs"] == "aten_linear_default"
    assert check.problems(json.loads(json.dumps(collection.to_json()))) == []


def test_inputs_outputs_and_weights_as_references(lowered: bp.Lowered) -> None:
    collection = pte_reader.read_pte(lowered.pte)
    top = {n["id"]: n for n in collection.graphs[0].nodes}
    (graph,) = bp.delegate_graphs(collection, BACKEND)
    nodes = {n["id"]: n for n in graph.nodes}
    shape = nodes["x"]["outputsMetadata"][0]["attrs"][0]["value"]
    assert shape == top["input_0"]["outputsMetadata"][0]["attrs"][0]["value"]
    (last,) = [e["sourceNodeId"] for e in nodes["output"]["incomingEdges"]]
    assert nodes[last]["label"] == "cast"  # back to float32, as the program's output is
    out_shape = nodes[last]["outputsMetadata"][0]["attrs"][0]["value"]
    assert out_shape == top["instruction_0"]["outputsMetadata"][0]["attrs"][0]["value"]
    (module,) = bp.lowered_modules(lowered.edge)
    state = module.original_module.state_dict  # the ExportedProgram the delegate was made from
    weights = {
        bp.attrs(n)["fqn"]: (n["outputsMetadata"][0]["attrs"][0]["value"], bp.attrs(n)["value"])
        for n in nodes.values() if bp.attrs(n)["kind"] == "constant"
    }  # fmt: skip
    linear = weights["p_fc_weight_to_fp16"]
    assert linear[0] == f"float16{list(state['fc.weight'].shape)}"  # the user's fc, in fp16
    stored = [where for _, where in weights.values() if "weight.bin" in where]
    assert stored and all(w.endswith("(not loaded)") for w in stored)
    conv = next(n for n in nodes.values() if n["label"] == "conv")
    conv_attrs = bp.attrs(conv)
    assert conv_attrs["strides"] == "[1, 1]" and conv_attrs["pad"] == "[1, 1, 1, 1]"
    fed = [nodes[e["sourceNodeId"]] for e in conv["incomingEdges"]]
    assert fed[1]["outputsMetadata"][0]["attrs"][0]["value"] == (
        f"float16{list(state['conv.weight'].shape)}"  # x, then the (folded) weight
    )
    assert "weight.bin" in bp.attrs(top["instruction_0"])["weights"]


def test_ops_name_the_edge_ops_they_came_from(lowered: bp.Lowered) -> None:
    collection = pte_reader.read_pte(lowered.pte, etrecord=lowered.etrecord)
    (graph,) = bp.delegate_graphs(collection, BACKEND)
    (module,) = bp.lowered_modules(lowered.edge)
    edge_names = {
        bp.edge_op_label(n.target): n.name
        for n in module.original_module.graph.nodes if n.op == "call_function"
    }  # fmt: skip
    linked = {
        n["label"]: bp.attrs(n)["edge ops"] for n in graph.nodes if "edge ops" in bp.attrs(n)
    }
    for mil, edge in (("reduce_mean", "mean"), ("cumsum", "cumsum"), ("relu", "relu"),
                      ("linear", "linear")):  # fmt: skip
        assert linked[mil] == edge_names[edge]
    call = next(n for n in collection.graphs[0].nodes if n["id"] == "instruction_0")
    assert "edge ops inside" not in bp.attrs(call)  # every op inside is linked


_BLOCKED = """
import sys
sys.modules["torch"] = None
{block}
from pathlib import Path
from etviz_lsp.graph.readers import pte_reader
collection = pte_reader.read_pte(Path(sys.argv[1]))
call = next(n for n in collection.graphs[0].nodes if n["id"] == "instruction_0")
attrs = {{a["key"]: a["value"] for a in call["attrs"]}}
print(len(collection.graphs), attrs.get("payload", ""), "|", attrs["files"].split(" (")[0])
print(sorted(m for m in sys.modules if m.startswith(("torch", "exec", "coremltools"))))
"""


@pytest.mark.parametrize("coremltools", ["present", "missing"])
def test_opens_without_torch_and_says_how_to_get_coremltools(lowered, coremltools) -> None:
    block = 'sys.modules["coremltools"] = None' if coremltools == "missing" else ""
    done = subprocess.run(
        [sys.executable, "-c", _BLOCKED.format(block=block), str(lowered.pte)],
        capture_output=True, text=True, cwd=REPO_ROOT, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    first, modules = done.stdout.splitlines()
    count, rest = first.split(" ", 1)
    if coremltools == "missing":
        assert int(count) == 1 and rest == f"{coreml.MISSING} | metadata.json"
        assert json.loads(modules.replace("'", '"')) == ["coremltools", "torch"]  # our Nones
    else:
        assert int(count) == 2 and rest == " | metadata.json"
        assert json.loads(modules.replace("'", '"')) == ["torch"]  # coremltools not imported


def test_a_cut_or_foreign_payload_is_one_line_on_the_node(lowered: bp.Lowered) -> None:
    (module,) = bp.lowered_modules(lowered.edge)
    blob = bytes(module.processed_bytes)
    for damaged, says in ((blob[:-3], "not a Core ML package"),
                          (blob[len(blob) // 2 :], "lies outside the payload"),
                          (b"{}" * 8, "not a Core ML package")):  # fmt: skip
        found = registry.open_payload(BACKEND, memoryview(damaged), "CoreMLBackend #0")
        assert found.graph is None and says in found.facts[registry.PAYLOAD]


@FUZZ
@given(edits=EDITS, cut=st.none() | st.floats(0, 1))
def test_mutated_coreml_payloads(lowered: bp.Lowered, edits, cut) -> None:
    (module,) = bp.lowered_modules(lowered.edge)
    bp.opens_or_one_line(BACKEND, mutated(bytes(module.processed_bytes), edits, cut))


@FUZZ
@given(part=st.sampled_from(["model", "index"]), edits=EDITS)
def test_mutated_model_or_index(lowered: bp.Lowered, part: str, edits) -> None:
    """Edits aimed at the two parts a reader parses: the model protobuf, the file index."""
    (module,) = bp.lowered_modules(lowered.edge)
    blob = bytes(module.processed_bytes)
    files = coreml.package_files(memoryview(blob))
    model = next(data for path, data in files.items() if path.endswith("model.mlmodel"))
    start = blob.index(bytes(model))
    span = (start, start + len(model)) if part == "model" else (len(blob) - 1200, len(blob))
    middle = mutated(blob[span[0] : span[1]], edits, None)
    bp.opens_or_one_line(BACKEND, blob[: span[0]] + middle + blob[span[1] :])


def test_core_ml_is_registered_with_its_reader() -> None:
    backend = registry.get(BACKEND)
    assert backend.read is coreml.read_payload and backend.label == "Core ML"
