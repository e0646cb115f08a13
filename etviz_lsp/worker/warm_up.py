"""A tiny model taken once through export, PT2E quantization and XNNPACK lowering.

torch and ExecuTorch pay seconds on the first call of each path (dispatch tables, pass
set-up, partitioner registries), not only at import. Doing it once in the warm worker,
before any fork, saves that in every run. Runs with no recorder active, so nothing here is
captured, and single-threaded, so no thread pool exists when the worker forks.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from typing import Any


def exercise() -> None:
    import torch

    model = torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(144, 2)
    ).eval()
    inputs = (torch.randn(1, 3, 8, 8),)
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        program = torch.export.export(model, inputs)
        _convert(program)
        quantized = _quantize(program, inputs)
        _lower(torch.export.export(quantized, inputs))


def _convert(program: Any) -> None:
    from etviz_lsp.graph import convert

    convert.from_programs([("warm-up", program)], label="warm-up").to_json()


def _quantize(program: Any, inputs: tuple[Any, ...]) -> Any:
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
        XNNPACKQuantizer,
        get_symmetric_quantization_config,
    )
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    quantizer = XNNPACKQuantizer().set_global(get_symmetric_quantization_config())
    prepared = prepare_pt2e(program.module(), quantizer)
    prepared(*inputs)
    return convert_pt2e(prepared)


def _lower(program: Any) -> None:
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower

    edge = to_edge_transform_and_lower(program, partitioner=[XnnpackPartitioner()])
    _convert(edge)
    edge.to_executorch()
