"""Real ExecuTorch runtime artifacts for the ``.pte`` / ETRecord tests, made in the tests.

``quantized_cumsum`` goes the way users ship a model: export, PT2E quantize with the
XNNPACKQuantizer, ``to_edge_transform_and_lower`` with the XnnpackPartitioner and
``generate_etrecord=True``, ``to_executorch``; ``torch.cumsum`` is not delegable, so the
program is delegate -> CPU kernel -> delegate. ``two_methods`` is a program with two
execution plans. Run as a script it writes them into a folder (for the docs and benches).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn


class ConvCumsumConv(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.conv1(x))
        y = torch.cumsum(y, dim=1)  # no XNNPACK kernel: stays on the CPU
        return self.conv2(y)


class Scale(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * 2.0


class Shift(nn.Module):
    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return torch.cumsum(x + y, dim=0)


class PortableMix(nn.Module):
    """CPU kernels only: a view (shares its base's memory), a scalar turned into a tensor,
    a mutable buffer updated in place (state), a batch norm (its two extra outputs hold no
    bytes) and two outputs."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("total", torch.zeros(4, 4))
        self.norm = nn.BatchNorm1d(4, affine=False).eval()

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        y = self.norm(torch.cumsum(x, 0))
        z = (y * 2).view(-1)
        self.total.add_(y)
        return z + 1, torch.relu(y)


def example_inputs() -> tuple[torch.Tensor, ...]:
    return (torch.randn(1, 3, 8, 8),)


@dataclass
class Artifacts:
    pte: Path
    etrecord: Path
    # What the tests compare the files with (in memory, never from the files).
    exported: Any  # the quantized ExportedProgram given to the lowering
    edge_manager: Any  # EdgeProgramManager after to_edge_transform_and_lower
    executorch: Any  # ExecutorchProgramManager


def quantized_cumsum(folder: Path, stem: str = "qcumsum") -> Artifacts:
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
        XNNPACKQuantizer,
        get_symmetric_quantization_config,
    )
    from executorch.exir import to_edge_transform_and_lower
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    torch.manual_seed(0)
    model, inputs = ConvCumsumConv().eval(), example_inputs()
    captured = torch.export.export(model, inputs).module()
    quantizer = XNNPACKQuantizer().set_global(get_symmetric_quantization_config())
    prepared = prepare_pt2e(captured, quantizer)  # type: ignore[arg-type]
    prepared(*inputs)
    exported = torch.export.export(convert_pt2e(prepared), inputs)
    edge = to_edge_transform_and_lower(
        exported, partitioner=[XnnpackPartitioner()], generate_etrecord=True
    )
    et = edge.to_executorch()
    pte = folder / f"{stem}.pte"
    pte.write_bytes(et.buffer)
    record = et.get_etrecord()
    record.update_representative_inputs([inputs])
    etrecord = folder / f"{stem}.etrecord"
    record.save(str(etrecord))
    return Artifacts(pte, etrecord, exported, edge, et)


def float_and_quantized() -> tuple[Any, Any, tuple[torch.Tensor, ...]]:
    """ConvCumsumConv's float ExportedProgram, its PT2E-quantized one, the example inputs."""
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
        XNNPACKQuantizer,
        get_symmetric_quantization_config,
    )
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    torch.manual_seed(0)
    model, inputs = ConvCumsumConv().eval(), example_inputs()
    float_program = torch.export.export(model, inputs)
    quantizer = XNNPACKQuantizer().set_global(get_symmetric_quantization_config())
    prepared = prepare_pt2e(float_program.module(), quantizer)  # type: ignore[arg-type]
    prepared(*inputs)
    return float_program, torch.export.export(convert_pt2e(prepared), inputs), inputs


def two_methods(folder: Path) -> tuple[Path, Any]:
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower

    programs = {
        "forward": torch.export.export(Scale(), (torch.randn(4, 4),)),
        "shift": torch.export.export(Shift(), (torch.randn(4), torch.randn(4))),
    }
    et = to_edge_transform_and_lower(programs, partitioner=[XnnpackPartitioner()]).to_executorch()
    pte = folder / "two_methods.pte"
    pte.write_bytes(et.buffer)
    return pte, et


def portable_only(folder: Path) -> tuple[Path, Any]:
    """``PortableMix`` through ``to_edge`` and ``to_executorch`` (no partitioner): the .pte
    and the ExecutorchProgramManager."""
    from executorch.exir import to_edge

    torch.manual_seed(0)
    program = torch.export.export(PortableMix().eval(), (torch.randn(4, 4),))
    et = to_edge(program).to_executorch()
    pte = folder / "portable.pte"
    pte.write_bytes(et.buffer)
    return pte, et


def profile_run(
    pte: Path, runs: int = 5, inputs: tuple[torch.Tensor, ...] | None = None, stem: str = ""
) -> tuple[Path, Path]:
    """Run ``pte`` ``runs`` times with ETDump on (the same input each time: the debug
    buffer's outputs must agree across runs for the Inspector); ``<stem>.etdp`` and
    ``<stem>_debug.bin`` beside it. ``inputs``: default, new random ones."""
    from executorch.runtime import Runtime

    torch.manual_seed(1)
    inputs = example_inputs() if inputs is None else inputs
    program = Runtime.get().load_program(str(pte), enable_etdump=True, debug_buffer_size=1 << 20)
    method = program.load_method("forward")
    for _ in range(runs):
        method.execute(inputs)
    stem = stem or pte.stem
    etdump, debug = pte.with_name(f"{stem}.etdp"), pte.with_name(f"{stem}_debug.bin")
    program.write_etdump_result_to_file(str(etdump), str(debug))
    return etdump, debug


if __name__ == "__main__":
    out = Path(sys.argv[1] if len(sys.argv) > 1 else ".")
    out.mkdir(parents=True, exist_ok=True)
    made = quantized_cumsum(out)
    print(made.pte, made.etrecord, two_methods(out)[0])
