"""What the numeric overlay costs: a script run with it and without, side by side, and the
comparison alone on a MobileNetV2-sized model (224x224, 17 inverted residual blocks).

    .venv/bin/python bench/numeric_overlay.py [--runs N] [--skip-script]

Prints, for ``examples/quantize_and_lower.py`` run through ``etviz-lsp --once``: the
median wall time with the overlay and with ``--no-numeric`` and their ratio (the two
alternate, so machine load hits both alike); then the MobileNet-sized comparison's time
and the float outputs it keeps, against the model's own export + quantize time.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def script_runs(runs: int) -> None:
    script = REPO / "examples" / "quantize_and_lower.py"
    times: dict[str, list[float]] = {"numeric": [], "no-numeric": []}
    with tempfile.TemporaryDirectory() as folder:
        for _ in range(runs):
            for mode in times:
                out = Path(folder) / f"{mode}.json"
                flags = ["--no-numeric"] if mode == "no-numeric" else []
                started = time.perf_counter()
                subprocess.run(
                    [sys.executable, "-m", "etviz_lsp", "--once", str(script), *flags,
                     "-o", str(out), "--", str(Path(folder) / "own.json")],
                    check=True, capture_output=True,
                )  # fmt: skip
                times[mode].append(time.perf_counter() - started)
    on, off = statistics.median(times["numeric"]), statistics.median(times["no-numeric"])
    print(f"quantize_and_lower.py --once, median of {runs}: with numeric {on:.2f} s, "
          f"--no-numeric {off:.2f} s, ratio {on / off:.3f} ({on - off:+.2f} s)")


def mobilenet_sized() -> None:
    import torch
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
        XNNPACKQuantizer,
        get_symmetric_quantization_config,
    )
    from torch import nn
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    from etviz_lsp.graph.overlays import numeric

    def block(cin: int, cout: int, stride: int, expand: int) -> nn.Module:
        mid = cin * expand
        return nn.Sequential(
            nn.Conv2d(cin, mid, 1), nn.ReLU6(),
            nn.Conv2d(mid, mid, 3, stride, 1, groups=mid), nn.ReLU6(),
            nn.Conv2d(mid, cout, 1),
        )  # fmt: skip

    settings = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
                (6, 160, 3, 2), (6, 320, 1, 1)]  # fmt: skip (MobileNetV2's table)
    layers: list[nn.Module] = [nn.Conv2d(3, 32, 3, 2, 1), nn.ReLU6()]
    cin = 32
    for expand, cout, repeat, stride in settings:
        for i in range(repeat):
            layers.append(block(cin, cout, stride if i == 0 else 1, expand))
            cin = cout
    layers += [nn.Conv2d(cin, 1280, 1), nn.ReLU6(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
               nn.Linear(1280, 1000)]  # fmt: skip
    model = nn.Sequential(*layers).eval()
    inputs = (torch.randn(1, 3, 224, 224),)
    started = time.perf_counter()
    float_program = torch.export.export(model, inputs)
    config = get_symmetric_quantization_config(is_per_channel=True)
    prepared = prepare_pt2e(float_program.module(), XNNPACKQuantizer().set_global(config))  # type: ignore[arg-type]
    prepared(*inputs)
    quantized = torch.export.export(convert_pt2e(prepared), inputs)
    made = time.perf_counter() - started
    budget = numeric.Budget()
    started = time.perf_counter()
    errors = numeric.op_errors(float_program, quantized, inputs, budget=budget)
    cost = time.perf_counter() - started
    params = sum(p.numel() for p in model.parameters())
    print(f"MobileNetV2-sized ({params / 1e6:.1f} M params, {len(errors)} ops compared): "
          f"comparison {cost:.2f} s, {budget.kept / (1 << 20):.0f} MiB of float outputs kept; "
          f"export + quantize {made:.2f} s, ratio {cost / made:.3f}")
    print(f"  worst: {errors[0].node} {errors[0].sqnr_db:.1f} dB")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--skip-script", action="store_true")
    args = parser.parse_args()
    if not args.skip_script:
        script_runs(args.runs)
    mobilenet_sized()


if __name__ == "__main__":
    main()
