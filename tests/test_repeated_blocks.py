"""Repeated blocks said once, and the block lowered differently flagged (a real lowering).

Four blocks of one class in a ModuleList, each ending in a ``cumsum`` XNNPACK cannot take
(so no partition spans two blocks); the third runs one more ``cumsum`` between its linear
and its relu, so it is lowered differently from its siblings (two partitions): the graph
must say so, in the block's layer and in the graph info, and every partition must sit in
the block whose ops it holds.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import nn

from etviz_lsp.graph import convert


class Block(nn.Module):
    def __init__(self, with_cumsum: bool) -> None:
        super().__init__()
        self.proj = nn.Linear(16, 16)
        self.with_cumsum = with_cumsum

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.proj(x)
        if self.with_cumsum:
            y = torch.cumsum(y, dim=-1)
        return torch.cumsum(torch.relu(y), dim=-1)


class Stack(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(Block(with_cumsum=i == 2) for i in range(4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x)
        return x


@pytest.fixture(scope="module")
def graphs() -> dict[str, Any]:
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower

    exported = torch.export.export(Stack().eval(), (torch.randn(2, 16),))
    lowered = to_edge_transform_and_lower(exported, partitioner=[XnnpackPartitioner()])
    collection = convert.from_programs(
        [("stack", exported), ("stack (lowered)", lowered)], label="stack"
    ).to_json()
    return {graph["id"]: graph for graph in collection["graphs"]}


def attrs(node: dict[str, Any]) -> dict[str, str]:
    return {item["key"]: item["value"] for item in node["attrs"]}


def layers(graph: dict[str, Any]) -> dict[str, dict[str, str]]:
    found: dict[str, dict[str, str]] = graph["groupNodeAttributes"]
    return found


def test_blocks_of_one_structure_are_said_once(graphs: dict[str, Any]) -> None:
    exported = graphs["stack"]
    info = layers(exported)[""]["repeated blocks"]
    assert info.startswith("blocks: 4 blocks, 3 with the structure of blocks/0 (Block)"), info
    assert layers(exported)["blocks/1 (Block)"]["structure"] == "same as blocks/0 (Block)"
    assert layers(exported)["blocks/0 (Block)"]["structure"] == "shared by 3 of 4 blocks"
    differs = layers(exported)["blocks/2 (Block)"]["structure"]
    assert differs.startswith("differs from blocks/0 (Block): ops 4 vs 3"), differs
    assert "+cumsum" in differs


def test_the_block_lowered_differently_is_flagged(graphs: dict[str, Any]) -> None:
    lowered = next(graph for graph_id, graph in graphs.items() if "lowered" in graph_id)
    differs = layers(lowered)["blocks/2 (Block)"]["structure"]
    assert "partitions 2 vs 1, ops on CPU 2 vs 1" in differs and "+cumsum" in differs, differs
    assert "differ: blocks/2 (Block)" in layers(lowered)[""]["repeated blocks"]
    for namespace in ("blocks/0 (Block)", "blocks/1 (Block)", "blocks/3 (Block)"):
        assert layers(lowered)[namespace]["structure"] == "same as blocks/0 (Block)" or (
            layers(lowered)[namespace]["structure"] == "shared by 3 of 4 blocks"
        )


def test_each_partition_sits_in_the_block_it_runs(graphs: dict[str, Any]) -> None:
    lowered = next(graph for graph_id, graph in graphs.items() if "lowered" in graph_id)
    partition_layers = [ns for ns, a in layers(lowered).items() if "partition" in a]
    assert partition_layers
    for namespace in partition_layers:
        block = namespace.split("/")[:2]
        key = layers(lowered)[namespace]["partition"]
        modules = {
            attrs(node)["module"] for node in lowered["nodes"]
            if attrs(node).get("partition") == key and attrs(node)["kind"] == "op"
        }  # fmt: skip
        number = block[1].split(" ")[0]
        assert block[0] == "blocks" and all(m.startswith(f"blocks.{number}") for m in modules), (
            namespace, modules,
        )
    cumsums = [n["namespace"] for n in lowered["nodes"] if n["label"] == "cumsum"]
    assert sorted(cumsums) == [f"blocks/{i} (Block)" for i in (0, 1, 2, 2, 3)]
