"""Screenshot of a memory timeline: the bundled ConvNet as a portable ExecuTorch program.

    PYTHONPATH=. python docs/make_memory_screenshot.py OUT.png [--pte FILE.pte]

Exports ``examples/convnet.py`` (eval mode), ``to_edge`` + ``to_executorch`` (CPU kernels
only), writes the ``.pte`` and its memory plan files as ``etviz-lsp --once`` does, and opens
the timeline SVG in headless Chromium (``tests/browser/check_memory_svg.mjs``, which needs
``scripts/setup-browser.sh``). ``--pte``: that program instead. Prints the CLI's memory lines.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
BROWSER = HERE.parent / "tests" / "browser"
sys.path.insert(0, str(HERE.parent / "examples"))


def convnet_pte(folder: Path) -> Path:
    import torch
    from convnet import ConvNet, example_inputs
    from executorch.exir import to_edge

    torch.manual_seed(0)
    program = torch.export.export(ConvNet().eval(), example_inputs())
    pte = folder / "convnet.pte"
    pte.write_bytes(to_edge(program).to_executorch().buffer)
    return pte


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out", type=Path)
    parser.add_argument("--pte", type=Path)
    args = parser.parse_args()
    from etviz_lsp.graph.memory import memory_files
    from etviz_lsp.graph.readers import pte_reader
    from etviz_lsp.graph_files import GraphFiles

    with tempfile.TemporaryDirectory() as tmp:
        pte = args.pte or convnet_pte(Path(tmp))
        files = GraphFiles(Path(tmp) / f"{pte.name}.json")
        made = memory_files.write(pte_reader.read_pte(pte), files, None)
        print("\n".join(made.summary))
        done = subprocess.run(
            ["node", str(BROWSER / "check_memory_svg.mjs"), str(made.svg), str(args.out.resolve())],
            cwd=BROWSER, capture_output=True, text=True, timeout=180, check=True,
        )
        report = json.loads(done.stdout.splitlines()[-1])
        bars = sum(len(panel["bars"]) for panel in report.get("panels", []))
        print(f"{args.out}: {bars} bars ({report['phase']})")


if __name__ == "__main__":
    main()
