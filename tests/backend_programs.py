"""Issue 26's net lowered here with each backend's own partitioner, once per test session,
and how a ``.pte``'s delegate graphs compare with the partitions of the lowered stage.

``BackendsNet`` (conv + batch norm + relu, mean, cumsum, linear) goes through
``to_edge_transform_and_lower(..., partitioner=[<Backend>Partitioner()],
generate_etrecord=True)`` and ``to_executorch()`` as a user's script would; each backend
takes a different part of it (XNNPACK and Vulkan leave mean and cumsum on the CPU, Core ML
takes it all). Nothing here needs a GPU or a Mac: lowering runs on Linux. As a script it
writes the ``.pte`` and ETRecord of each backend named (for the docs' screenshots):

    PYTHONPATH=. python -m tests.backend_programs OUT_DIR VulkanBackend [CoreMLBackend ...]
"""

from __future__ import annotations

import importlib
import json
import sys
import time
import tracemalloc
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from etviz_lsp.graph.backends import registry
from etviz_lsp.graph.core import builder, check, model, naming

# backend id -> (module, partitioner class)
PARTITIONERS = {
    "XnnpackBackend": ("executorch.backends.xnnpack.partition.xnnpack_partitioner",
                       "XnnpackPartitioner"),
    "VulkanBackend": ("executorch.backends.vulkan.partitioner.vulkan_partitioner",
                      "VulkanPartitioner"),
    "CoreMLBackend": ("executorch.backends.apple.coreml.partition", "CoreMLPartitioner"),
}  # fmt: skip
# A group of edge ops the backend runs as these ops of its own (its fusions, renames, and
# ops it adds with no edge op: an empty group).
Fusions = list[tuple[tuple[str, ...], tuple[str, ...]]]


class BackendsNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.fc = nn.Linear(8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.bn(self.conv(x)))
        y = y.mean(dim=(2, 3))
        y = torch.cumsum(y, dim=1)
        return self.fc(y)


@dataclass
class Lowered:
    pte: Path
    etrecord: Path
    edge: Any  # the EdgeProgramManager after lowering: the reference, never read from files


_BUILT: dict[str, Lowered] = {}


def lowered(backend: str, folder: Path) -> Lowered:
    """``BackendsNet`` lowered for ``backend`` (once per session) into ``folder``."""
    if backend not in _BUILT:
        from executorch.exir import to_edge_transform_and_lower

        module, name = PARTITIONERS[backend]
        partitioner = getattr(importlib.import_module(module), name)()
        torch.manual_seed(0)
        program = torch.export.export(BackendsNet().eval(), (torch.randn(1, 3, 8, 8),))
        edge = to_edge_transform_and_lower(
            program, partitioner=[partitioner], generate_etrecord=True
        )
        et = edge.to_executorch()
        pte = folder / f"{backend}.pte"
        pte.write_bytes(et.buffer)
        etrecord = folder / f"{backend}.etrecord"
        et.get_etrecord().save(str(etrecord))
        _BUILT[backend] = Lowered(pte, etrecord, edge)
    return _BUILT[backend]


def lowered_modules(edge: Any) -> list[Any]:
    """The lowered backend modules of the program, in the order their calls run."""
    graph_module = edge.exported_program().graph_module
    return [
        getattr(graph_module, node.args[0].target)
        for node in graph_module.graph.nodes
        if node.op == "call_function" and "executorch_call_delegate" in str(node.target)
    ]


def partition_ops(lowered_module: Any) -> list[str]:
    """The edge ops a lowered module took over (``getitem``s are not ops)."""
    return [
        edge_op_label(node.target)
        for node in lowered_module.original_module.graph.nodes
        if node.op == "call_function" and "getitem" not in str(node.target)
    ]


def edge_op_label(target: Any) -> str:
    """``aten.mean.dim`` -> ``mean``, as the graphs label it."""
    return naming.short_label(getattr(target, "__name__", str(target)))


def delegate_graphs(collection: model.GraphCollection, backend: str) -> list[model.Graph]:
    """The nested graphs of ``backend``'s delegates, in call order."""
    top = collection.graphs[0]
    by_id = {graph.id: graph for graph in collection.graphs}
    calls = [n for n in top.nodes if model.node_attr(n, "backend") == backend]
    return [by_id[sub] for call in calls for sub in call.get("subgraphIds", [])]


def op_labels(graph: model.Graph) -> list[str]:
    return [n["label"] for n in graph.nodes if model.node_attr(n, "kind") == "op"]


def explained(edge_ops: list[str], fusions: Fusions) -> Counter[str]:
    """The backend ops ``edge_ops`` should become under ``fusions``; every edge op must be
    in a group of the table (an op the table does not explain fails the test)."""
    left, expected = Counter(edge_ops), Counter[str]()
    for group, becomes in fusions:
        need = Counter(group)
        while group and need <= left:
            left -= need
            expected.update(becomes)
        if not group:  # ops the backend adds, whatever the partition holds
            expected.update(becomes)
    assert not left, f"edge ops the fusion table does not explain: {sorted(left.elements())}"
    return expected


def attrs(node: model.Node) -> dict[str, str]:
    return {item["key"]: item["value"] for item in node["attrs"]}


def named_data_bytes(lowered_module: Any) -> int:
    """Bytes the lowering put in the program's named data for this module (its weights)."""
    store = lowered_module.named_data_store_output
    if store is None:
        return 0
    return sum(len(store.buffers[entry.buffer_index]) for entry in store.pte_data.values())


def opens_or_one_line(backend: str, data: bytes) -> None:
    """Damaged payload bytes: a graph that builds into a sound collection, or one line on
    the node; never an exception, at most 5 s and 64 MiB (plus 40 bytes per payload byte)
    of Python memory."""
    tracemalloc.start()
    started = time.monotonic()
    try:
        found = registry.open_payload(backend, memoryview(data), f"{backend} #0")
        if found.graph is not None:
            graphs = builder.build_graphs(found.graph, graph_id="m")
            text = json.dumps(model.GraphCollection("m", graphs).to_json())
            assert check.problems(json.loads(text)) == []
        else:
            assert "\n" not in found.facts[registry.PAYLOAD]
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert time.monotonic() - started < 5
    assert peak < 64 * 1024 * 1024 + 40 * len(data)


if __name__ == "__main__":
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    for name in sys.argv[2:]:
        print(lowered(name, out).pte)
