import torch

model = torch.nn.Linear(2, 2)
print(model(torch.randn(1, 2)))
