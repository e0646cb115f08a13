"""Command -> first graph through the real language server: cold vs the pre-started worker.

    .venv/bin/python bench/first_graph.py [--repeat 1] [--layers 2]

Each measurement is a fresh trusted session over stdio (its own state folders, so its own
Model Explorer server too) whose workspace holds one tiny export script:

- **cold**: ``prestartWorker: false``; the command is sent as soon as the server has said
  it will not start the worker early, so the run pays the worker's start (torch and
  ExecuTorch imports, warm-up) and the run;
- **pre-started**: ``prestartWorker: true``; the command is sent once the server has logged
  that its early worker is ready, so the run pays only itself.

Time is from sending ``etviz.server.visualize`` to the first ``etviz/graphReady`` for the
script (a stage shown while it runs counts) and to the command's answer. Prints each
measurement, the medians, the ratio, and how long the early worker took to be ready.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.lsp_session import Session, export_script, lsp_session, seed_workspace  # noqa: E402

DECIDED = "warm worker: not started early"
READY = "warm worker: ready after"


@dataclass(frozen=True)
class Measured:
    first_graph: float  # command -> first etviz/graphReady for the script
    answer: float  # command -> the command's answer (the final graph)
    waited: float  # initialized -> when the command was sent
    load: float  # 1-minute load average when the command was sent


async def measure(root: Path, layers: int, prestart: bool) -> Measured:
    script = seed_workspace(root, {"export.py": export_script(layers)}) / "export.py"
    async with lsp_session(root, trusted=True, prestartWorker=prestart) as session:
        began = time.monotonic()
        awaited = READY if prestart else DECIDED
        await session.wait_for(lambda: session.logged(awaited), 900, awaited)
        waited = time.monotonic() - began
        load = os.getloadavg()[0]
        before = len(session.graph_ready)
        sent = time.monotonic()
        command = asyncio.ensure_future(session.visualize(script))
        first = await _first_graph(session, script, before, sent)
        await command
        answer = time.monotonic() - sent
        await session.close()
    return Measured(first, answer, waited, load)


async def _first_graph(session: Session, script: Path, before: int, sent: float) -> float:
    while not any(p.source == script.as_uri() for p in session.graph_ready[before:]):
        await asyncio.sleep(0.01)
    return time.monotonic() - sent


def _line(mode: str, m: Measured) -> str:
    return (f"{mode:<12} first graph {m.first_graph:6.2f} s   answer {m.answer:6.2f} s   "
            f"(command sent {m.waited:5.1f} s after start; load {m.load:.1f})")


async def main_async(repeat: int, layers: int) -> None:
    cold: list[Measured] = []
    early: list[Measured] = []
    with tempfile.TemporaryDirectory(prefix="etviz-first-graph-") as tmp:
        for index in range(repeat):  # interleaved: both see the same machine load
            cold.append(await measure(Path(tmp) / f"cold-{index}", layers, prestart=False))
            print(_line("cold", cold[-1]), flush=True)
            early.append(await measure(Path(tmp) / f"early-{index}", layers, prestart=True))
            print(_line("pre-started", early[-1]), flush=True)
    cold_first = statistics.median(m.first_graph for m in cold)
    early_first = statistics.median(m.first_graph for m in early)
    print(f"\nmedian command -> first graph: cold {cold_first:.2f} s, pre-started "
          f"{early_first:.2f} s: {cold_first / early_first:.1f}x sooner")
    print(f"the early worker was ready {statistics.median(m.waited for m in early):.1f} s "
          "after the server started (in the background, before any command)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--layers", type=int, default=2, help="Linear layers of the script")
    args = parser.parse_args()
    asyncio.run(main_async(args.repeat, args.layers))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
