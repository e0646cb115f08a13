"""Two programs lowered to ExecuTorch, each also written as a .pte here: CPU kernels only
(a view, state updated in place, a batch norm), and XNNPACK around a CPU cumsum."""

from pathlib import Path

import torch
from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
from executorch.exir import to_edge, to_edge_transform_and_lower


class Portable(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("seen", torch.zeros(2, 6))
        self.norm = torch.nn.BatchNorm1d(6, affine=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.norm(torch.cumsum(x, 0))
        self.seen.add_(y)
        return (y * 3).view(12) - 1


class Delegated(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = torch.nn.Linear(6, 6), torch.nn.Linear(6, 6)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.b(torch.cumsum(torch.relu(self.a(x)), 1))


x = (torch.randn(2, 6),)
portable = to_edge(torch.export.export(Portable().eval(), x)).to_executorch()
Path("portable.pte").write_bytes(portable.buffer)
delegated = to_edge_transform_and_lower(
    torch.export.export(Delegated().eval(), x), partitioner=[XnnpackPartitioner()]
).to_executorch()
Path("delegated.pte").write_bytes(delegated.buffer)
