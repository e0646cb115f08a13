"""Open a big ``.pt2`` four ways and print time, peak memory and JSON size side by side.

    .venv/bin/python bench/run.py                # 1k, 6.5k and 20k nodes
    .venv/bin/python bench/run.py --sizes 20k    # just one size

Contenders, each in a fresh subprocess (wall time from process start to JSON written;
CPU time (user + system) and peak memory (``ru_maxrss``) are the child's, from
``os.wait4``):

- ``etviz-lsp --once`` : the direct archive reader (no torch, no unpickling);
- ``etviz load path``  : ``torch.export.load`` + our FX reader + builder + JSON;
- ``Model Explorer``   : its built-in adapter (``BuiltinPytorchExportedProgramAdapter``:
  ``torch.export.load`` + ``pytorch_exported_program_adapter_impl``) + its JSON encoding
  (``utils.convert_adapter_response`` + ``json.dumps``), as its server does;
- ``ExecuTorch``       : ``visualize_with_clusters(ep, json_file_name=...)`` where it imports.

The ``.pt2`` files are built once (``bench/cache.py``) and cached in ``build/bench-cache/``.
The package's bytecode is compiled first, as installing it would (``bench/bytecode.py``;
``--no-bytecode`` times it as a checkout is on this machine).
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parent
OUT = REPO_ROOT / "build" / "bench-out"
sys.path.insert(0, str(HERE))

import bytecode  # noqa: E402
from cache import SIZES  # noqa: E402

ONCE = "etviz-lsp --once"
LOAD = "etviz load path"
ME = "Model Explorer adapter"
ET = "ExecuTorch visualize_with_clusters"
SLUGS = {ONCE: "once", LOAD: "load", ME: "me", ET: "et"}

_LOAD_SCRIPT = """
import sys
from pathlib import Path
from etviz_lsp.graph import convert, writer
collection = convert.from_pt2_loaded(Path(sys.argv[1]))
writer.write_json_atomic(Path(sys.argv[2]), collection.to_json())
"""

_ME_SCRIPT = """
import json, sys
from model_explorer.builtin_pytorch_exportedprogram_adapter import (
    BuiltinPytorchExportedProgramAdapter,
)
from model_explorer.consts import DEFAULT_SETTINGS
from model_explorer.utils import convert_adapter_response
graphs = BuiltinPytorchExportedProgramAdapter().convert(sys.argv[1], dict(DEFAULT_SETTINGS))
payload = convert_adapter_response(graphs)
payload["label"] = sys.argv[1].rsplit("/", 1)[-1]  # a collection ME's UI opens
with open(sys.argv[2], "w") as handle:
    handle.write(json.dumps(payload))
