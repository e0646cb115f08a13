"""A profiled save vs a plain one (issue 17), side by side through one warm worker.

    python bench/profile_save.py [--repeat N] [--iterations K] [--script PATH]

What the editor does on save of a quantize + XNNPACK lowering script, in a started
WarmWorker (the language server's): **plain** (``etviz.profile: off``: run, capture,
convert, write the JSON), **keep** (``command``, the default: the same, and the run keeps
its ExecuTorch program and example inputs for the command), **profiled** (``onSave``: the
same, then the program runs K times with ETDump on, its graphs and the latency node data
are written). Also the command alone (**profile command**: a fresh child runs the kept
program). Interleaved, so all see the same machine load; medians and ratios to plain.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from etviz_lsp.worker import RunTarget, WarmWorker  # noqa: E402

DEFAULT_SCRIPT = REPO / "examples" / "quantize_and_lower.py"


def timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--script", type=Path, default=DEFAULT_SCRIPT)
    args = parser.parse_args()
    script = args.script.resolve()

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        target = RunTarget(script=script, cwd=folder)  # the example writes its JSON there
        out = folder / "out.json"
        worker = WarmWorker(log_dir=folder / "logs")
        worker.start()
        try:
            worker.run(target, out, timeout=600, profile_iterations=args.iterations)  # warm
            times: dict[str, list[float]] = {
                "plain": [], "keep": [], "profiled": [], "profile command": [],
            }
            for _ in range(args.repeat):
                times["plain"].append(timed(lambda: worker.run(target, out, timeout=600)))
                times["keep"].append(timed(
                    lambda: worker.run(target, out, timeout=600, keep_program=True)
                ))
                times["profile command"].append(timed(
                    lambda: worker.profile_kept(out, iterations=args.iterations, timeout=600)
                ))
                times["profiled"].append(timed(lambda: worker.run(
                    target, out, timeout=600, keep_program=True,
                    profile_iterations=args.iterations,
                )))
        finally:
            worker.close()

    plain = statistics.median(times["plain"])
    print(f"{script.name}, {args.repeat} runs each, interleaved; "
          f"profile = {args.iterations} iterations")
    print(f"{'':16} {'median s':>9} {'min s':>7} {'max s':>7} {'vs plain':>9}")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"{name:16} {median:9.2f} {min(values):7.2f} {max(values):7.2f} "
              f"{median / plain:8.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
