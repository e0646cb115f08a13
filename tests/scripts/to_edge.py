import torch
from executorch.exir import to_edge

model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU()).eval()
exported = torch.export.export(model, (torch.randn(1, 4),))
edge = to_edge(exported)
