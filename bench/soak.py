"""Long soak of the language server (run on demand, not in ``make test``).

    .venv/bin/python bench/soak.py [--refreshes 200] [--saves 100]

Starts a real trusted session (worker, Model Explorer server), refreshes a small `.pt2`
``--refreshes`` times printing the resident memory of the language server, its warm
worker and Model Explorer every 20 refreshes, then makes ``--saves`` saves of an export
script in bursts over ~10 s and prints how many runs were in flight at most. The short
versions of both are in ``tests/test_reliability_lsp.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.conftest import PYTHON  # noqa: E402  (sets PYTHONPATH for the server)
from tests.lsp_session import export_script, lsp_session  # noqa: E402
from tests.reliability_load import InFlight, refresh_soak, roles  # noqa: E402


async def soak(root: Path, refreshes: int, saves: int) -> None:
    archive = root / "workspace" / "soak.pt2"
    archive.parent.mkdir(parents=True)
    save = ("import sys, torch\ntorch.export.save(torch.export.export(torch.nn.ReLU(), "
            "(torch.randn(2),)), sys.argv[1])\n")
    subprocess.run([PYTHON, "-c", save, str(archive)], check=True)
    async with lsp_session(root, trusted=True) as session:
        await session.visualize(archive)
        started = time.monotonic()
        samples = await refresh_soak(session, archive, refreshes, 20)
        took = time.monotonic() - started
        for index, sample in enumerate(samples):
            print(f"after {index * 20:>4} refreshes: {sample}")
        print(f"{refreshes} refreshes in {took:.1f} s; growth: "
              f"server {samples[-1].server - samples[1].server:+.1f} MB, "
              f"worker {samples[-1].worker - samples[1].worker:+.1f} MB, "
              f"Model Explorer {samples[-1].explorer - samples[1].explorer:+.1f} MB "
              "(from the 20th refresh on)")
        script = root / "workspace" / "burst.py"
        script.write_text(export_script(layers=1))
        await session.visualize(script)
        before = len(session.graph_ready)
        with InFlight(roles(session)["worker"]) as in_flight:
            for index in range(saves):
                session.save(script, export_script(layers=1 + index % 7))
                await asyncio.sleep(0.5 if index % 10 == 9 else 0.045)
            await session.wait_for(lambda: len(session.graph_ready) > before, 180)
            await asyncio.sleep(3)
        print(f"{saves} saves: {len(in_flight.runs_seen)} run processes, "
              f"at most {in_flight.most} in flight")
        left = await session.close()
        print(f"processes left after shutdown: {len(left)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--refreshes", type=int, default=200)
    parser.add_argument("--saves", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="etviz-soak-") as root:
        asyncio.run(soak(Path(root), args.refreshes, args.saves))


if __name__ == "__main__":
    main()
