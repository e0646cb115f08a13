"""Save -> refreshed graph in the worker's fork mode and portable mode, same script, one run.

    python bench/worker_modes.py [--saves N] [--pause SECONDS] [--layers L]

For each mode a real language server (its worker in that mode, started early as in an
editor) shows the script once, then the script is saved N times with a new layer count each
time (``didSave``, as an editor sends it) and the time from the save to the
``etviz/graphReady`` of the new graph is taken. Between saves it waits ``--pause`` seconds:
someone editing; the portable mode starts the next run host when a run ends, so a pause
shorter than a host's start (imports + warm-up) makes the save wait for it. Prints each
mode's median and the ratio portable / fork.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.conftest import PYTHON  # noqa: E402, F401  (sets PYTHONPATH for the server)
from tests.lsp_session import export_script, lsp_session  # noqa: E402

MODES = ("fork", "portable")


async def save_to_graph(
    mode: str, root: Path, saves: int, pause: float, layers: int
) -> list[float]:
    async with lsp_session(root, trusted=True, early_worker=True, workerMode=mode) as session:
        script = root / "workspace" / "model.py"
        script.write_text(export_script(layers))
        ready = "warm worker: ready after"  # lsp/prestart.py's log line
        await session.wait_for(lambda: session.logged(ready), 900, "the worker")
        await session.visualize(script)  # the first graph; the page is open from here on
        took = []
        for index in range(saves):
            await asyncio.sleep(pause)
            before = len(session.graph_ready)
            saved = time.monotonic()
            session.save(script, export_script(layers + 1 + index % 2))
            await session.next_graph(script, before, stale=False, seconds=900)
            took.append(time.monotonic() - saved)
        assert await session.close() == []
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--saves", type=int, default=5)
    parser.add_argument("--pause", type=float, default=20.0)
    parser.add_argument("--layers", type=int, default=4)
    args = parser.parse_args()
    medians = {}
    for mode in MODES:
        with tempfile.TemporaryDirectory(prefix=f"etviz-bench-{mode}-") as root:
            took = asyncio.run(save_to_graph(mode, Path(root), args.saves, args.pause,
                                             args.layers))
        medians[mode] = statistics.median(took)
        print(f"{mode:>8}: save -> refreshed graph median {medians[mode]:.2f} s "
              f"(min {min(took):.2f}, max {max(took):.2f}; {len(took)} saves, "
              f"{args.pause:g} s apart)", flush=True)
    print(f"portable / fork: {medians['portable'] / medians['fork']:.2f}")


if __name__ == "__main__":
    main()
