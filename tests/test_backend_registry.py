"""The backends room: every module registers a backend, the registry answers for ids it does
not know, colours agree between a lowered stage and its ``.pte``; XNNPACK's delegates of
issue 26's net open into the ops of their partitions.
"""

from __future__ import annotations

import importlib
import pkgutil

import pytest

from etviz_lsp.graph import backends, convert
from etviz_lsp.graph.backends import registry
from etviz_lsp.graph.core import ir, palette
from etviz_lsp.graph.readers import pte_reader
from tests import backend_programs as bp

# XNNPACK's lowering of the net: the batch norm folded into the convolution's weights and the
# relu into its output clamp, between two transposes it inserts (NCHW <-> NHWC, debug handle
# 65535); the linear is one fully connected node.
XNNPACK_FUSIONS: bp.Fusions = [
    (("convolution", "_native_batch_norm_legit_no_training", "relu"),
     ("XNNStaticTranspose", "XNNConv2d", "XNNStaticTranspose")),
    (("linear",), ("XNNFullyConnected",)),
]  # fmt: skip


@pytest.fixture(scope="module")
def xnnpack(tmp_path_factory: pytest.TempPathFactory) -> bp.Lowered:
    return bp.lowered("XnnpackBackend", tmp_path_factory.mktemp("xnnpack"))


def test_every_xnnpack_delegate_opens_into_the_ops_of_its_partition(xnnpack) -> None:
    collection = pte_reader.read_pte(xnnpack.pte)
    graphs = bp.delegate_graphs(collection, "XnnpackBackend")
    modules = bp.lowered_modules(xnnpack.edge)
    assert len(graphs) == len(modules) == 2
    for graph, module in zip(graphs, modules, strict=True):
        expected = bp.explained(bp.partition_ops(module), XNNPACK_FUSIONS)
        assert sorted(bp.op_labels(graph)) == sorted(expected.elements())


def test_every_module_of_the_room_registers_a_backend() -> None:
    """Adding a backend is one module: the room imports each, each registers its own."""
    registered = registry.registered()
    for module in pkgutil.iter_modules(backends.__path__):
        if module.name not in backends.SHARED:
            found = vars(importlib.import_module(f"{backends.__name__}.{module.name}"))
            own = found.get("BACKENDS") or (found["BACKEND"],)
            assert own and all(backend in registered for backend in own), module.name
    ids = {backend.backend_id for backend in registered}
    assert {"XnnpackBackend", "VulkanBackend", "CoreMLBackend", "QnnBackend",
            "EthosUBackend", "TOSABackend", "OpenvinoBackend"} <= ids  # fmt: skip
    for backend in registered:  # each one colour, the palette's
        assert palette.backend_hue(backend.backend_id) == backend.hue
        assert backend.read is not None or backend.opaque.startswith("not read")


def test_an_unknown_backend_stays_one_node_with_a_line() -> None:
    payload = registry.open_payload("MyNpuBackend", memoryview(b"\x01" * 64), "MyNpuBackend #0")
    assert payload.graph is None
    assert payload.facts == {
        registry.PAYLOAD: "not read: etviz has no reader for MyNpuBackend's payload"
    }
    assert registry.get("MyNpuBackend").hue == palette.backend_hue("MyNpuBackend")
    known = registry.open_payload("QnnBackend", memoryview(b""), "QnnBackend #0")
    assert known.graph is None and "QNN" in known.facts[registry.PAYLOAD]


@pytest.mark.parametrize("backend", ["VulkanBackend", "XnnpackBackend"])
def test_a_partition_has_one_colour_in_the_lowered_stage_and_in_the_pte(
    backend: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    lowered = bp.lowered(backend, tmp_path_factory.mktemp(backend))
    stage = convert.from_programs([("lowered", lowered.edge)], "m").graphs[0]
    configs = {c.namespace_regex: c for c in stage.group_configs}
    layer = configs[f"(^|/){backend} #0$"]
    top = pte_reader.read_pte(lowered.pte).graphs[0]
    call = next(n for n in top.nodes if n["label"] == f"{backend} #0")
    assert call["style"]["backgroundColor"] == layer.background_color
    assert layer.background_color == palette.partition_fill(
        ir.PartitionInfo(backend, 0, f"{backend} #0")
    )
