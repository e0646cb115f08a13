"""PT2E quantization with the XNNPACK quantizer, then XNNPACK lowering and .pte buffer."""

import torch
from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
    XNNPACKQuantizer,
    get_symmetric_quantization_config,
)
from executorch.exir import to_edge_transform_and_lower
from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e


class Net(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.fc = torch.nn.Linear(8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.conv(x))
        return self.fc(x.mean(dim=(2, 3)))


inputs = (torch.randn(1, 3, 16, 16),)
ep = torch.export.export(Net().eval(), inputs)
quantizer = XNNPACKQuantizer().set_global(get_symmetric_quantization_config())
prepared = prepare_pt2e(ep.module(), quantizer)
prepared(*inputs)
quantized = torch.export.export(convert_pt2e(prepared), inputs)
edge = to_edge_transform_and_lower(quantized, partitioner=[XnnpackPartitioner()])
et_program = edge.to_executorch()
print(f"pte bytes: {len(et_program.buffer)}")
