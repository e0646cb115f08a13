"""Warm re-run through WarmWorker vs a cold ``python script.py``, side by side.

    python bench/warm_vs_cold.py [--repeat N] [--script PATH]

Cold: a fresh interpreter runs the script (imports torch, exports, exits); it does not even
convert or write a graph. Warm: the same script through a started WarmWorker (fork, run,
capture, convert, write JSON, clean up the process tree). Prints the median of N runs each
and the ratio. The worker's one-time start (imports + warm-up) is printed separately.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from etviz_lsp.worker import WarmWorker  # noqa: E402

DEFAULT_SCRIPT = Path(__file__).resolve().parent / "trivial_export.py"


def cold_run(script: Path) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, str(script)], check=True, capture_output=True)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--script", type=Path, default=DEFAULT_SCRIPT)
    args = parser.parse_args()
    script = args.script.resolve()

    with tempfile.TemporaryDirectory() as tmp:
        worker = WarmWorker(log_dir=Path(tmp) / "logs")
        started = time.perf_counter()
        worker.start()
        first = worker.run(script, Path(tmp) / "out.json", timeout=300)
        start_cost = time.perf_counter() - started
        cold: list[float] = []
        warm: list[float] = []
        try:
            for _ in range(args.repeat):  # interleaved: both see the same machine load
                cold.append(cold_run(script))
                began = time.perf_counter()
                worker.run(script, Path(tmp) / "out.json", timeout=300)
                warm.append(time.perf_counter() - began)
        finally:
            worker.close()

    cold_median, warm_median = statistics.median(cold), statistics.median(warm)
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"script: {script.name} ({len(first.graphs)} graph(s)), {args.repeat} runs each; "
          f"{os.cpu_count()} cores, load average {load} (other jobs slow both sides)")
    print(f"{'':32} {'median':>8} {'min':>8} {'max':>8}")
    print(f"{'cold  python script.py':32} {cold_median:8.2f} {min(cold):8.2f} {max(cold):8.2f}")
    print(f"{'warm  WarmWorker.run (re-run)':32} {warm_median:8.2f} {min(warm):8.2f} "
          f"{max(warm):8.2f}")
    print(f"ratio cold / warm: {cold_median / warm_median:.1f}x")
    print(f"worker start + first run (paid once, in the background): {start_cost:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
