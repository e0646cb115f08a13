"""Where ``etviz-lsp --once`` spends its time on one ``.pt2``, stage by stage.

    .venv/bin/python bench/stages.py build/bench-cache/llama-339.pt2 [--repeat 5]

Each run is a fresh process, as ``--once`` is, that makes the same calls as
``once.run_once`` and times each stage; the interpreter's start (a bare ``python -c
pass``) and exit are timed from outside. Prints the best wall and CPU time of each stage
over ``--repeat`` runs. CPU time is the steadier figure on a shared machine: a busy
neighbour stretches wall time, not CPU time. The package's bytecode is compiled first (see
``bytecode.py``; ``--no-bytecode`` leaves it as a checkout is on this machine).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parent
sys.path.insert(0, str(HERE))

import bytecode  # noqa: E402

Times = dict[str, tuple[float, float]]  # stage -> (wall s, CPU s)


def child(source: Path, output: Path) -> None:
    """One run, in this fresh process; prints its stage times as JSON."""
    times: Times = {}
    state: dict[str, Any] = {}

    def stage(name: str, work: Callable[[], None]) -> None:
        wall, cpu = time.perf_counter(), time.process_time()
        work()
        times[name] = (time.perf_counter() - wall, time.process_time() - cpu)

    def imports() -> None:
        import etviz_lsp.cli  # noqa: F401
        import etviz_lsp.graph.readers.pt2_archive  # noqa: F401
        import etviz_lsp.once  # noqa: F401

    def records() -> None:
        from etviz_lsp.graph.readers import pt2_archive

        state["records"] = pt2_archive.read_records(source)

    def build() -> None:
        from etviz_lsp.graph.core import builder, model

        collection = model.GraphCollection(label=source.name)
        for record in state.pop("records"):
            collection.graphs.extend(builder.build_graphs(record))
        state["collection"] = collection

    def serialize() -> None:
        from etviz_lsp.graph.core.writer import dumps

        state["bytes"] = dumps(state["collection"].to_json())

    def write() -> None:
        from etviz_lsp import atomic_file

        atomic_file.write_bytes(output, state.pop("bytes"))

    import gc

    gc.disable()  # as once.run_once: paused for the conversion, the graph freed before
    stage("imports", imports)
    stage("read + parse + records", records)
    stage("build", build)
    stage("serialize", serialize)
    stage("write", write)
    stage("free", state.clear)
    gc.enable()
    ended = time.perf_counter(), time.process_time()  # perf_counter: shared with the parent
    print(json.dumps({"times": times, "ended": ended}))


def interpreter_start() -> tuple[float, float]:
    """A bare interpreter's start and exit (``python -c pass``)."""
    launched = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    _, _, usage = os.wait4(process.pid, 0)
    process.returncode = 0
    return time.perf_counter() - launched, usage.ru_utime + usage.ru_stime


def one_run(source: Path, output: Path) -> Times:
    """A fresh process running ``child``; adds its exit, timed from here."""
    command = [sys.executable, __file__, str(source), "--child", str(output)]
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    process = subprocess.Popen(command, stdout=subprocess.PIPE, env=env, cwd=REPO_ROOT)
    assert process.stdout is not None
    out = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)  # its CPU time, as bench/run.py takes it
    finished = time.perf_counter()
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"a run failed (exit code {process.returncode})")
    report = json.loads(out)
    end_wall, end_cpu = report["ended"]
    total_cpu = usage.ru_utime + usage.ru_stime
    times: Times = {"interpreter start": interpreter_start()}
    times.update({name: (wall, cpu) for name, (wall, cpu) in report["times"].items()})
    times["interpreter exit"] = (finished - end_wall, max(0.0, total_cpu - end_cpu))
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("source", type=Path)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument(
        "--no-bytecode", action="store_true",
        help="leave the package uncompiled (see bytecode.py), as a checkout is here",
    )
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        child(args.source, args.child)
        sys.stdout.flush()
        os._exit(0)  # as cli.run ends --once on a .pt2: no interpreter tear-down
    bytecode.prepare(compiled=not args.no_bytecode)
    with tempfile.TemporaryDirectory() as folder:
        runs = [one_run(args.source, Path(folder) / "out.json") for _ in range(args.repeat)]
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"{args.source.name}: best of {args.repeat} fresh runs (wall s / CPU s), "
          f"load average {load}")
    total_wall = total_cpu = 0.0
    for name in runs[0]:
        wall, cpu = min(r[name][0] for r in runs), min(r[name][1] for r in runs)
        total_wall, total_cpu = total_wall + wall, total_cpu + cpu
        print(f"  {name:<24} {wall:6.3f}  {cpu:6.3f}")
    print(f"  {'sum':<24} {total_wall:6.3f}  {total_cpu:6.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
