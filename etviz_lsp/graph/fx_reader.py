"""Read a live ``torch.fx`` graph (an ExportedProgram's) into a :class:`ProgramRecord`.

Only this module (and ``programs`` / ``pt2_load``) touches torch objects; everything past
the record is plain data. Literal formatting and target naming live in ``naming`` so the
``.pt2`` archive reader produces the very same strings.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import torch
import torch.fx

from etviz_lsp.graph import ir, naming


def read_exported_program(ep: torch.export.ExportedProgram, name: str) -> ir.ProgramRecord:
    """Record the top-level graph of ``ep`` (and its nested graphs) under ``name``."""
    kinds = _placeholder_kinds(ep)
    record = _read_graph(ep.graph_module, name, kinds)
    _mark_mutations(ep, record)
    state = ep.state_dict
    for fqn in ep.graph_signature.parameters:
        value = state.get(fqn)
        if value is not None:
            record.parameters[fqn] = value_info(value)
    return record


def _placeholder_kinds(ep: torch.export.ExportedProgram) -> dict[str, tuple[str, str]]:
    """Placeholder name -> (record kind, fully-qualified target) from the signature."""
    from torch.export.graph_signature import InputKind

    by_kind = {
        InputKind.PARAMETER: ir.PARAMETER,
        InputKind.BUFFER: ir.BUFFER,
        InputKind.CONSTANT_TENSOR: ir.CONSTANT,
        InputKind.CUSTOM_OBJ: ir.CONSTANT,
    }
    kinds: dict[str, tuple[str, str]] = {}
    for spec in ep.graph_signature.input_specs:
        arg_name = getattr(spec.arg, "name", None)
        if arg_name is None:
            continue
        kinds[arg_name] = (by_kind.get(spec.kind, ir.USER_INPUT), spec.target or "")
    return kinds


def _mark_mutations(ep: torch.export.ExportedProgram, record: ir.ProgramRecord) -> None:
    """Tag the node whose value is written back into a buffer or input."""
    from torch.export.graph_signature import OutputKind

    mutating = {OutputKind.BUFFER_MUTATION, OutputKind.USER_INPUT_MUTATION}
    by_name = {node.name: node for node in record.nodes}
    for spec in ep.graph_signature.output_specs:
        arg_name = getattr(spec.arg, "name", None)
        if spec.kind in mutating and arg_name in by_name and spec.target:
            by_name[arg_name].attrs["mutates"] = spec.target


def _read_graph(
    gm: torch.fx.GraphModule, name: str, kinds: dict[str, tuple[str, str]]
) -> ir.ProgramRecord:
    record = ir.ProgramRecord(name=name)
    for node in gm.graph.nodes:
        rec = _read_node(node, kinds)
        if node.op == "get_attr":
            sub = _nested_module(gm, str(node.target))
            if sub is not None:
                record.subprograms[node.name] = _read_graph(sub, f"{name}/{node.name}", {})
        record.nodes.append(rec)
    _link_subgraphs(record)
    return record


def _nested_module(gm: torch.fx.GraphModule, target: str) -> torch.fx.GraphModule | None:
    obj: Any = gm
    for part in target.split("."):
        obj = getattr(obj, part, None)
    return obj if isinstance(obj, torch.fx.GraphModule) else None


def _link_subgraphs(record: ir.ProgramRecord) -> None:
    """A node that consumes a nested graph (cond, while_loop, map) runs it."""
    if not record.subprograms:
        return
    for rec in record.nodes:
        rec.subgraphs = [src for src, _ in rec.inputs if src in record.subprograms]


def _read_node(node: torch.fx.Node, kinds: dict[str, tuple[str, str]]) -> ir.NodeRecord:
    rec = ir.NodeRecord(name=node.name, kind=ir.OP)
    if node.op == "placeholder":
        kind, fqn = kinds.get(node.name, (ir.USER_INPUT, ""))
        rec.kind = kind
        if fqn:
            rec.attrs["fqn"] = fqn
    elif node.op == "output":
        rec.kind = ir.OUTPUT
    elif node.op == "get_attr":
        rec.kind = ir.GET_ATTR
        rec.target = str(node.target)
    else:
        rec.target = target_name(node.target)
        rec.attrs.update(_literal_args(node))
    rec.inputs = [(src.name, _output_index(src, node)) for src in _input_nodes(node)]
    rec.outputs = _outputs(node)
    rec.scopes = naming.scopes_from_stack(_module_stack(node))
    rec.stack_trace = node.meta.get("stack_trace")
    handle = node.meta.get("debug_handle")
    if handle is not None:
        rec.attrs["debug_handle"] = str(handle)
    return rec


def target_name(target: Any) -> str:
    """Stable dotted name: ``aten.conv2d.default``, ``higher_order.cond``, ``operator.getitem``."""
    if isinstance(target, torch._ops.OpOverload):
        return str(target)
    if isinstance(target, torch._ops.HigherOrderOperator):
        return f"higher_order.{target.name()}"
    edge_name = getattr(target, "__name__", None)
    if type(target).__name__ == "EdgeOpOverload" and edge_name:
        return str(edge_name)
    module = getattr(target, "__module__", None) or ""
    module = module.lstrip("_")
    return f"{module}.{edge_name}" if module and edge_name else str(edge_name or target)


def _module_stack(node: torch.fx.Node) -> list[tuple[str, str]]:
    stack = node.meta.get("nn_module_stack") or {}
    pairs = []
    for path, cls in stack.values():
        cls_name = cls if isinstance(cls, str) else getattr(cls, "__qualname__", str(cls))
        pairs.append((str(path), str(cls_name)))
    return pairs


def _input_nodes(node: torch.fx.Node) -> Iterator[torch.fx.Node]:
    """Every node ``node`` reads, in argument order (nested lists and dicts included)."""
    yield from _walk_nodes(node.args)
    yield from _walk_nodes(node.kwargs.values())


def _walk_nodes(values: Iterable[Any]) -> Iterator[torch.fx.Node]:
    for value in values:
        if isinstance(value, torch.fx.Node):
            yield value
        elif isinstance(value, (list, tuple)):
            yield from _walk_nodes(value)
        elif isinstance(value, dict):
            yield from _walk_nodes(value.values())


def _output_index(src: torch.fx.Node, consumer: torch.fx.Node) -> int:
    """``getitem(src, i)`` reads output ``i`` of ``src``; every other read is output 0."""
    if consumer.target is _GETITEM and consumer.args and consumer.args[0] is src:
        index = consumer.args[1] if len(consumer.args) > 1 else 0
        return index if isinstance(index, int) else 0
    return 0


_GETITEM: Any = __import__("operator").getitem


def _outputs(node: torch.fx.Node) -> list[ir.ValueInfo]:
    if node.op == "output":
        return []
    val = node.meta.get("val")
    if isinstance(val, (list, tuple)):
        return [value_info(item) for item in val]
    if val is None and "val" not in node.meta:
        return []
    return [value_info(val)]


def value_info(val: Any) -> ir.ValueInfo:
    if isinstance(val, torch.Tensor):
        shape = tuple(naming.sym_text(str(dim)) for dim in val.shape)
        return ir.ValueInfo(dtype=naming.dtype_name(str(val.dtype)), shape=shape)
    for sym_type in (torch.SymInt, torch.SymFloat, torch.SymBool):
        if isinstance(val, sym_type):
            return ir.ValueInfo(dtype=sym_type.__name__, value=naming.sym_text(str(val)))
    if isinstance(val, (bool, int, float)):
        return ir.ValueInfo(dtype=type(val).__name__, value=str(val))
    if val is None:
        return ir.ValueInfo(dtype="None")
    return ir.ValueInfo(dtype=type(val).__name__)


def _literal_args(node: torch.fx.Node) -> dict[str, str]:
    """Non-tensor arguments by their schema names (stride, padding, scale, ...)."""
    schema = getattr(node.target, "_schema", None)
    if schema is None:
        return {}
    names = [arg.name for arg in schema.arguments]
    pairs = list(zip(names, node.args, strict=False)) + list(node.kwargs.items())
    literals = {}
    for arg_name, value in pairs:
        text = format_literal(value)
        if text is not None:
            literals[arg_name] = text
    return literals


def format_literal(value: Any) -> str | None:
    """Text for a literal argument, or None for tensors (shown as edges) and None."""
    if value is None or isinstance(value, torch.fx.Node):
        return None
    if isinstance(value, (list, tuple)):
        items = [format_literal(item) for item in value]
        if any(item is None for item in items):
            return None
        return "[" + ", ".join(str(item) for item in items) + "]"
    if isinstance(value, torch.dtype):
        return naming.dtype_name(str(value))
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return naming.float_text(value)
    if isinstance(value, (torch.device, torch.memory_format, torch.layout, str)):
        return naming.enum_text(str(value))
    if isinstance(value, (torch.SymInt, torch.SymFloat, torch.SymBool)):
        return naming.sym_text(str(value))
    return None
