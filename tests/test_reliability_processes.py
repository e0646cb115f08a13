"""Processes: a fork storm is stopped whole, and a writer killed mid-write never leaves half
a JSON at the target. Both use tiny processes (no torch import in the storm's script)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import psutil

from tests.conftest import PYTHON
from tests.test_cli_script import cli, processes_in

# Forks without end (bounded at 200 processes so a failure cannot take the shared machine
# down): children double-fork and leave the session; every process keeps forking.
FORK_STORM = """\
import os, time
os.makedirs("storm", exist_ok=True)
for _ in range(200):
    if len(os.listdir("storm")) >= 200:
        break
    if os.fork() == 0:
        if os.fork() == 0:
            os.setsid()
        open(f"storm/{os.getpid()}", "w").close()
    time.sleep(0.02)
while True:
    time.sleep(0.1)
"""


def test_a_fork_storm_is_killed_whole_at_the_timeout(tmp_path: Path, worker_mode: str) -> None:
    script = tmp_path / "storm.py"
    script.write_text(FORK_STORM)
    started = time.monotonic()
    done = cli(tmp_path, "--once", str(script), "-o", str(tmp_path / "out.json"),
               "--timeout", "4", env={"ETVIZ_WORKER_MODE": worker_mode})
    took = time.monotonic() - started
    assert done.returncode == 1
    assert "storm.py" in done.stderr and "timed out after 4 s" in done.stderr
    pids = [int(name) for name in os.listdir(tmp_path / "storm")]
    assert len(pids) >= 20, "the storm did fork"
    # A killed process lingers until the kernel has torn it down (slower on a busy
    # machine): waited for, up to 10 s, instead of a fixed pause.
    deadline = time.monotonic() + 10
    while (alive := _living(pids) + processes_in(tmp_path)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert alive == []
    print(f"\nfork storm: {len(pids)} processes, all gone {took:.1f} s after the start")


def _living(pids: list[int]) -> list[psutil.Process]:
    found = []
    for pid in pids:
        try:
            process = psutil.Process(pid)
            if process.status() != psutil.STATUS_ZOMBIE:
                found.append(process)
        except psutil.NoSuchProcess:
            continue
    return found


WRITER = """\
import sys
from pathlib import Path
from etviz_lsp.graph.core.writer import write_json_atomic
nodes = [{"id": f"n{i}", "label": "linear", "attrs": [{"key": "k", "value": "v" * 40}]}
         for i in range(int(sys.argv[2]))]
print("ready", flush=True)
for round in range(1000):
    write_json_atomic(Path(sys.argv[1]), {"label": f"round {round}", "graphs": [{"nodes": nodes}]})
"""


def test_a_writer_killed_mid_write_never_leaves_half_a_json(tmp_path: Path) -> None:
    target = tmp_path / "graph.json"
    target.write_text('{"label": "last good graph", "graphs": []}')
    kills = 0
    for delay in (0.05, 0.15, 0.3, 0.5, 0.8):
        writer = subprocess.Popen([PYTHON, "-c", WRITER, str(target), "200000"],
                                  stdout=subprocess.PIPE, text=True)
        assert writer.stdout is not None and writer.stdout.readline() == "ready\n"
        time.sleep(delay)  # mid-way through writing ~20 MB, at a different point each time
        writer.send_signal(signal.SIGKILL)
        writer.wait()
        kills += 1
        data = json.loads(target.read_text())  # always a whole JSON: the old one or a new one
        assert data["label"] == "last good graph" or len(data["graphs"][0]["nodes"]) == 200000
    assert kills == 5
    assert {p.name for p in tmp_path.iterdir() if not p.name.endswith(".tmp")} == {"graph.json"}
