"""Turn :class:`ProgramRecord` s into Model Explorer graphs.

The contract later code relies on (tests check each point):
- one node per FX node; ``id`` is the FX node name, ``label`` the short op name;
- attrs ``target``, ``module``, ``source`` (the user's ``file:line``), ``debug_handle``;
- ``namespace`` is the nn.Module hierarchy (see ``hierarchy``);
- each data dependency is an incoming edge carrying the producer's real output index;
- ``outputsMetadata`` gives shape and dtype of each output, symbols by name;
- nested graphs (``torch.cond`` branches ...) are graphs of their own, linked by
  ``subgraphIds`` from the node that runs them.
"""

from __future__ import annotations

from etviz_lsp.graph import ir, model, naming, source
from etviz_lsp.graph.hierarchy import Hierarchy

_STATE_LABEL_KINDS = ir.STATE_KINDS


def build_graphs(record: ir.ProgramRecord, graph_id: str | None = None) -> list[model.Graph]:
    """The graph for ``record`` followed by one graph per nested program, depth first."""
    graph_id = graph_id or record.name
    sub_ids = {name: f"{graph_id}/{name}" for name in record.subprograms}
    graphs = [_build_graph(record, graph_id, sub_ids)]
    for name, sub in record.subprograms.items():
        graphs.extend(build_graphs(sub, sub_ids[name]))
    return graphs


def _build_graph(record: ir.ProgramRecord, graph_id: str, sub_ids: dict[str, str]) -> model.Graph:
    hierarchy = Hierarchy()
    # Op namespaces first: state nodes are placed in the layer of the module owning them.
    namespaces = {
        rec.name: hierarchy.namespace(rec.scopes) for rec in record.nodes if rec.scopes
    }
    graph = model.Graph(id=graph_id)
    for rec in record.nodes:
        namespace = namespaces.get(rec.name, "")
        if rec.kind in _STATE_LABEL_KINDS:
            namespace = hierarchy.state_namespace(rec.attrs.get("fqn", rec.name), rec.kind)
        graph.nodes.append(_build_node(rec, namespace, sub_ids))
    graph.group_attrs = hierarchy.layer_attrs(record.parameters)
    graph.group_attrs[""] = _graph_summary(record, graph)
    return graph


def _build_node(rec: ir.NodeRecord, namespace: str, sub_ids: dict[str, str]) -> model.Node:
    node = model.Node(id=rec.name, label=_label(rec), namespace=namespace)
    node.attrs = _attrs(rec)
    node.incoming_edges = [
        model.Edge(src, str(out_index), str(position))
        for position, (src, out_index) in enumerate(rec.inputs)
    ]
    node.outputs_metadata = [
        model.Metadata(str(index), _output_attrs(value, rec.name, index))
        for index, value in enumerate(rec.outputs)
    ]
    node.subgraph_ids = [sub_ids[name] for name in rec.subgraphs if name in sub_ids]
    if rec.kind == ir.GET_ATTR and rec.name in sub_ids:
        node.subgraph_ids = [sub_ids[rec.name]]
    return node


def _label(rec: ir.NodeRecord) -> str:
    if rec.kind == ir.OP:
        return naming.short_label(rec.target)
    if rec.kind in _STATE_LABEL_KINDS:
        return rec.attrs.get("fqn", rec.name).rsplit(".", 1)[-1]
    if rec.kind == ir.OUTPUT:
        return "output"
    return rec.name


def _attrs(rec: ir.NodeRecord) -> dict[str, str]:
    attrs = {"kind": rec.kind}
    if rec.target:
        attrs["target"] = rec.target
    if rec.kind in _STATE_LABEL_KINDS:
        fqn = rec.attrs.get("fqn", "")
        attrs["module"] = fqn.rsplit(".", 1)[0] if "." in fqn else ""
    else:
        attrs["module"] = rec.scopes[-1].path if rec.scopes else ""
    frame = source.user_frame(rec.stack_trace)
    if frame is not None:
        attrs["source"] = str(frame)
    attrs.update(rec.attrs)
    return attrs


def _output_attrs(value: ir.ValueInfo, node_name: str, index: int) -> dict[str, str]:
    """``tensor_shape`` (what Model Explorer shows on edges) and only what it does not say.

    A 20k-node graph repeats these on every output, so redundant keys cost megabytes:
    a tensor's dtype and fixed shape are already in ``tensor_shape`` (``float32[1, 16]``);
    output 0's tensor name is the node id. Kept: ``tensor_name`` of further outputs
    (``topk:1``), ``shape`` when it holds a symbol, ``dtype``/``value`` of non-tensors.
    """
    attrs = {"tensor_shape": naming.tensor_shape_text(value)}
    if index:
        attrs["tensor_name"] = f"{node_name}:{index}"
    if value.shape is None:
        attrs["dtype"] = value.dtype
    elif not all(dim.isdigit() for dim in value.shape):
        attrs["shape"] = f"[{', '.join(value.shape)}]"
    if value.value is not None:
        attrs["value"] = value.value
    return attrs


def _graph_summary(record: ir.ProgramRecord, graph: model.Graph) -> dict[str, str]:
    ops = sum(1 for rec in record.nodes if rec.kind == ir.OP)
    return {
        "program": record.name,
        "op nodes": str(ops),
        "layers": str(len(graph.group_attrs)),
        "parameters": f"{sum(v.numel() for v in record.parameters.values()):,}",
    }
