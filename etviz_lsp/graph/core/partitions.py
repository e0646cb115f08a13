"""Backend partitions: lowered delegates expanded into their ops, partitioner tags numbered.

After lowering, each ``executorch_call_delegate`` runs a LoweredBackendModule whose
``original_module`` still holds the ops the backend took over. ``expand_delegates``
splices those ops into the graph where the call was: the delegate's inputs feed the
original module's input placeholders, and the ``getitem`` nodes that unpacked the call's
results read the original module's output values instead. Every spliced node carries the
partition key ``<backend>#<n>`` (n counts delegates of that backend in graph order).

Spliced node ids are ``<lowered module>/<node name in its original module>``
(``lowered_module_0/aten_convolution_default``): unique, because the get_attr name is
unique in the outer graph and node names are unique inside one module.

Before lowering, partitions are the partitioner's ``delegation_tag`` groups (or a user
function's names); ``number_tags`` numbers them per backend in order of appearance.
"""

from __future__ import annotations

from etviz_lsp.graph.core import ir

DELEGATE_CALL = "higher_order.executorch_call_delegate"
Value = tuple[str, int]


def prepare(record: ir.ProgramRecord, tag_specs: dict[str, ir.PartitionInfo] | None = None) -> None:
    """Expand delegates and give every partition key a :class:`PartitionInfo` (in place)."""
    if record.delegates:
        expand_delegates(record)
    number_tags(record, tag_specs or {})


def expand_delegates(record: ir.ProgramRecord) -> None:
    counts: dict[str, int] = {}
    produced_by: dict[Value, Value] = {}  # (call, output index) -> value in the expansion
    nodes: list[ir.NodeRecord] = []
    for rec in record.nodes:
        if rec.kind == ir.GET_ATTR and rec.name in record.delegates:
            continue
        lowered = _delegate_of(rec, record)
        if lowered is None:
            rec.inputs = [produced_by.get(value, value) for value in rec.inputs]
            nodes.append(rec)
            continue
        delegate = record.delegates[lowered]
        index = counts.get(delegate.backend, 0)
        counts[delegate.backend] = index + 1
        key = f"{delegate.backend}#{index}"
        inputs = [produced_by.get(value, value) for value in rec.inputs[1:]]
        spliced, outputs = _splice(record, delegate, lowered, inputs, key)
        nodes.extend(spliced)
        produced_by.update({(rec.name, i): value for i, value in enumerate(outputs)})
        record.partitions[key] = ir.PartitionInfo(
            backend=delegate.backend,
            index=index,
            label=f"{_safe(delegate.backend)} #{index}",
            attrs=_delegate_attrs(delegate, key, lowered, rec.name, spliced),
        )
    record.nodes = nodes


def _delegate_of(rec: ir.NodeRecord, record: ir.ProgramRecord) -> str | None:
    if rec.target != DELEGATE_CALL or not rec.inputs:
        return None
    lowered = rec.inputs[0][0]
    return lowered if lowered in record.delegates else None


def _splice(
    record: ir.ProgramRecord,
    delegate: ir.DelegateRecord,
    prefix: str,
    inputs: list[Value],
    key: str,
) -> tuple[list[ir.NodeRecord], list[Value]]:
    """The original module's nodes renamed under ``prefix``, and its output values."""
    program = delegate.program

    def renamed(value: Value) -> Value:
        return (f"{prefix}/{value[0]}", value[1])

    user_inputs = iter(inputs)
    nodes: list[ir.NodeRecord] = []
    outputs: list[Value] = []
    for rec in program.nodes:
        if rec.kind == ir.OUTPUT:
            outputs = [renamed(value) for value in rec.inputs]
            continue
        rec.inputs = [renamed(value) for value in rec.inputs]
        if rec.kind == ir.USER_INPUT:  # fed by the delegate call's argument
            fed = next(user_inputs, None)
            rec.inputs = [fed] if fed is not None else []
        rec.name = f"{prefix}/{rec.name}"
        rec.subgraphs = [f"{prefix}/{name}" for name in rec.subgraphs]
        rec.partition = key
        nodes.append(rec)
    for name, sub in program.subprograms.items():
        record.subprograms[f"{prefix}/{name}"] = sub
    record.parameters.update(program.parameters)
    return nodes, outputs


def _delegate_attrs(
    delegate: ir.DelegateRecord, key: str, lowered: str, call: str, nodes: list[ir.NodeRecord]
) -> dict[str, str]:
    attrs = {
        "backend": delegate.backend,
        "partition": key,
        "lowered module": lowered,
        "delegate call": call,
        "delegate size": f"{delegate.size_bytes:,} bytes",
        "operator calls": str(sum(1 for rec in nodes if rec.kind == ir.OP)),
    }
    attrs.update(delegate.compile_specs or {"compile specs": "(none)"})
    return attrs


def number_tags(record: ir.ProgramRecord, tag_specs: dict[str, ir.PartitionInfo]) -> None:
    """A :class:`PartitionInfo` for each partition key not yet known, in order of appearance.

    ``tag_specs`` (from a partitioner's ``partition_tags``) supplies backend and attrs.
    """
    counts: dict[str, int] = {}
    for info in record.partitions.values():
        counts[info.backend] = max(counts.get(info.backend, 0), info.index + 1)
    for rec in record.nodes:
        key = rec.partition
        if key is None or key in record.partitions:
            continue
        known = tag_specs.get(key)
        backend = known.backend if known else ""
        index = counts.get(backend, 0)
        counts[backend] = index + 1
        record.partitions[key] = ir.PartitionInfo(
            backend=backend,
            index=index,
            label=f"{_safe(backend or 'partition')} #{index} ({_safe(key)})",
            attrs={"backend": backend or "(unknown)", "partition": key}
            | (known.attrs if known else {}),
        )


def _safe(text: str) -> str:
    """A layer name must not contain the namespace separator."""
    return text.replace("/", ":")
