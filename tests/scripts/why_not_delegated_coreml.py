"""The net of ``why_not_delegated.py`` and an ``acosh`` lowered to Core ML (needs coremltools;
lowering runs on Linux, running needs a Mac). Core ML takes every op but the ``acosh``,
which its partitioner refuses by name (coremltools does not implement it)."""

import torch
from executorch.backends.apple.coreml.partition.coreml_partitioner import CoreMLPartitioner
from executorch.exir import to_edge_transform_and_lower


class Net(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.bn = torch.nn.BatchNorm2d(8)
        self.fc = torch.nn.Linear(8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.bn(self.conv(x))
        y = torch.cumsum(y.mean(dim=(2, 3)), dim=1)
        y = torch.acosh(y.abs() + 1)  # the acosh
        return self.fc(y)


ep = torch.export.export(Net().eval(), (torch.randn(1, 3, 8, 8),))
coreml = to_edge_transform_and_lower(ep, partitioner=[CoreMLPartitioner()])
