"""Where ``etviz-lsp --once`` spends its time on one ``.pt2``, stage by stage.

    .venv/bin/python bench/stages.py build/bench-cache/llama-339.pt2 [--repeat 5]

Runs the direct reader's stages in this process (the same calls ``once.run_once`` makes)
and prints the best wall and CPU time of each over ``--repeat`` runs. CPU time is the
steadier figure on a shared machine: a busy neighbour stretches wall time, not CPU time.
"""

from __future__ import annotations

import argparse
import gc
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))


def interpreter_start() -> tuple[float, float]:
    """A fresh interpreter that imports what ``--once`` imports, then exits."""
    code = "import time; import etviz_lsp.cli, etviz_lsp.once; print(time.process_time())"
    started = time.perf_counter()
    command = [sys.executable, "-c", code]
    out = subprocess.run(command, capture_output=True, text=True, cwd=REPO_ROOT)
    return time.perf_counter() - started, float(out.stdout)


def one_run(source: Path, output: Path) -> dict[str, tuple[float, float]]:
    from etviz_lsp.graph import builder, model, pt2_archive
    from etviz_lsp.graph.writer import dumps, write_bytes_atomic

    times: dict[str, tuple[float, float]] = {}
    state: dict[str, Any] = {}

    def stage(name: str, work: Callable[[], None]) -> None:
        wall, cpu = time.perf_counter(), time.process_time()
        work()
        times[name] = (time.perf_counter() - wall, time.process_time() - cpu)

    def records() -> None:
        state["records"] = pt2_archive.read_records(source)

    def build() -> None:
        collection = model.GraphCollection(label=source.name)
        for record in state.pop("records"):
            collection.graphs.extend(builder.build_graphs(record))
        state["collection"] = collection

    gc.disable()
    stage("read + parse + records", records)
    stage("build", build)
    stage("to_json", lambda: state.__setitem__("json", state["collection"].to_json()))
    stage("serialize", lambda: state.__setitem__("bytes", dumps(state.pop("json"))))
    stage("write", lambda: write_bytes_atomic(output, state.pop("bytes")))
    stage("free", state.clear)
    gc.enable()
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", type=Path)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    runs = []
    with tempfile.TemporaryDirectory() as folder:
        output = Path(folder) / "out.json"
        for _ in range(args.repeat):
            runs.append(one_run(args.source, output))
    starts = [interpreter_start() for _ in range(args.repeat)]
    print(f"{args.source.name}: best of {args.repeat} (wall s / cpu s)")
    total_wall = total_cpu = 0.0
    rows = [("start + imports", min(s[0] for s in starts), min(s[1] for s in starts))]
    for name in runs[0]:
        rows.append((name, min(r[name][0] for r in runs), min(r[name][1] for r in runs)))
    for name, wall, cpu in rows:
        total_wall, total_cpu = total_wall + wall, total_cpu + cpu
        print(f"  {name:<24} {wall:6.3f}  {cpu:6.3f}")
    print(f"  {'sum':<24} {total_wall:6.3f}  {total_cpu:6.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
