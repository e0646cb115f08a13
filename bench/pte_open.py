"""Open time and peak memory of one `.pte`: ``etviz-lsp --once`` against Arm's adapter.

    .venv/bin/python bench/pte_open.py [--pte FILE] [--arm-python PY] [--repeat N]

Without ``--pte`` it makes two programs once into ``build/bench-cache/`` (ExecuTorch,
this venv): ``qcumsum.pte`` (the tests' quantized conv -> cumsum -> conv, XNNPACK) and
``blocks-N.pte`` (N conv/relu/cumsum blocks: a delegate and a CPU kernel per block).
``--arm-python`` is the interpreter of a separate venv with
``pip install pte-adapter-model-explorer==0.2.0`` (it pins Model Explorer and pulls its
VGF/TOSA/SPIR-V adapters; kept out of this project's venv). Each contender runs in a
fresh process (wall time, CPU, ``ru_maxrss`` from ``os.wait4``), best of ``--repeat``:

- etviz: ``python -m etviz_lsp --once FILE -o OUT`` (this checkout);
- Arm: ``PTEAdapter().convert(FILE, {})`` then ``json.dumps`` of the collections as
  Model Explorer's server sends them (``dataclasses.asdict``).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from run import Run, measure_command  # noqa: E402

CACHE = HERE.parent / "build" / "bench-cache"
OUT = HERE.parent / "build" / "bench-out"

_ARM_SCRIPT = """
import dataclasses, json, sys
from pte_adapter_model_explorer.main import PTEAdapter
result = PTEAdapter().convert(sys.argv[1], {})
collections = [dataclasses.asdict(c) for c in result["graphCollections"]]
with open(sys.argv[2], "w") as out:
    json.dump({"graphCollections": collections}, out)
"""


def make_programs(blocks: int) -> list[Path]:
    import torch
    from torch import nn

    from tests import pte_artifacts

    CACHE.mkdir(parents=True, exist_ok=True)
    small = CACHE / "qcumsum.pte"
    if not small.exists():
        pte_artifacts.quantized_cumsum(CACHE)
    big = CACHE / f"blocks-{blocks}.pte"
    if not big.exists():
        from executorch.backends.xnnpack.partition.xnnpack_partitioner import (
            XnnpackPartitioner,
        )
        from executorch.exir import to_edge_transform_and_lower

        class Blocks(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.convs = nn.ModuleList(nn.Conv2d(8, 8, 3, padding=1) for _ in range(blocks))

            def forward(self, x: torch.Tensor) -> torch.Tensor:
                for conv in self.convs:
                    x = torch.cumsum(torch.relu(conv(x)), dim=1)
                return x

        ep = torch.export.export(Blocks().eval(), (torch.randn(1, 8, 16, 16),))
        lowered = to_edge_transform_and_lower(ep, partitioner=[XnnpackPartitioner()])
        big.write_bytes(lowered.to_executorch().buffer)
    return [small, big]


def best(runs: list[Run]) -> Run:
    done = [r for r in runs if r.seconds is not None]
    return min(done, key=lambda r: r.seconds or 0.0) if done else runs[-1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pte", type=Path, action="append")
    parser.add_argument("--arm-python", type=Path)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--blocks", type=int, default=64)
    parser.add_argument("--make-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.make_only:
        print("\n".join(str(path) for path in make_programs(args.blocks)))
        return
    # Made in a child: a child's ru_maxrss starts at its parent's size at fork, so this
    # process must stay small (no torch) for the peaks below to be the contenders' own.
    programs = args.pte
    if not programs:
        made = subprocess.run(
            [sys.executable, __file__, "--make-only", "--blocks", str(args.blocks)],
            check=True, capture_output=True, text=True, cwd=HERE.parent,
        )  # fmt: skip
        programs = [Path(line) for line in made.stdout.split()]
    OUT.mkdir(parents=True, exist_ok=True)
    print(f"{'file':<18} {'contender':<8} {'wall s':>7} {'cpu s':>6} {'peak MB':>8} {'JSON':>9}")
    for pte in programs:
        contenders = {"etviz": [sys.executable, "-m", "etviz_lsp", "--once", str(pte), "-o"]}
        if args.arm_python is not None:
            contenders["arm"] = [str(args.arm_python), "-c", _ARM_SCRIPT, str(pte)]
        for name, argv in contenders.items():
            output = OUT / f"{pte.stem}.{name}.json"
            run = best([measure_command(name, [*argv, str(output)], output)
                        for _ in range(args.repeat)])  # fmt: skip
            if run.seconds is None:
                print(f"{pte.name:<18} {name:<8} failed: {run.error}")
                continue
            print(f"{pte.name:<18} {name:<8} {run.seconds:7.2f} {run.cpu_seconds or 0:6.2f} "
                  f"{run.peak_mb or 0:8.1f} {run.json_bytes or 0:9,}")  # fmt: skip


if __name__ == "__main__":
    main()
