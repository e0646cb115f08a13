"""Starts two processes meant to outlive the script, then exports.

Their pids go to spawned.pids in the current folder (the test checks they are gone).
"""

import subprocess
import sys
from pathlib import Path

import torch

sleep = [sys.executable, "-c", "import time; time.sleep(600)"]
same_group = subprocess.Popen(sleep)
escaped = subprocess.Popen(sleep, start_new_session=True)  # leaves the process group
Path("spawned.pids").write_text(f"{same_group.pid} {escaped.pid}\n")
program = torch.export.export(torch.nn.ReLU(), (torch.randn(2),))
