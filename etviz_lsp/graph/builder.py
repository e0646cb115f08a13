"""Turn :class:`ProgramRecord` s into Model Explorer graphs.

The contract later code relies on (tests check each point):
- one node per FX node; ``id`` is the FX node name, ``label`` the short op name;
- attrs ``target``, ``module``, ``source`` (the user's ``file:line``), ``debug_handle``;
- ``namespace`` is the nn.Module hierarchy (see ``hierarchy``);
- each data dependency is an incoming edge carrying the producer's real output index;
- ``outputsMetadata`` gives shape and dtype of each output, symbols by name;
- nested graphs (``torch.cond`` branches ...) are graphs of their own, linked by
  ``subgraphIds`` from the node that runs them;
- partitions (``partitions``) are top-level layers with the module hierarchy inside,
  their ops carry attr ``partition``; QDQ clusters (``qdq``) are layers inside the module
  hierarchy, their members carry attr ``qdq_cluster``; both coloured (``palette``).
"""

from __future__ import annotations

from collections import defaultdict

from etviz_lsp.graph import ir, model, naming, palette, partitions, qdq, source
from etviz_lsp.graph.hierarchy import Hierarchy

_STATE_LABEL_KINDS = ir.STATE_KINDS


def build_graphs(
    record: ir.ProgramRecord,
    graph_id: str | None = None,
    tag_specs: dict[str, ir.PartitionInfo] | None = None,
) -> list[model.Graph]:
    """The graph for ``record`` followed by one graph per nested program, depth first.

    Lowered delegates in ``record`` are expanded in place (see ``partitions``);
    ``tag_specs`` names the backends of a partitioner's tags.
    """
    partitions.prepare(record, tag_specs)
    graph_id = graph_id or record.name
    sub_ids = {name: f"{graph_id}/{name}" for name in record.subprograms}
    graphs = [_build_graph(record, graph_id, sub_ids)]
    for name, sub in record.subprograms.items():
        graphs.extend(build_graphs(sub, sub_ids[name]))
    return graphs


def _build_graph(record: ir.ProgramRecord, graph_id: str, sub_ids: dict[str, str]) -> model.Graph:
    layout = _Layout(record)
    graph = model.Graph(id=graph_id)
    for rec in record.nodes:
        if qdq.is_quantize(rec) or qdq.is_dequantize(rec):
            qdq.annotate_params(rec)
        node = _build_node(rec, layout.namespace_of(rec), sub_ids)
        partition = record.partitions.get(rec.partition) if rec.partition else None
        cluster = layout.cluster_of.get(rec.name)
        if partition is not None and rec.partition:
            node.attrs["partition"] = rec.partition
        if cluster is not None:
            node.attrs["qdq_cluster"] = cluster.name
        node.style = palette.node_style(partition, cluster is not None)
        graph.nodes.append(node)
    graph.group_attrs = layout.hierarchy.layer_attrs(record.parameters)
    graph.group_attrs.update(layout.extra_layers)
    graph.group_configs = palette.group_configs(
        list(record.partitions.values()), bool(layout.clusters)
    )
    graph.group_attrs[""] = _graph_summary(record, graph, len(layout.clusters))
    return graph


class _Layout:
    """Where each node goes: partition layer, then module layers, then cluster layer.

    Op namespaces first: state nodes go with their consumers' cluster when they feed a
    single one (a quantized weight and its dequantize), else into their owner's layer.
    """

    def __init__(self, record: ir.ProgramRecord) -> None:
        self.record = record
        self.hierarchy = Hierarchy()
        self.clusters = qdq.find_clusters(record)
        self.cluster_of = {name: c for c in self.clusters for name in c.members}
        by_name = {rec.name: rec for rec in record.nodes}
        self.extra_layers: dict[str, dict[str, str]] = {}
        self._ops: dict[str, str] = {}
        for rec in record.nodes:
            if rec.kind not in _STATE_LABEL_KINDS:
                self._ops[rec.name] = self._op_namespace(rec, by_name)
        self._consumers: dict[str, list[str]] = defaultdict(list)
        for rec in record.nodes:
            for src, _ in rec.inputs:
                self._consumers[src].append(rec.name)

    def _prefix(self, rec: ir.NodeRecord) -> str:
        info = self.record.partitions.get(rec.partition) if rec.partition else None
        if info is None:
            return ""
        self.extra_layers.setdefault(info.label, info.attrs)
        return info.label

    def _op_namespace(self, rec: ir.NodeRecord, by_name: dict[str, ir.NodeRecord]) -> str:
        prefix = self._prefix(rec)
        cluster = self.cluster_of.get(rec.name)
        if cluster is None:
            return self.hierarchy.namespace(rec.scopes, prefix) if rec.scopes else prefix
        base = self.hierarchy.namespace(cluster.scopes, prefix) if cluster.scopes else prefix
        namespace = f"{base}/{cluster.layer}" if base else cluster.layer
        if namespace not in self.extra_layers:
            self.extra_layers[namespace] = qdq.cluster_attrs(cluster, by_name)
        return namespace

    def namespace_of(self, rec: ir.NodeRecord) -> str:
        if rec.kind not in _STATE_LABEL_KINDS:
            return self._ops[rec.name]
        consumers = {self._ops.get(name, "") for name in self._consumers[rec.name]}
        if len(consumers) == 1:
            (only,) = consumers
            if only.rsplit("/", 1)[-1].startswith("cluster "):
                return only
        fqn = rec.attrs.get("fqn", rec.name)
        return self.hierarchy.state_namespace(fqn, rec.kind, self._prefix(rec))


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
    return rec.name.rsplit("/", 1)[-1]  # a delegate's input keeps its own name


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


def _graph_summary(record: ir.ProgramRecord, graph: model.Graph, clusters: int) -> dict[str, str]:
    ops = sum(1 for rec in record.nodes if rec.kind == ir.OP)
    summary = {
        "program": record.name,
        # Not "op node count" / "layer count": Model Explorer's info panel shows those itself,
        # counting every node and only the layers it draws; these count what the program has.
        "operator calls": str(ops),
        "module layers": str(len(graph.group_attrs)),
        "parameters": f"{sum(v.numel() for v in record.parameters.values()):,}",
    }
    if record.partitions:
        summary["partitions"] = ", ".join(info.label for info in record.partitions.values())
    if clusters:
        origin = "given names" if record.clusters_given else "graph neighbours"
        summary["qdq clusters"] = f"{clusters} (from {origin})"
    return summary
