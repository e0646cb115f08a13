import sys

import torch

line = "x" * 99 + "\n"
for _ in range(60_000):  # 6 MB to stdout, some to stderr
    sys.stdout.write(line)
sys.stderr.write(line * 10_000)
program = torch.export.export(torch.nn.ReLU(), (torch.randn(2),))
print("done")
