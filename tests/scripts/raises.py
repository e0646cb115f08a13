"""Fails inside torch.export while tracing the model's forward (shape mismatch)."""

import torch


class Broken(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = torch.nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x) @ torch.ones(3, 3)  # line 12: (1, 2) @ (3, 3) cannot work


torch.export.export(Broken(), (torch.randn(1, 4),))
