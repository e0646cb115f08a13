"""Exports (one finished stage), then fails: that stage must be kept, marked partial."""

import torch

program = torch.export.export(torch.nn.Linear(4, 2), (torch.randn(1, 4),))
raise RuntimeError("failed after exporting")  # line 6
