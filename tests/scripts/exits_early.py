import sys

import torch

print("leaving before exporting")
sys.exit(0)  # line 6
torch.export.export(torch.nn.ReLU(), (torch.randn(2),))
