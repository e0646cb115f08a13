"""Read a live ``torch.fx`` graph (an ExportedProgram's) into a :class:`ProgramRecord`.

Only this module (and ``programs`` / ``pt2_load``) touches torch objects; everything past
the record is plain data. Literal formatting and target naming live in ``naming`` so the
``.pt2`` archive reader produces the very same strings.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
import torch.fx

from etviz_lsp.graph.core import ir, naming

# A user's function naming the partition or QDQ cluster of a node (None: not in one).
NodeNamer = Callable[[torch.fx.Node], "str | None"]


@dataclass(frozen=True, slots=True)
class Namers:
    """How a node's partition and cluster names are read.

    Without a function: ``node.meta["delegation_tag"]`` (a partitioner's tag) and
    ``node.meta["cluster"]`` (set by backends that recognise QDQ clusters, e.g. NXP's).
    """

    partition: NodeNamer | None = None
    cluster: NodeNamer | None = None


def read_exported_program(
    ep: torch.export.ExportedProgram, name: str, namers: Namers | None = None
) -> ir.ProgramRecord:
    """Record the top-level graph of ``ep`` (and its nested graphs) under ``name``."""
    namers = namers or Namers()
    kinds = _placeholder_kinds(ep)
    record = _read_graph(ep.graph_module, name, kinds, namers)
    _mark_mutations(ep, record)
    _per_channel_params(ep, record)
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
    gm: torch.fx.GraphModule, name: str, kinds: dict[str, tuple[str, str]], namers: Namers
) -> ir.ProgramRecord:
    record = ir.ProgramRecord(name=name)
    for node in gm.graph.nodes:
        rec = _read_node(node, kinds)
        if node.op != "output":
            rec.partition = _group_name(node, namers.partition, "delegation_tag")
            rec.cluster = _group_name(node, namers.cluster, "cluster")
        if node.op == "get_attr":
            attr = _attribute(gm, str(node.target))
            if isinstance(attr, torch.fx.GraphModule):
                # Keyed by the attribute, not the node: two get_attrs of one shared
                # graph load one graph (and a node name may differ from its target).
                key = str(node.target)
                rec.subgraphs = [key]
                if key not in record.subprograms:
                    record.subprograms[key] = _read_graph(attr, f"{name}/{key}", {}, namers)
            elif _is_lowered_module(attr):
                record.delegates[node.name] = _read_delegate(attr, f"{name}/{node.name}", namers)
        record.nodes.append(rec)
    record.clusters_given = namers.cluster is not None or any(r.cluster for r in record.nodes)
    ir.link_subgraphs(record)
    return record


def _group_name(node: torch.fx.Node, namer: NodeNamer | None, meta_key: str) -> str | None:
    found = namer(node) if namer is not None else node.meta.get(meta_key)
    return None if found is None else str(found)


def _attribute(gm: torch.fx.GraphModule, target: str) -> Any:
    obj: Any = gm
    for part in target.split("."):
        obj = getattr(obj, part, None)
    return obj


def _is_lowered_module(obj: Any) -> bool:
    """ExecuTorch's LoweredBackendModule, recognised without importing executorch (slow)."""
    return hasattr(obj, "backend_id") and hasattr(obj, "original_module")


def _read_delegate(module: Any, name: str, namers: Namers) -> ir.DelegateRecord:
    """The ops a delegate runs, read from the program it was lowered from.

    Partitions are fixed by the lowering here, so a user's partition function does not
    apply inside; their cluster function does.
    """
    program = read_exported_program(module.original_module, name, Namers(cluster=namers.cluster))
    specs = naming.compile_spec_attrs((s.key, s.value) for s in module.compile_specs or [])
    processed = getattr(module, "processed_bytes", None) or b""
    return ir.DelegateRecord(
        backend=str(module.backend_id),
        program=program,
        compile_specs=specs,
        size_bytes=len(processed),
    )


def _per_channel_params(ep: torch.export.ExportedProgram, record: ir.ProgramRecord) -> None:
    """Per-channel scales and zero points are tensors, not literals: show their values."""
    by_name = {rec.name: rec for rec in record.nodes}
    fqns = {name: fqn for name, (_, fqn) in _placeholder_kinds(ep).items()}
    for node in ep.graph.nodes:
        if node.op != "call_function" or "per_channel" not in target_name(node.target):
            continue
        for arg_name, arg in zip(("scales", "zero_points"), node.args[1:3], strict=False):
            tensor = _constant_tensor(ep, arg, fqns)
            if tensor is not None:
                by_name[node.name].attrs[arg_name] = _tensor_values_text(tensor)


def _constant_tensor(
    ep: torch.export.ExportedProgram, arg: Any, fqns: dict[str, str]
) -> torch.Tensor | None:
    if not isinstance(arg, torch.fx.Node):
        return None
    if arg.op == "get_attr":
        found = _attribute(ep.graph_module, str(arg.target))
        return found if isinstance(found, torch.Tensor) else None
    if arg.op != "placeholder":
        return None
    fqn = fqns.get(arg.name, "")
    found = ep.state_dict.get(fqn)
    if found is None:
        found = ep.constants.get(fqn)
    return found if isinstance(found, torch.Tensor) else None


_SHOWN_VALUES = 8


def _tensor_values_text(tensor: torch.Tensor) -> str:
    """``[0.0123, 0.0456, ...] (16 channels)``: a few values and the count."""
    flat = tensor.detach().flatten()
    values = [
        naming.float_text(float(v)) if flat.is_floating_point() else str(int(v))
        for v in flat[:_SHOWN_VALUES].tolist()
    ]
    more = ", ..." if flat.numel() > _SHOWN_VALUES else ""
    return f"[{', '.join(values)}{more}] ({flat.numel()} channels)"


def _read_node(node: torch.fx.Node, kinds: dict[str, tuple[str, str]]) -> ir.NodeRecord:
    rec = ir.NodeRecord(name=node.name, kind=ir.OP)
    if node.op == "placeholder":
        kind, fqn = kinds.get(node.name, (ir.USER_INPUT, ""))
        rec.kind = kind
        if fqn:
            rec.attrs["fqn"] = fqn
    elif node.op == "output":
        rec.kind = ir.OUTPUT
        values = output_values_text(node.args[0] if node.args else ())
        if values is not None:
            rec.attrs["values"] = values
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
    if val is None and ("val" not in node.meta or _returns_nothing(node.target)):
        return []  # (torch's loader leaves no value on an op that returns nothing)
    return [value_info(val)]


def _returns_nothing(target: Any) -> bool:
    schema = getattr(target, "_schema", None)
    return schema is not None and not schema.returns


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
    """Non-tensor arguments by their schema names (stride, padding, scale, ...).

    Ops without a schema: symbolic ops (``operator.mul``) by their Python parameter
    names, as torch's serializer names them; higher-order ops by position (``arg 1``).
    """
    if node.target is _GETITEM:
        return {}  # its index is the edge's output index
    names = _argument_names(node.target)
    if names is None:
        pairs = [(f"arg {index}", value) for index, value in enumerate(node.args)]
    else:
        pairs = list(zip(names, node.args, strict=False))
    literals = {}
    for arg_name, value in [*pairs, *node.kwargs.items()]:
        text = format_literal(value)
        if text is not None:
            literals[arg_name] = text
    return literals


_NAMES_BY_TARGET: dict[Any, list[str] | None] = {}


def _argument_names(target: Any) -> list[str] | None:
    """Schema names of an op's arguments; Python parameter names of a plain function;
    None (name by position) when it has neither."""
    try:
        return _NAMES_BY_TARGET[target]
    except (KeyError, TypeError):  # not seen yet (or not hashable: then not cached)
        pass
    schema = getattr(target, "_schema", None)
    names: list[str] | None
    if schema is not None:
        names = [arg.name for arg in schema.arguments]
    elif isinstance(target, torch._ops.HigherOrderOperator):
        names = None
    else:
        import inspect

        try:
            names = list(inspect.signature(target).parameters)
        except (TypeError, ValueError):
            names = None
    with contextlib.suppress(TypeError):
        _NAMES_BY_TARGET[target] = names
    return names


def format_literal(value: Any) -> str | None:
    """Text for a literal argument, or None for tensors (shown as edges) and None.

    A list is shown whole when it holds anything but tensors: symbolic sizes by their
    value (``[0, s77]``), tensors by their node name and missing ones as ``None``
    (``x[:, i]`` indexes with ``[None, i]``).
    """
    if value is None or isinstance(value, torch.fx.Node):
        return None
    if isinstance(value, (list, tuple)):
        if value and all(_is_tensor_node(item) for item in value):
            return None  # edges show every item
        items = [_list_item_text(item) for item in value]
        if any(item is None for item in items):
            return None
        return "[" + ", ".join(str(item) for item in items) + "]"
    return _scalar_literal(value)


def _scalar_literal(value: Any) -> str | None:
    if isinstance(value, torch.dtype):
        return naming.dtype_name(str(value))
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return naming.float_text(value)
    if isinstance(value, complex):
        return naming.complex_text(value.real, value.imag)
    if isinstance(value, (torch.device, torch.memory_format, torch.layout, str)):
        return naming.enum_text(str(value))
    if isinstance(value, (torch.SymInt, torch.SymFloat, torch.SymBool)):
        return naming.sym_text(str(value))
    return None


def _is_tensor_node(value: Any) -> bool:
    return isinstance(value, torch.fx.Node) and _symbolic_text(value) is None


def _symbolic_text(node: torch.fx.Node) -> str | None:
    val = node.meta.get("val")
    if isinstance(val, (torch.SymInt, torch.SymFloat, torch.SymBool)):
        return naming.sym_text(str(val))
    return None


def _list_item_text(item: Any) -> str | None:
    if item is None:
        return "None"
    if isinstance(item, torch.fx.Node):
        return _symbolic_text(item) or item.name
    return format_literal(item)


def output_values_text(values: Any) -> str | None:
    """The program's outputs in order, when some are constants (``True``, ``None``, an
    int): ``[mul, sym_size_int_1, True, None]``; None when every output is a node."""
    items = list(values) if isinstance(values, (list, tuple)) else [values]
    if all(isinstance(item, torch.fx.Node) for item in items):
        return None
    texts = [
        item.name if isinstance(item, torch.fx.Node) else (_scalar_literal(item) or str(item))
        for item in items
    ]
    return "[" + ", ".join(texts) + "]"
