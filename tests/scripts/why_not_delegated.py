"""One net lowered to XNNPACK, to Vulkan, and to both, each leaving ops on the CPU (issue 26).

XNNPACK takes the conv (with its batch norm) and the linear; its configs refuse ``mean``
(``keepdim=False``) and have none for ``cumsum``. Vulkan takes the conv and the linear; its
operator support refuses ``mean`` and ``cumsum``. With both partitioners, XNNPACK goes
first and Vulkan looks at what it left: both say why for ``mean`` and ``cumsum``. The
XNNPACK program is written as ``net_xnnpack.pte`` with its ETRecord beside this script.
"""

from pathlib import Path

import torch
from executorch.backends.vulkan.partitioner.vulkan_partitioner import VulkanPartitioner
from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
from executorch.exir import to_edge_transform_and_lower


class Net(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.bn = torch.nn.BatchNorm2d(8)
        self.fc = torch.nn.Linear(8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.bn(self.conv(x))
        y = y.mean(dim=(2, 3))  # the mean
        y = torch.cumsum(y, dim=1)  # the cumsum
        return self.fc(y)


here = Path(__file__).parent
inputs = (torch.randn(1, 3, 8, 8),)
ep = torch.export.export(Net().eval(), inputs)
xnnpack = to_edge_transform_and_lower(
    ep, partitioner=[XnnpackPartitioner()], generate_etrecord=True
)
xnnpack_program = xnnpack.to_executorch()
(here / "net_xnnpack.pte").write_bytes(xnnpack_program.buffer)
xnnpack_program.get_etrecord().save(str(here / "net_xnnpack.etrecord"))
vulkan = to_edge_transform_and_lower(ep, partitioner=[VulkanPartitioner()])
both = to_edge_transform_and_lower(ep, partitioner=[XnnpackPartitioner(), VulkanPartitioner()])
