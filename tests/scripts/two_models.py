"""Exports two models from a helper function; neither result is kept in a global."""

import torch


def export(model: torch.nn.Module, *shape: int) -> None:
    program = torch.export.export(model.eval(), (torch.randn(*shape),))
    print(program.graph_signature)


export(torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU()), 1, 4)
export(torch.nn.Conv2d(3, 3, 1), 1, 3, 4, 4)
