"""Export, quantize and lower the example ConvNet: ``python export_convnet.py [OUT.pte]``.

The kind of script etviz runs for you (``etviz-lsp --once examples/export_convnet.py``):
every stage it makes becomes a graph, named by variable, line and stage.
"""

import sys
from pathlib import Path

import torch
from convnet import ConvNet, example_inputs  # the script's folder is first on sys.path
from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
    XNNPACKQuantizer,
    get_symmetric_quantization_config,
)
from executorch.exir import to_edge_transform_and_lower
from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

inputs = example_inputs()
exported = torch.export.export(ConvNet().eval(), inputs)

quantizer = XNNPACKQuantizer().set_global(get_symmetric_quantization_config())
prepared = prepare_pt2e(exported.module(), quantizer)
prepared(*inputs)  # calibration (one batch: enough for a demo)
quantized = torch.export.export(convert_pt2e(prepared), inputs)

lowered = to_edge_transform_and_lower(quantized, partitioner=[XnnpackPartitioner()])
program = lowered.to_executorch()

if len(sys.argv) > 1:
    Path(sys.argv[1]).write_bytes(program.buffer)
    print(f"saved {sys.argv[1]}")
