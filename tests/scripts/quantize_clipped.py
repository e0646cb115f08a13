"""PT2E quantization with one op's quantization config broken: ``fc``'s output gets fixed
qparams with a tiny scale (what a wrong observer range or a copied config does), so most
of its values clip. The numeric overlay must rank that op worst."""

import dataclasses

import torch
from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
    XNNPACKQuantizer,
    get_symmetric_quantization_config,
)
from torchao.quantization.pt2e.observer import FixedQParamsObserver
from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e


class Net(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.conv2 = torch.nn.Conv2d(8, 8, 3, padding=1)
        self.fc = torch.nn.Linear(8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.conv1(x))
        x = torch.relu(self.conv2(x))
        return self.fc(x.mean(dim=(2, 3)))  # the clipped op


config = get_symmetric_quantization_config()
assert config.output_activation is not None
clipping = dataclasses.replace(config, output_activation=dataclasses.replace(
    config.output_activation,
    observer_or_fake_quant_ctr=FixedQParamsObserver.with_args(
        scale=0.00005, zero_point=0, dtype=torch.int8, quant_min=-128, quant_max=127
    ),
))
torch.manual_seed(0)
inputs = (torch.randn(1, 3, 16, 16),)
ep = torch.export.export(Net().eval(), inputs)
quantizer = XNNPACKQuantizer().set_global(config).set_module_name("fc", clipping)
prepared = prepare_pt2e(ep.module(), quantizer)
prepared(*inputs)
quantized = torch.export.export(convert_pt2e(prepared), inputs)
