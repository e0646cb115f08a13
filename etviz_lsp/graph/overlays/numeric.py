"""Where quantization hurts (AOT): each op of a quantized program against the float one.

Both ExportedPrograms run on the same example inputs through ``torch.fx.Interpreter``,
every node's output kept. An op of the quantized program is matched to the float op it
came from by provenance: the root of its ``from_node`` chain (PT2E's convert and the
re-export keep it), else its name. Its value is what the next op reads: when its output
goes through a quantize -> dequantize pair, the dequantized tensor (the rounding and
clipping the quantization adds are the point). Per op: SQNR in dB (``10 log10(|ref|^2 /
|ref - q|^2)``, lower is worse) and the maximum absolute error; node data keyed by the
quantized graph's node ids (its FX node names, as the builder keeps them).

Imports torch: called where a program is live (a script run's child, a test), never by
the torch-free readers.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from etviz_lsp.graph.core import model

MIB = 1 << 20
_QDQ = ("quantize_per_tensor", "quantize_per_channel", "dequantize_per_tensor",
        "dequantize_per_channel", "choose_qparams")  # fmt: skip
# Bad at stop 0 for SQNR (low is bad), at stop 1 for the error (high is bad).
SQNR_GRADIENT = [{"stop": 0, "bgColor": "#7f0000"}, {"stop": 1, "bgColor": "#f7fcf5"}]
ERROR_GRADIENT = [{"stop": 0, "bgColor": "#f7fcf5"}, {"stop": 1, "bgColor": "#7f0000"}]


@dataclass(frozen=True, slots=True)
class OpError:
    node: str  # the quantized graph's node name (our node id)
    source: str  # the float op it was matched to
    sqnr_db: float  # inf when the outputs are equal
    max_abs: float


def _is_qdq(node: Any) -> bool:
    return node.op == "call_function" and any(q in str(node.target) for q in _QDQ)


def provenance(node: Any) -> str:
    """The root of ``node``'s ``from_node`` chain: the op of the first export it came from."""
    sources = node.meta.get("from_node") or []
    if not sources:
        return str(node.name)
    source = sources[0]
    while getattr(source, "from_node", None):
        source = source.from_node[0]
    return str(source.name)


class OverBudget(Exception):
    """Comparing would cost more than the caller allows (time, or memory kept)."""


@dataclass(slots=True)
class Budget:
    """What one comparison may cost: seconds (wall clock, both programs' runs) and bytes
    of kept outputs. Checked after every node: an over-budget run stops at that node."""

    seconds: float = math.inf
    max_bytes: float = math.inf
    deadline: float = math.inf
    kept: int = 0

    def start(self) -> Budget:
        self.deadline = time.monotonic() + self.seconds
        return self

    def check(self, added: int) -> None:
        self.kept += added
        if self.kept > self.max_bytes:
            raise OverBudget(f"over {self.max_bytes / MIB:,.0f} MiB of kept outputs")
        if time.monotonic() > self.deadline:
            raise OverBudget(f"over {self.seconds:g} s")


def _run(module: Any, inputs: tuple[Any, ...], budget: Budget,
         on_value: Callable[[Any, Any], None]) -> None:
    """Run ``module`` node by node, handing each tensor output to ``on_value``."""
    import torch

    class Watcher(torch.fx.Interpreter):
        def run_node(self, n: Any) -> Any:
            value = super().run_node(n)
            budget.check(0)
            if isinstance(value, torch.Tensor):
                on_value(n, value.detach())
            return value

    with torch.no_grad():
        Watcher(module).run(*inputs)


def _is_op(node: Any) -> bool:
    return node.op == "call_function" and not _is_qdq(node) and "getitem" not in str(node.target)


def _read_node(node: Any) -> Any:
    """The node whose value the next op reads of ``node``: its quantize -> dequantize
    pair's dequantize, if it has one, else itself."""
    users = list(node.users)
    if len(users) == 1 and _is_qdq(users[0]) and "quantize" in str(users[0].target):
        after = [u for u in users[0].users if "dequantize" in str(u.target)]
        if after:
            return after[0]
    return node


def op_errors(
    float_program: Any, quantized_program: Any, inputs: tuple[Any, ...],
    budget: Budget | None = None,
) -> list[OpError]:
    """Every matched op's error, worst (lowest SQNR) first.

    Memory: the float run keeps the outputs of ops the quantized graph has (by
    provenance); the quantized run compares each op as soon as the value it is read as
    exists and keeps nothing. Raises :class:`OverBudget` past ``budget``.
    """
    budget = (budget or Budget()).start()
    quantized = quantized_program.module()
    # Read node name -> the op it stands for, and the float ops those ops came from.
    pending = {_read_node(n).name: n for n in quantized.graph.nodes if _is_op(n)}
    wanted = {provenance(n) for n in pending.values()}
    reference: dict[str, tuple[str, Any]] = {}  # provenance -> (float op, its output)

    def keep(n: Any, value: Any) -> None:
        if _is_op(n) and provenance(n) in wanted and provenance(n) not in reference:
            reference[provenance(n)] = (n.name, value)
            budget.check(value.numel() * value.element_size())

    _run(float_program.module(), inputs, budget, keep)
    errors: list[OpError] = []

    def compare(n: Any, value: Any) -> None:
        op = pending.pop(n.name, None)
        found = reference.get(provenance(op)) if op is not None else None
        if op is not None and found is not None and found[1].shape == value.shape:
            errors.append(_error(op.name, found[0], found[1], value))

    _run(quantized, inputs, budget, compare)
    return sorted(errors, key=lambda e: e.sqnr_db)


def _error(node: str, source: str, ref: Any, value: Any) -> OpError:
    ref, value = ref.float(), value.float()
    noise = float(((ref - value) ** 2).sum())
    signal = float((ref**2).sum())
    sqnr = math.inf if noise == 0 else 10 * math.log10(max(signal, 1e-30) / noise)
    max_abs = float((ref - value).abs().max()) if ref.numel() else 0.0
    return OpError(node, source, sqnr, max_abs)


def node_data(graph_id: str, errors: list[OpError]) -> dict[str, dict[str, model.Json]]:
    """Model Explorer node data: ``sqnr`` and ``max-abs-error`` files' contents."""
    finite = [e for e in errors if math.isfinite(e.sqnr_db)]
    return {
        "sqnr": {graph_id: {
            "results": {e.node: {"value": round(e.sqnr_db, 3)} for e in finite},
            "gradient": SQNR_GRADIENT,
        }},
        "max-abs-error": {graph_id: {
            "results": {e.node: {"value": e.max_abs} for e in errors},
            "gradient": ERROR_GRADIENT,
        }},
    }  # fmt: skip


def annotate(graph: model.Graph, errors: list[OpError], worst: int = 5) -> None:
    """Each matched node gets its SQNR and error; the graph info lists the worst ops."""
    by_node = {e.node: e for e in errors}
    for node in graph.nodes:
        error = by_node.get(node["id"])
        if error is not None:
            node["attrs"].extend(model.kv({
                "quantization SQNR (dB)": f"{error.sqnr_db:.2f}",
                "quantization max abs error": f"{error.max_abs:.6g}",
                "compared with (float op)": error.source,
            }))  # fmt: skip
    graph.group_attrs.setdefault("", {})["worst ops (SQNR dB)"] = ", ".join(
        f"{e.node} {e.sqnr_db:.1f}" for e in errors[:worst]
    ) or "(no op matched)"