"""

_ET_SCRIPT = """
import sys
import torch
from executorch.devtools.visualization.visualization_utils import visualize_with_clusters
visualize_with_clusters(torch.export.load(sys.argv[1]), json_file_name=sys.argv[2])
"""


@dataclass
class Run:
    contender: str
    seconds: float | None = None
    cpu_seconds: float | None = None
    peak_mb: float | None = None
    json_bytes: int | None = None
    error: str | None = None


def command(contender: str, source: Path, output: Path) -> list[str]:
    python = sys.executable
    if contender == ONCE:
        return [python, "-m", "etviz_lsp", "--once", str(source), "-o", str(output)]
    script = {LOAD: _LOAD_SCRIPT, ME: _ME_SCRIPT, ET: _ET_SCRIPT}[contender]
    return [python, "-c", script, str(source), str(output)]


def measure(contender: str, source: Path, output: Path) -> Run:
    return measure_command(contender, command(contender, source, output), output)


def measure_command(contender: str, argv: list[str], output: Path) -> Run:
    """One fresh process running ``argv``, which must write ``output``: time, CPU, peak RSS."""
    output.unlink(missing_ok=True)
    paths = [str(REPO_ROOT), os.environ.get("PYTHONPATH", "")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in paths if p)}
    started = time.perf_counter()
    child = subprocess.Popen(
        argv,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=env,
        start_new_session=True,
    )
    assert child.stderr is not None
    err = child.stderr.read()  # drain while it runs (torch is chatty) so it never blocks
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - started
    run = Run(contender, seconds, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024)
    if child.returncode != 0 or not output.exists():
        lines = [line for line in err.decode(errors="replace").splitlines() if line.strip()]
        run.error = lines[-1][:120] if lines else f"exit code {child.returncode}"
        run.seconds = None
        return run
    run.json_bytes = output.stat().st_size
    return run


def node_count(json_path: Path) -> int:
    import json

    collection = json.loads(json_path.read_text())
    return sum(len(graph["nodes"]) for graph in collection["graphs"])


def ensure_cached(layers: int) -> Path:
    path = REPO_ROOT / "build" / "bench-cache" / f"llama-{layers}.pt2"
    if not path.exists():
        subprocess.run([sys.executable, str(HERE / "cache.py"), str(layers)], check=True)
    return path


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = ""
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        memory = f", {kb / 1024 / 1024:.0f} GiB RAM"
    except (OSError, ValueError, IndexError):
        pass
    return (
        f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores ({cpu}){memory}, "
        f"Python {platform.python_version()}"
    )


def fmt(value: float | None, pattern: str) -> str:
    return "-" if value is None else pattern.format(value)


def print_table(size: str, nodes: int, runs: list[Run]) -> None:
    once = next(run for run in runs if run.contender == ONCE)
    load = next(run for run in runs if run.contender == LOAD)
    print(f"\n### {size}: {nodes:,} graph nodes\n")
    print("| contender | wall s | CPU s | vs --once | peak MB | peak vs load path | JSON MB |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for run in runs:
        ratio = (
            f"{run.seconds / once.seconds:.1f}x"
            if run.seconds and once.seconds and run is not once
            else ""
        )
        mem = (
            f"{run.peak_mb / load.peak_mb:.2f}"
            if run.peak_mb and load.peak_mb and run.error is None
            else ""
        )
        size_mb = fmt(run.json_bytes / 1e6 if run.json_bytes else None, "{:.1f}")
        wall = fmt(run.seconds, "{:.2f}") if run.error is None else f"failed: {run.error}"
        cpu = fmt(run.cpu_seconds, "{:.2f}") if run.error is None else ""
        print(
            f"| {run.contender} | {wall} | {cpu} | {ratio} | {fmt(run.peak_mb, '{:.0f}')} "
            f"| {mem} | {size_mb} |"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", nargs="+", choices=list(SIZES), default=list(SIZES))
    parser.add_argument(
        "--once-repeat", type=int, default=3, help="runs of --once (best is kept; it is fast)"
    )
    parser.add_argument("--skip", nargs="*", default=[], choices=["load", "me", "et"])
    parser.add_argument(
        "--no-bytecode", action="store_true",
        help="leave the package uncompiled (see bytecode.py), as a checkout is here",
    )
    args = parser.parse_args()
    bytecode.prepare(compiled=not args.no_bytecode)
    skip = {"load": LOAD, "me": ME, "et": ET}
    contenders = [c for c in (ONCE, LOAD, ME, ET) if c not in {skip[s] for s in args.skip}]
    OUT.mkdir(parents=True, exist_ok=True)
    print(f"machine: {machine()}")
    print(f"load average at the start: {load_average()}")
    for size in args.sizes:
        source = ensure_cached(SIZES[size])
        runs = []
        for contender in contenders:
            output = OUT / f"{source.stem}.{SLUGS[contender]}.json"
            repeat = args.once_repeat if contender == ONCE else 1
            attempts = [measure(contender, source, output) for _ in range(max(1, repeat))]
            best = min(attempts, key=lambda run: run.seconds or float("inf"))
            best.peak_mb = max(run.peak_mb or 0 for run in attempts)
            cpu_times = [run.cpu_seconds for run in attempts if run.cpu_seconds is not None]
            best.cpu_seconds = min(cpu_times, default=None)  # the steadier figure
            runs.append(best)
            note = f"  {size} {contender}: {fmt(best.seconds, '{:.2f} s')} {best.error or ''}"
            print(note, file=sys.stderr, flush=True)
        if LOAD not in contenders:
            runs.append(Run(LOAD, error="skipped"))
        nodes = node_count(OUT / f"{source.stem}.once.json")
        print_table(size, nodes, runs)
    print(f"\nload average at the end: {load_average()}")
    return 0


def load_average() -> str:
    return ", ".join(f"{value:.2f}" for value in os.getloadavg()) + " (1, 5, 15 min)"


if __name__ == "__main__":
    raise SystemExit(main())
