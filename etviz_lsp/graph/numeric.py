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
from dataclasses import dataclass
from typing import Any

from etviz_lsp.graph import model

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


def _outputs(program: Any, inputs: tuple[Any, ...]) -> tuple[Any, dict[str, Any]]:
    import torch

    module = program.module()
    seen: dict[str, Any] = {}

    class Recorder(torch.fx.Interpreter):
        def run_node(self, n: Any) -> Any:
            value = super().run_node(n)
            if isinstance(value, torch.Tensor):
                seen[n.name] = value.detach()
            return value

    with torch.no_grad():
        Recorder(module).run(*inputs)
    return module, seen


def _as_read(node: Any, seen: dict[str, Any]) -> Any:
    """What the next op reads of ``node``: through its quantize -> dequantize pair, if any."""
    users = list(node.users)
    if len(users) == 1 and _is_qdq(users[0]) and "quantize" in str(users[0].target):
        after = [u for u in users[0].users if "dequantize" in str(u.target)]
        if after and after[0].name in seen:
            return seen[after[0].name]
    return seen.get(node.name)


def op_errors(float_program: Any, quantized_program: Any, inputs: tuple[Any, ...]) -> list[OpError]:
    """Every matched op's error, worst (lowest SQNR) first."""
    float_module, reference = _outputs(float_program, inputs)
    by_source = {
        provenance(n): n.name for n in float_module.graph.nodes if n.op == "call_function"
    }
    quantized_module, seen = _outputs(quantized_program, inputs)
    errors: list[OpError] = []
    for node in quantized_module.graph.nodes:
        if node.op != "call_function" or _is_qdq(node) or "getitem" in str(node.target):
            continue
        source = by_source.get(provenance(node))
        value = _as_read(node, seen)
        if source is None or value is None or source not in reference:
            continue
        ref = reference[source].float()
        if ref.shape != value.shape:
            continue
        noise = float(((ref - value.float()) ** 2).sum())
        signal = float((ref**2).sum())
        sqnr = math.inf if noise == 0 else 10 * math.log10(max(signal, 1e-30) / noise)
        max_abs = float((ref - value.float()).abs().max()) if ref.numel() else 0.0
        errors.append(OpError(node.name, source, sqnr, max_abs))
    return sorted(errors, key=lambda e: e.sqnr_db)


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
