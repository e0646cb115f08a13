"""Quantize (PT2E, XNNPACKQuantizer) and lower (XNNPACK) a small net with a CPU op in it.

``torch.cumsum`` is an op XNNPACK does not take, so lowering makes two partitions with
the cumsum running on the CPU between them (a third holds the classifier head).

    python examples/quantize_and_lower.py build/qdq.json

writes every stage (exported, edge, tagged, lowered, executorch) as one graph collection.
"""

from __future__ import annotations

import copy
import sys
from pathlib import Path
from typing import Any

import torch
from torch import nn


class ConvBlock(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.conv(x))


class CumsumNet(nn.Module):
    def __init__(self, channels: int = 4, classes: int = 5) -> None:
        super().__init__()
        self.first = ConvBlock(channels)
        self.second = ConvBlock(channels)
        self.head = nn.Linear(channels, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.first(x)
        x = torch.cumsum(x, dim=1)  # XNNPACK has no cumsum: runs on the CPU
        x = self.second(x)
        return self.head(x.mean(dim=(2, 3)))


def example_inputs() -> tuple[torch.Tensor]:
    return (torch.randn(1, 4, 8, 8),)


def quantized_program() -> torch.export.ExportedProgram:
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
        XNNPACKQuantizer,
        get_symmetric_quantization_config,
    )
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    torch.manual_seed(0)
    model, inputs = CumsumNet().eval(), example_inputs()
    captured = torch.export.export(model, inputs).module()
    config = get_symmetric_quantization_config(is_per_channel=True)
    prepared = prepare_pt2e(captured, XNNPACKQuantizer().set_global(config))  # type: ignore[arg-type]
    prepared(*inputs)
    return torch.export.export(convert_pt2e(prepared), inputs)


def stages() -> dict[str, Any]:
    """Every stage of the pipeline, by name."""
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge, to_edge_transform_and_lower

    quantized = quantized_program()
    edge = to_edge(quantized)
    # The partitioner tags the program it is given in place: give it a copy.
    tagged = XnnpackPartitioner().partition(copy.deepcopy(edge.exported_program()))
    lowered = to_edge_transform_and_lower(quantized, partitioner=[XnnpackPartitioner()])
    return {
        "quantized": quantized,
        "edge": edge,
        "tagged": tagged,
        "lowered": lowered,
        # to_executorch rewrites the lowered program in place (out variants): use a copy.
        "executorch": copy.deepcopy(lowered).to_executorch(),
    }


def main(out: Path) -> None:
    from etviz_lsp.graph import convert
    from etviz_lsp.graph.core.writer import write_json_atomic

    found = stages()
    items = [("cumsum_net (quantized)", found.pop("quantized"))]
    items += [("cumsum_net", program) for program in found.values()]
    collection = convert.from_programs(items, label="cumsum_net")
    write_json_atomic(out, collection.to_json())
    print(out, convert.summarize(collection))


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "quantize_and_lower.json"))
