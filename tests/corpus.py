"""The example programs the graph tests (and the .pt2 reader's equivalence test) run on.

Each factory returns a real ``torch.export`` ExportedProgram. Models are tiny so the whole
corpus exports in seconds.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

import torch
from torch import nn
from torch.export import Dim, ExportedProgram

from tests.conftest import REPO_ROOT

sys.path.insert(0, str(REPO_ROOT / "examples"))
from convnet import ConvNet, example_inputs  # noqa: E402


def nested_convnet() -> ExportedProgram:
    return torch.export.export(ConvNet().eval(), example_inputs())


def quantized_convnet() -> ExportedProgram:
    """PT2E with XNNPACKQuantizer, converted and re-exported (the odd nn_module_stack case)."""
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
        XNNPACKQuantizer,
        get_symmetric_quantization_config,
    )
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    model, inputs = ConvNet().eval(), example_inputs()
    captured = torch.export.export(model, inputs).module()
    quantizer = XNNPACKQuantizer().set_global(get_symmetric_quantization_config())
    prepared = prepare_pt2e(captured, quantizer)  # type: ignore[arg-type]
    prepared(*inputs)
    return torch.export.export(convert_pt2e(prepared), inputs)


class Attention(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = self.qkv(x).chunk(3, dim=-1)
        weights = torch.softmax(q @ k.transpose(-2, -1) / 4.0, dim=-1)
        return self.proj(weights @ v)


class TinyTransformer(nn.Module):
    def __init__(self, dim: int = 16, layers: int = 2) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            nn.ModuleDict({"attn": Attention(dim), "norm": nn.LayerNorm(dim)})
            for _ in range(layers)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer["norm"](x + layer["attn"](x))
        return x


def dynamic_transformer() -> ExportedProgram:
    seq = Dim("seq", min=2, max=128)
    return torch.export.export(
        TinyTransformer(), (torch.randn(1, 8, 16),), dynamic_shapes=({1: seq},)
    )


class CondModel(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cond(x.sum() > 0, lambda t: self.lin(t).relu(), lambda t: t.cos(), (x,))


def cond_model() -> ExportedProgram:
    return torch.export.export(CondModel(), (torch.randn(2, 4),))


class SymIntModel(nn.Module):
    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, int]:
        return x * 2, x.shape[1]


def symint_model() -> ExportedProgram:
    return torch.export.export(
        SymIntModel(), (torch.randn(2, 5),), dynamic_shapes=({1: Dim("n", min=2, max=64)},)
    )


class Counter(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("count", torch.zeros(1))
        self.lin = nn.Linear(6, 6)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        self.count.add_(1)
        values, indices = torch.topk(self.lin(x), 3)
        return values + self.count, indices, x.max(dim=1).values


def mutation_model() -> ExportedProgram:
    """Mutates a buffer, returns a tuple; decomposed so the mutation is an output."""
    return torch.export.export(Counter(), (torch.randn(2, 6),)).run_decompositions()


CORPUS: dict[str, Callable[[], ExportedProgram]] = {
    "nested_convnet": nested_convnet,
    "quantized_convnet": quantized_convnet,
    "dynamic_transformer": dynamic_transformer,
    "cond_model": cond_model,
    "symint_model": symint_model,
    "mutation_model": mutation_model,
}
