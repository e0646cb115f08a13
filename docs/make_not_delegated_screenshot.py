"""Screenshot of why ops stayed on the CPU (README "Why not delegated").

    PYTHONPATH=. python docs/make_not_delegated_screenshot.py OUT.png [--node-modules DIR]

Runs ``tests/scripts/why_not_delegated.py`` (XNNPACK, Vulkan and both lowering one net)
through ``etviz-lsp --once`` in a temporary folder, then shows the stage both partitioners
lowered in a Model Explorer of its own (``make_screenshot.shoot``) with the ``cumsum`` left
on the CPU selected: its ``not delegated`` attribute, unfolded, in the side panel. Needs what
``make_screenshot.py`` needs (``chromium``, ``playwright-core``).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCRIPT = HERE.parent / "tests" / "scripts" / "why_not_delegated.py"
sys.path.insert(0, str(HERE))

from make_screenshot import shoot  # noqa: E402  (beside this file)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out", type=Path)
    default_modules = HERE.parent / "tests" / "browser" / "node_modules"
    parser.add_argument("--node-modules", type=Path, default=default_modules)
    parser.add_argument("--graph", default="both @", help="the first graph whose id has this")
    parser.add_argument("--select", default="aten_cumsum_default")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="etviz-not-delegated-"))
    shutil.copy(SCRIPT, folder / SCRIPT.name)
    subprocess.run(
        [sys.executable, "-m", "etviz_lsp", "--once", SCRIPT.name], cwd=folder, check=True
    )
    collection = json.loads((folder / ".etviz" / f"{SCRIPT.name}.json").read_text())
    index = next(i for i, g in enumerate(collection["graphs"]) if args.graph in g["id"])
    shoot(
        collection, args.out, args.node_modules, args.select, small=True, graph_index=index,
        expand="not delegated", side_panel_px=620,
    )


if __name__ == "__main__":
    main()
