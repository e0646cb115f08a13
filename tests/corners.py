"""Small programs that probe the corners of ``torch.export`` (issue 21).

Higher-order ops nested and repeated, one subgraph shared by two calls, custom ops,
names that collide with the names torch generates, modules named with ``/``, ``-``,
spaces, unicode and digits, complex and symbolic literals, outputs of every kind. Each
factory returns a real ExportedProgram; ``tests/test_graph_corners.py`` converts each
with both readers and checks the graphs.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn
from torch.export import Dim, ExportedProgram


@torch.library.custom_op("etviz_corners::scaled", mutates_args=())
def scaled(x: torch.Tensor, factor: float, mode: str) -> torch.Tensor:
    return x * factor


@scaled.register_fake
def _(x: torch.Tensor, factor: float, mode: str) -> torch.Tensor:
    return torch.empty_like(x)


@torch.library.custom_op("etviz_corners::accumulate", mutates_args=("total",))
def accumulate(total: torch.Tensor, x: torch.Tensor, weight: int) -> None:
    total.add_(x * weight)


@accumulate.register_fake
def _(total: torch.Tensor, x: torch.Tensor, weight: int) -> None:
    return None


class Block(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)

    @torch.compiler.nested_compile_region
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lin(x).relu()


class SharedSubgraph(nn.Module):
    """One ``nested_compile_region`` module called twice: one graph, two calls."""

    def __init__(self) -> None:
        super().__init__()
        self.block = Block()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(self.block(x))


class CollidingInput(nn.Module):
    """Inputs named like what torch generates: the cond's branch graphs, the getitem that
    unpacks it, the output node; a submodule named like a branch graph too."""

    def __init__(self) -> None:
        super().__init__()
        self.add_module("true_graph_0", nn.Linear(3, 3))

    def forward(
        self,
        true_graph_0: torch.Tensor,
        false_graph_0: torch.Tensor,
        getitem: torch.Tensor,
        output: torch.Tensor,
    ) -> torch.Tensor:
        total = true_graph_0.sum()
        picked = torch.cond(
            total > 0,
            lambda a, b: a.sin() + b,
            lambda a, b: a.cos() - b,
            (true_graph_0, false_graph_0),
        )
        layer = self.get_submodule("true_graph_0")
        return layer(picked) * getitem + output


class Inner(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cond(x.mean() > 0, lambda t: self.lin(t), lambda t: t * 2, (x,))


class NestedCond(nn.Module):
    """cond inside cond, and the same inner module called twice (two cond nodes)."""

    def __init__(self) -> None:
        super().__init__()
        self.inner = Inner()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.cond(x.sum() > 0, lambda t: self.inner(t), lambda t: t.neg(), (x,))
        return self.inner(y)


class Loops(nn.Module):
    """while_loop twice, map, a cond on the map's result and scan in one program."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(3, 3)

    def forward(self, x: torch.Tensor, xs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        from torch._higher_order_ops.map import map as hop_map
        from torch._higher_order_ops.scan import scan
        from torch._higher_order_ops.while_loop import while_loop

        def cond_fn(i: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
            return i < 3

        def body_fn(i: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            return i + 1, self.lin(v)

        _, looped = while_loop(cond_fn, body_fn, (torch.zeros((), dtype=torch.int64), x))
        _, twice = while_loop(cond_fn, body_fn, (torch.ones((), dtype=torch.int64), x + 1))
        looped = looped + twice
        mapped = hop_map(lambda row, bias: row * 2 + bias, xs, x.sum())

        def combine(carry: torch.Tensor, row: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            nxt = carry + row
            return nxt, nxt.clone()

        last, cumulative = scan(combine, torch.zeros(3), xs)
        return looped, mapped, last, cumulative


class CustomOps(nn.Module):
    """A functional and a mutating torch.library op, with literal arguments."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("total", torch.zeros(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = scaled(x, 0.5, "fast")
        accumulate(self.total, y, 3)
        return y + self.total


class OddNames(nn.Module):
    """Modules whose names hold ``/``, ``-``, spaces, punctuation, unicode, digits."""

    def __init__(self) -> None:
        super().__init__()
        self.add_module("a/b", nn.Linear(4, 4))
        self.add_module("a_b", nn.Linear(4, 4))
        odd = nn.Module()
        odd.add_module("conv/odd", nn.Conv1d(1, 1, 1))
        self.add_module("bad name (x)", odd)
        self.add_module("dash-name", nn.Linear(4, 4))
        self.add_module("ünïcode", nn.Linear(4, 4, bias=False))
        self.add_module("7", nn.Linear(4, 4))
        self.constants = nn.Linear(4, 4)  # named like the root's constants layer, never called

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        modules = dict(self.named_children())
        y = modules["a/b"](x) + modules["a_b"](x)
        y = modules["bad name (x)"].get_submodule("conv/odd")(y.unsqueeze(1)).squeeze(1)
        y = modules["dash-name"](y) + modules["ünïcode"](y)
        y = y @ self.constants.weight + torch.tensor([1.0, 2.0, 3.0, 4.0])  # a lifted constant
        return modules["7"](y)


class NamesTorchCannotLoad(nn.Module):
    """Module names holding ``,`` and ``;``: legal, saved as they are, and then refused by
    ``torch.export.load`` (its metadata split); the direct reader reads them."""

    def __init__(self) -> None:
        super().__init__()
        self.add_module("a,b", nn.Linear(4, 4))
        self.add_module("c;d", nn.Linear(4, 4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        modules = dict(self.named_children())
        return modules["c;d"](modules["a,b"](x))


def names_torch_cannot_load() -> ExportedProgram:
    return torch.export.export(NamesTorchCannotLoad(), (torch.randn(2, 4),))


class Literals(nn.Module):
    """Complex, symbolic, device, layout and memory-format literals, None in index lists."""

    def forward(self, x: torch.Tensor, i: torch.Tensor) -> tuple[torch.Tensor, ...]:
        n = x.shape[0]
        shifted = x + 1j
        padded = F.pad(x, (0, n))
        rows = x.reshape(n * 2, -1)
        half = x.new_ones(n // 2, 2)
        picked = x[:, i]
        zeros = torch.zeros(3, device="cpu", layout=torch.strided, dtype=torch.float16)
        image = x.reshape(1, 1, n, 4).clone(memory_format=torch.channels_last)
        return shifted, padded, rows, half, picked, zeros, image


class Outputs(nn.Module):
    """Outputs of every kind: tensor, SymInt, bool, None, nested containers."""

    def forward(self, x: torch.Tensor) -> tuple[object, ...]:
        return x * 2, x.shape[0], True, None, (x + 1, [x - 1, x.sum()])


def _n() -> Dim:
    return Dim("n", min=4, max=64)


def shared_subgraph() -> ExportedProgram:
    import torch._dynamo.config

    # Export inlines a region called from one site; two calls of one module keep it only
    # when single-use inlining is off (as a repeated block in a bigger model would).
    with torch._dynamo.config.patch(inline_single_use_invoke_subgraph=False):
        return torch.export.export(SharedSubgraph(), (torch.randn(2, 4),))


def colliding_input() -> ExportedProgram:
    return torch.export.export(CollidingInput(), tuple(torch.randn(3) for _ in range(4)))


def nested_cond() -> ExportedProgram:
    return torch.export.export(NestedCond(), (torch.randn(2, 4),))


def loops() -> ExportedProgram:
    return torch.export.export(Loops(), (torch.randn(2, 3), torch.randn(5, 3)))


def custom_ops() -> ExportedProgram:
    return torch.export.export(CustomOps(), (torch.randn(2, 3),))


def custom_ops_decomposed() -> ExportedProgram:
    """The mutating op functionalized: ``auto_functionalized_v2`` with keyword literals."""
    return custom_ops().run_decompositions()


def odd_names() -> ExportedProgram:
    return torch.export.export(OddNames(), (torch.randn(2, 4),))


def literals() -> ExportedProgram:
    return torch.export.export(
        Literals(),
        (torch.randn(4, 4), torch.tensor([0, 2])),
        dynamic_shapes=({0: _n()}, None),
    )


def outputs() -> ExportedProgram:
    return torch.export.export(Outputs(), (torch.randn(5, 2),), dynamic_shapes=({0: _n()},))


CORNERS: dict[str, Callable[[], ExportedProgram]] = {
    "shared_subgraph": shared_subgraph,
    "colliding_input": colliding_input,
    "nested_cond": nested_cond,
    "loops": loops,
    "custom_ops": custom_ops,
    "custom_ops_decomposed": custom_ops_decomposed,
    "odd_names": odd_names,
    "literals": literals,
    "outputs": outputs,
}
