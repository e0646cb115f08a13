"""An LLM export, plain and under etviz: what running it through ``etviz-lsp --once`` costs.

    .venv/bin/python bench/llm_export.py                  # 8 layers, one pair (~10 min here)
    .venv/bin/python bench/llm_export.py --layers 2 --rounds 3
    .venv/bin/python bench/llm_export.py --layers 28 --keep

The flow is the one of issue 24: ExecuTorch's ``export_llm`` on a Qwen3-0.6B-shaped model
(grouped-query attention, QK-norm; dims shrunk so it runs on 2 cores), 8da4w quantization,
XNNPACK with extended ops. Each round runs it as ``python -m
executorch.extension.llm.export.export_llm ARGS`` and as ``python -m etviz_lsp --once -m
executorch.extension.llm.export.export_llm -- ARGS``, alternating which goes first, so
machine load drifting over the rounds hits both alike (``--together``: both at once).
Printed per run and as medians:

- wall seconds, from the start of the process to its end;
- CPU seconds (user + system) of the whole process tree (``os.wait4``: each process waits
  for its children, so the etviz run's warm worker and run child are counted);
- peak memory of the whole process tree, sampled every ``SAMPLE_SECONDS``: the largest sum of
  PSS (a page shared by the warm worker and its forked run child counts half in each: the
  memory the tree really holds) and the largest sum of RSS (shared pages counted twice);
- the ratios etviz / plain (issue 24's targets: wall <= 1.05, peak memory <= 1.10).

:func:`measure_stages` is the place for measures of what the etviz run wrote (each stage's
graph): it gets the graph JSON and returns rows to print.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench import bytecode  # noqa: E402

MODULE = "executorch.extension.llm.export.export_llm"
SAMPLE_SECONDS = 0.25
# Issue 24's model: Qwen3-0.6B's shape with small dims; only the layer count varies.
PARAMS = {
    "dim": 128, "n_heads": 4, "n_kv_heads": 2, "head_dim": 32, "hidden_dim": 384,
    "vocab_size": 1024, "norm_eps": 1e-06, "rope_theta": 1000000.0, "use_qk_norm": True,
    "qk_norm_before_rope": True, "use_hf_rope": True,
}  # fmt: skip


def flow_args(params: Path, output_dir: Path) -> list[str]:
    """``export_llm``'s arguments (hydra overrides) for the issue's flow."""
    return [
        "base.model_class=stories110m", f"base.params={params}",
        "model.use_kv_cache=True", "model.use_sdpa_with_kv_cache=True",
        "quantization.qmode=8da4w", "quantization.group_size=32",
        "backend.xnnpack.enabled=True", "backend.xnnpack.extended_ops=True",
        "export.max_seq_length=128", "export.max_context_length=128",
        f"export.output_dir={output_dir}",
    ]  # fmt: skip


@dataclass
class Run:
    """One finished process tree."""

    mode: str
    wall: float
    cpu: float
    peak_pss: int  # bytes, the largest sum over the tree
    peak_rss: int
    status: int
    graph: Path | None = None  # the etviz run's graph JSON
    extra: list[str] = field(default_factory=list)


def _tree(root: int) -> list[int]:
    """``root`` and every process below it (from /proc: children by parent pid)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as stat:
                # The name may hold spaces and parentheses: fields start after the last ')'.
                ppid = int(stat.read().rpartition(b")")[2].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    found, pending = [], [root]
    while pending:
        pid = pending.pop()
        found.append(pid)
        pending.extend(children.get(pid, ()))
    return found


def _memory(pid: int) -> tuple[int, int]:
    """(PSS, RSS) of one process in bytes; (0, 0) once it is gone."""
    pss = rss = 0
    try:
        with open(f"/proc/{pid}/smaps_rollup") as rollup:
            for line in rollup:
                if line.startswith("Pss:"):
                    pss = int(line.split()[1]) * 1024
                elif line.startswith("Rss:"):
                    rss = int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return pss, rss


class TreeSampler(threading.Thread):
    """Samples the tree's summed PSS and RSS until stopped; keeps the largest of each."""

    def __init__(self, root: int) -> None:
        super().__init__(daemon=True)
        self.root = root
        self.peak_pss = self.peak_rss = 0
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.wait(SAMPLE_SECONDS):
            sizes = [_memory(pid) for pid in _tree(self.root)]
            self.peak_pss = max(self.peak_pss, sum(p for p, _ in sizes))
            self.peak_rss = max(self.peak_rss, sum(r for _, r in sizes))

    def stop(self) -> None:
        self._done.set()
        self.join()


def timed(mode: str, command: list[str], log: Path, env: dict[str, str] | None = None) -> Run:
    """Run ``command`` to its end; wall, CPU of its tree, sampled peak memory."""
    with log.open("wb") as out:
        started = time.perf_counter()
        process = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, cwd=log.parent, env=env
        )
        sampler = TreeSampler(process.pid)
        sampler.start()
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
        sampler.stop()
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode:
        tail = log.read_text(errors="replace").splitlines()[-5:]
        print(f"  {mode} exited {process.returncode}; the end of {log}:", *tail, sep="\n    ")
    return Run(mode, wall, usage.ru_utime + usage.ru_stime, sampler.peak_pss,
               sampler.peak_rss, process.returncode)  # fmt: skip


def plain(params: Path, folder: Path, timeout: float, checkout: Path) -> Run:
    out = folder / "plain"
    command = [sys.executable, "-m", MODULE, *flow_args(params, out)]
    return timed("plain", command, folder / "plain.log")


