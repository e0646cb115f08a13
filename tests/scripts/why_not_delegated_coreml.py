"""A linear around an ``acosh``, lowered to Core ML (needs coremltools; lowering runs on
Linux, running needs a Mac). Core ML takes the linears, not the ``acosh``: its partitioner
refuses that op by name (coremltools does not implement it)."""

import torch
from executorch.backends.apple.coreml.partition.coreml_partitioner import CoreMLPartitioner
from executorch.exir import to_edge_transform_and_lower


class Net(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.first, self.last = torch.nn.Linear(8, 8), torch.nn.Linear(8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.last(torch.acosh(self.first(x).abs() + 1))  # the acosh


ep = torch.export.export(Net().eval(), (torch.randn(2, 8),))
coreml = to_edge_transform_and_lower(ep, partitioner=[CoreMLPartitioner()])
