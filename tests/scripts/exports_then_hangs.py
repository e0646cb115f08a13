"""Exports (one finished stage), starts a process meant to outlive it, then hangs: for a
timeout or a Ctrl+C. The child's pid goes to spawned.pids in the current folder."""

import subprocess
import sys
import time
from pathlib import Path

import torch

program = torch.export.export(torch.nn.Linear(4, 2), (torch.randn(1, 4),))
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
Path("spawned.pids").write_text(f"{child.pid}\n")
while True:
    time.sleep(0.1)  # line 15
