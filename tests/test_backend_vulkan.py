"""A Vulkan delegate opens into its operator calls (``graph/backends/vulkan.py``), on a
program lowered here with ExecuTorch's ``VulkanPartitioner``; damaged payloads give a line.
"""

from __future__ import annotations

import json
from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from etviz_lsp.graph.backends import registry, vulkan
from etviz_lsp.graph.core import check
from etviz_lsp.graph.readers import pte_reader
from tests import backend_programs as bp
from tests.test_pte_fuzz import EDITS, FUZZ
from tests.test_pte_fuzz import _mutated as mutated

BACKEND = "VulkanBackend"
# What Vulkan's lowering makes of the edge ops it takes (its own graph passes, seen in
# the payload): the batch norm folded into the convolution's weights and the relu made its
# clamp, one op; the linear that to_edge split into permute_copy + addmm, one op again.
FUSIONS: bp.Fusions = [
    (("convolution", "_native_batch_norm_legit_no_training", "relu"), ("conv_with_clamp",)),
    (("permute_copy", "addmm"), ("linear",)),
]


@pytest.fixture(scope="module")
def lowered(tmp_path_factory: pytest.TempPathFactory) -> bp.Lowered:
    return bp.lowered(BACKEND, tmp_path_factory.mktemp("vulkan"))


def test_every_delegate_opens_into_the_ops_of_its_partition(lowered: bp.Lowered) -> None:
    collection = pte_reader.read_pte(lowered.pte)
    graphs = bp.delegate_graphs(collection, BACKEND)
    modules = bp.lowered_modules(lowered.edge)
    assert len(graphs) == len(modules) == 2  # mean and cumsum stay on the CPU between them
    for graph, module in zip(graphs, modules, strict=True):
        ops = bp.op_labels(graph)
        assert sorted(ops) == sorted(bp.explained(bp.partition_ops(module), FUSIONS).elements())
        facts = graph.group_attrs[""]
        counts = Counter(ops).most_common()
        assert facts["vulkan ops"] == ", ".join(f"{op} ×{n}" for op, n in counts)
    assert check.problems(json.loads(json.dumps(collection.to_json()))) == []


def test_tensors_storage_and_constants_never_loaded(lowered: bp.Lowered) -> None:
    collection = pte_reader.read_pte(lowered.pte)
    top = {n["id"]: n for n in collection.graphs[0].nodes}
    modules = bp.lowered_modules(lowered.edge)
    for graph, module in zip(bp.delegate_graphs(collection, BACKEND), modules, strict=True):
        nodes = {n["id"]: n for n in graph.nodes}
        (first,) = [n for n in nodes.values() if bp.attrs(n)["kind"] == "input"]
        call = next(n for n in top.values() if graph.id in n.get("subgraphIds", []))
        feeding = top[call["incomingEdges"][0]["sourceNodeId"]]
        # the delegate's input is the tensor the program hands it, and lives in a GPU texture
        shape = first["outputsMetadata"][0]["attrs"][0]
        assert shape == feeding["outputsMetadata"][0]["attrs"][0]
        assert "TEXTURE_3D" in bp.attrs(first)["storage"]
        constants = [bp.attrs(n) for n in nodes.values() if bp.attrs(n)["kind"] == "constant"]
        named = sum(int(c["bytes"].split()[0].replace(",", "")) for c in constants)
        assert all("not read" in c["bytes"] for c in constants) and len(constants) == 2
        assert named == bp.named_data_bytes(module) > 0  # the weights the lowering stored
        assert bp.attrs(call)["constants"] == registry.constants_fact(0, named)
        (op,) = [n for n in nodes.values() if bp.attrs(n)["kind"] == "op"]
        assert {e["sourceNodeId"] for e in op["incomingEdges"]} >= {first["id"]}
        output = nodes["output"]
        assert [e["sourceNodeId"] for e in output["incomingEdges"]] == [op["id"]]
    conv = bp.attrs(next(n for n in bp.delegate_graphs(collection, BACKEND)[0].nodes
                         if n["label"] == "conv_with_clamp"))
    assert conv["args[3]"] == "[1, 1]" and conv["args[4]"] == "[1, 1]"  # stride, padding


def test_ops_are_never_linked_to_edge_ops_of_another_numbering(lowered: bp.Lowered) -> None:
    """Vulkan's delegate map keys its ops by handles of its own transformed graph: they name
    other ops of the method (its linear would read as the relu), so they link nothing."""
    collection = pte_reader.read_pte(lowered.pte, etrecord=lowered.etrecord)
    for graph in bp.delegate_graphs(collection, BACKEND):
        ops = [bp.attrs(n) for n in graph.nodes if bp.attrs(n)["kind"] == "op"]
        assert all("edge ops" not in op and op[registry.DELEGATE_DEBUG_ID] for op in ops)
    calls = [n for n in collection.graphs[0].nodes if bp.attrs(n).get("backend") == BACKEND]
    assert all(bp.attrs(c)["edge ops inside"].startswith("1 of 1 not linked") for c in calls)
    assert "aten_linear_default" not in bp.attrs(calls[0])["edge ops"]  # the call's own, right
    assert bp.attrs(calls[1])["edge ops"] == "aten_permute_copy_default, aten_addmm_default"


def test_a_cut_or_foreign_payload_is_one_line_on_the_node(lowered: bp.Lowered) -> None:
    blob = bytes(bp.lowered_modules(lowered.edge)[0].processed_bytes)
    for damaged, says in ((blob[:20], "header cut"), (blob[:200], "past the payload's end"),
                          (b"\0" * 64, "not a Vulkan graph")):
        found = registry.open_payload(BACKEND, memoryview(damaged), "VulkanBackend #0")
        assert found.graph is None and says in found.facts[registry.PAYLOAD]
        assert "\n" not in found.facts[registry.PAYLOAD]


@FUZZ
@given(which=st.integers(0, 1), edits=EDITS, cut=st.none() | st.floats(0, 1))
def test_mutated_vulkan_payloads(lowered: bp.Lowered, which: int, edits, cut) -> None:
    blob = bytes(bp.lowered_modules(lowered.edge)[which].processed_bytes)
    bp.opens_or_one_line(BACKEND, mutated(blob, edits, cut))


@FUZZ
@given(edits=EDITS, cut=st.none() | st.floats(0, 1))
def test_mutated_vulkan_pte_opens_or_says_why(lowered: bp.Lowered, tmp_path_factory, edits,
                                              cut) -> None:
    data = lowered.pte.read_bytes()
    blob = bytes(bp.lowered_modules(lowered.edge)[0].processed_bytes)
    start = data.index(blob)  # the first delegate's payload, where the .pte put it
    middle = mutated(blob, edits, cut).ljust(len(blob), b"\0")  # the segment keeps its size
    damaged = data[:start] + middle + data[start + len(blob) :]
    path = tmp_path_factory.getbasetemp() / "mutated-vulkan.pte"
    path.write_bytes(damaged)
    collection = pte_reader.read_pte(path)  # the program is intact: it always opens
    call = next(n for n in collection.graphs[0].nodes if bp.attrs(n).get("backend") == BACKEND)
    facts = bp.attrs(call)
    assert "subgraphIds" in call or facts[registry.PAYLOAD].startswith("not shown: ")


def test_vulkan_is_registered_with_its_reader() -> None:
    backend = registry.get(BACKEND)
    assert backend.read is vulkan.read_payload and backend.label == "Vulkan"
    assert backend.kernel_match is None  # its kernel events stay on the call's node
