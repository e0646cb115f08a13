"""The trivial export script of the warm-vs-cold benchmark: one small module, exported."""

import torch


class Small(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = torch.nn.Linear(16, 16)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.fc(x))


program = torch.export.export(Small().eval(), (torch.randn(2, 16),))
