"""Export the example ConvNet and save it as a .pt2: ``python save_convnet_pt2.py OUT.pt2``."""

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from convnet import ConvNet, example_inputs  # noqa: E402

out = Path(sys.argv[1] if len(sys.argv) > 1 else "convnet.pt2")
out.parent.mkdir(parents=True, exist_ok=True)
program = torch.export.export(ConvNet().eval(), example_inputs())
torch.export.save(program, str(out))
print(f"saved {out}")