def under_etviz(params: Path, folder: Path, timeout: float, checkout: Path) -> Run:
    out = folder / "etviz"
    out.mkdir(exist_ok=True)
    graph = out / "graph.json"
    command = [
        sys.executable, "-m", "etviz_lsp", "--once", "--timeout", f"{timeout:g}",
        "-o", str(graph), "-m", MODULE, "--", *flow_args(params, out),
    ]  # fmt: skip
    # The etviz_lsp of ``checkout`` first on the path (an editable install may name another).
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(checkout), *filter(None, [os.environ.get("PYTHONPATH")])])}
    run = timed("etviz", command, folder / "etviz.log", env)
    run.graph = graph if graph.is_file() else None
    if run.graph is not None:
        run.extra = measure_stages(run.graph)
    return run


def measure_stages(graph_json: Path) -> list[str]:
    """Each stage the etviz run wrote: its size, its top level, and how long Model Explorer
    takes to show it in headless Chromium (``me_open_time``: after ``scripts/setup-browser.sh``;
    without the browser, the counts alone). Runs after the timed runs, never adds to them."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from me_graph_shape import shape_of

    collection = json.loads(graph_json.read_bytes())
    if not (REPO / "tests" / "browser" / "node_modules" / "playwright-core").is_dir():
        return [
            f"stage {graph['id']}: {len(graph['nodes'])} nodes, "
            f"{shape_of(graph).top_level} top-level items (no browser)"
            for graph in collection["graphs"]
        ]
    from me_open_time import open_times

    rows = open_times(graph_json, deadline=300)
    return [
        f"stage {row.shape.graph_id}: {row.shape.nodes} nodes, "
        f"{row.shape.top_level} top-level items, Model Explorer shows it in "
        + (f"{row.seconds:.1f} s" if row.seconds is not None else "> 300 s")
        for row in rows
    ]


def _mb(size: float) -> str:
    return f"{size / 2**20:,.0f} MB"


def report(runs: list[Run]) -> bool:
    """Per-run rows, medians and the ratios; True when both targets hold."""
    for run in runs:
        failed = f"  EXIT {run.status}" if run.status else ""
        print(f"  {run.mode:6} wall {run.wall:7.1f} s  cpu {run.cpu:7.1f} s  "
              f"peak PSS {_mb(run.peak_pss):>8}  RSS {_mb(run.peak_rss):>8}{failed}")
    med = {
        mode: {key: statistics.median(getattr(r, key) for r in runs if r.mode == mode)
               for key in ("wall", "cpu", "peak_pss", "peak_rss")}
        for mode in ("plain", "etviz")
    }  # fmt: skip
    for mode, row in med.items():
        print(f"median {mode:6} wall {row['wall']:7.1f} s  cpu {row['cpu']:7.1f} s  "
              f"peak PSS {_mb(row['peak_pss']):>8}  RSS {_mb(row['peak_rss']):>8}")
    ratio = {key: med["etviz"][key] / med["plain"][key] for key in med["plain"]}
    print(f"etviz / plain: wall {ratio['wall']:.3f} (target <= 1.05), cpu {ratio['cpu']:.3f}, "
          f"peak PSS {ratio['peak_pss']:.3f} (target <= 1.10), RSS {ratio['peak_rss']:.3f}")
    for run in runs:
        if run.mode == "etviz" and run.extra:
            print("\n".join(run.extra))
            break
    return all(r.status == 0 for r in runs) and ratio["wall"] <= 1.05 and ratio["peak_pss"] <= 1.10


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--layers", type=int, choices=(2, 8, 28), default=8)
    parser.add_argument("--rounds", type=int, default=1, help="pairs of runs (default 1)")
    parser.add_argument("--timeout", type=float, default=3000.0, help="etviz's --timeout")
    parser.add_argument("--keep", action="store_true", help="keep the outputs, say where")
    parser.add_argument("--together", action="store_true",
                        help="start the two runs of a round at once (on a shared machine the "
                        "load then hits both alike; each gets about half the cores)")
    parser.add_argument("--checkout", type=Path, default=REPO,
                        help="the etviz-lsp checkout to time (default: this one), e.g. an "
                        "older commit's `git archive` for a before/after")
    args = parser.parse_args()
    bytecode.compile_package()  # this checkout's; another --checkout compiles as it runs
    folder = Path(tempfile.mkdtemp(prefix=f"llm-export-{args.layers}-"))
    params = folder / f"params{args.layers}.json"
    params.write_text(json.dumps({**PARAMS, "n_layers": args.layers}))
    runs: list[Run] = []
    print(f"{args.layers} layers, {args.rounds} round(s), etviz from {args.checkout}, "
          f"load average {os.getloadavg()[0]:.2f}")
    checkout = args.checkout.resolve()
    for index in range(args.rounds):
        order = (plain, under_etviz) if index % 2 == 0 else (under_etviz, plain)
        if args.together:  # both at once: a load that comes and goes meets both
            with ThreadPoolExecutor(2) as pool:
                futures = [pool.submit(c, params, folder, args.timeout, checkout) for c in order]
                done = [future.result() for future in futures]
        else:
            done = [contender(params, folder, args.timeout, checkout) for contender in order]
        runs.extend(done)
        for run in done:
            print(f"  round {index + 1}: {run.mode} {run.wall:.1f} s", flush=True)
    print(f"load average at the end {os.getloadavg()[0]:.2f}")
    met = report(runs)
    if args.keep:
        print(f"outputs and logs in {folder}")
    else:
        subprocess.run(["rm", "-rf", str(folder)], check=False)
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
