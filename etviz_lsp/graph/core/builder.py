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

from etviz_lsp.graph.core import (
    ids,
    ir,
    model,
    naming,
    palette,
    partitions,
    placement,
    qdq,
    repeats,
    source,
)
from etviz_lsp.graph.core.hierarchy import Hierarchy

_STATE_LABEL_KINDS = ir.STATE_KINDS
_WEIGHT_KINDS = frozenset({ir.PARAMETER, ir.CONSTANT})


def build_graphs(
    record: ir.ProgramRecord,
    graph_id: str | None = None,
    tag_specs: dict[str, ir.PartitionInfo] | None = None,
    taken: set[str] | None = None,
) -> list[model.Graph]:
    """The graph for ``record`` followed by one graph per nested program, depth first.

    Lowered delegates in ``record`` are expanded in place (see ``partitions``);
    ``tag_specs`` names the backends of a partitioner's tags. ``taken`` holds the graph
    ids the collection already has: nested graphs get ids no other graph has.
    """
    partitions.prepare(record, tag_specs)
    ids.make_node_names_unique(record)
    taken = taken if taken is not None else set()
    graph_id = graph_id or record.name
    taken.add(graph_id)
    sub_ids = {name: ids.claim(f"{graph_id}/{name}", taken) for name in record.subprograms}
    graphs = [_build_graph(record, graph_id, sub_ids)]
    for name, sub in record.subprograms.items():
        graphs.extend(build_graphs(sub, sub_ids[name], taken=taken))
    return graphs


def _build_graph(record: ir.ProgramRecord, graph_id: str, sub_ids: dict[str, str]) -> model.Graph:
    layout = _Layout(record)
    graph = model.Graph(id=graph_id)
    maker = _NodeMaker(record, layout, sub_ids)
    graph.nodes = [maker.node(rec) for rec in record.nodes]
    graph.group_attrs = layout.hierarchy.layer_attrs(record.parameters)
    graph.group_attrs.update(layout.extra_layers)
    graph.group_configs = palette.group_configs(
        list(record.partitions.values()), bool(layout.clusters)
    )
    graph.group_attrs[""] = _graph_summary(record, graph, len(layout.clusters))
    repeats.describe(graph)
    return graph


class _Layout:
    """Where each node goes: module layers, a partition layer in the deepest module that
    holds all its ops (the module layers below it repeated inside), then a cluster layer.

    Op namespaces first, then state nodes (which look at the ops'): a state node goes
    with its consumers' cluster when it feeds a single one (a quantized weight and its
    dequantize), else into its owner's layer. Last, ``placement`` settles what is still
    loose (state of the root module, ops no module ran) beside the nodes it serves.
    """

    def __init__(self, record: ir.ProgramRecord) -> None:
        self.record = record
        self.hierarchy = Hierarchy()
        self.clusters = qdq.find_clusters(record)
        self.cluster_of = {name: c for c in self.clusters for name in c.members}
        self.extra_layers: dict[str, dict[str, str]] = {}
        self.bases = placement.partition_bases(record) if record.partitions else {}
        self.partition_layers: dict[str, str] = {}  # partition key -> its layer's namespace
        # Node name -> namespace: ops first, then state nodes (which look at the ops').
        self.namespaces: dict[str, str] = {}
        by_name = {rec.name: rec for rec in record.nodes} if self.clusters else {}
        state: list[ir.NodeRecord] = []
        for rec in record.nodes:
            if rec.kind in _STATE_LABEL_KINDS:
                state.append(rec)
            else:
                self.namespaces[rec.name] = self._op_namespace(rec, by_name)
        consumers: dict[str, list[str]] = {rec.name: [] for rec in state}
        for rec in record.nodes:
            for src, _ in rec.inputs:
                if src in consumers:
                    consumers[src].append(rec.name)
        for rec in state:
            self.namespaces[rec.name] = self._state_namespace(rec, consumers[rec.name])
        if placement.settle(record, self.namespaces):
            self.extra_layers[placement.SIZES_LAYER] = placement.SIZES_LAYER_ATTRS
        for rec in state:  # root state that serves no single layer: the root state layers
            if not self.namespaces[rec.name]:
                fqn = rec.attrs.get("fqn", rec.name)
                self.namespaces[rec.name] = self.hierarchy.state_namespace(fqn, rec.kind)

    def _partition_layer(self, key: str | None) -> str:
        """The namespace of partition ``key``'s layer ("" when not in a partition)."""
        if key is None:
            return ""
        found = self.partition_layers.get(key)
        if found is not None:
            return found
        info = self.record.partitions.get(key)
        if info is None:
            return ""
        base = self.bases.get(key, [])
        outer = self.hierarchy.namespace(base) if base else ""
        found = self.partition_layers[key] = f"{outer}/{info.label}" if outer else info.label
        if base:
            self.hierarchy.place_prefix(found, base[-1])
        self.extra_layers.setdefault(found, info.attrs)
        return found

    def _modules(self, scopes: list[ir.Scope], partition: str | None) -> str:
        """Module layers of ``scopes``, inside the partition layer when there is one."""
        prefix = self._partition_layer(partition)
        base = self.bases.get(partition, []) if partition else []
        inside = placement.below(scopes, base)
        if not inside:  # the base module itself, or not under it (a delegate's input)
            return prefix
        return self.hierarchy.namespace(inside, prefix, base[-1] if base else None)

    def _op_namespace(self, rec: ir.NodeRecord, by_name: dict[str, ir.NodeRecord]) -> str:
        cluster = self.cluster_of.get(rec.name) if self.cluster_of else None
        if cluster is None:
            return self._modules(rec.scopes, rec.partition)
        base = self._modules(cluster.scopes, rec.partition)
        namespace = f"{base}/{cluster.layer}" if base else cluster.layer
        if namespace not in self.extra_layers:
            self.extra_layers[namespace] = qdq.cluster_attrs(cluster, by_name)
        return namespace

    def _state_namespace(self, rec: ir.NodeRecord, consumers: list[str]) -> str:
        namespaces = {self.namespaces.get(name, "") for name in consumers}
        if len(namespaces) == 1:
            (only,) = namespaces
            if only.rsplit("/", 1)[-1].startswith("cluster "):
                return only
        fqn = rec.attrs.get("fqn", rec.name)
        if "." not in fqn:  # owned by the root module: placed by its consumers later
            return ""
        return self.hierarchy.state_namespace(fqn, rec.kind, self._partition_layer(rec.partition))


class _NodeMaker:
    """One graph's Model Explorer nodes, one per record."""

    def __init__(
        self, record: ir.ProgramRecord, layout: _Layout, sub_ids: dict[str, str]
    ) -> None:
        self.partitions = record.partitions
        self.cluster_of = layout.cluster_of
        self.namespaces = layout.namespaces
        self.sub_ids = sub_ids
        # ``[metadata of output 0]`` by that value's fields (a plain tuple: it hashes and
        # compares in C, a frozen dataclass in Python): a graph has few distinct (dtype,
        # shape) pairs, so single-output nodes share one list each (node JSON is written
        # out, never edited).
        self.first_outputs: dict[
            tuple[str, tuple[str, ...] | None, str | None], list[model.Metadata]
        ] = {}
        self.pairs = _SharedPairs()

    def node(self, rec: ir.NodeRecord) -> model.Node:
        # "quantize" in the target first: a cheap test, and most graphs have none.
        if "quantize" in rec.target and (qdq.is_quantize(rec) or qdq.is_dequantize(rec)):
            qdq.annotate_params(rec)
        attrs = _attrs(rec)
        partition = self.partitions.get(rec.partition) if rec.partition else None
        cluster = self.cluster_of.get(rec.name)
        if partition is not None:
            attrs["partition"] = rec.partition or ""
        if cluster is not None:
            attrs["qdq_cluster"] = cluster.name
        node: model.Node = {
            "id": rec.name,
            "label": _label(rec),
            "namespace": self.namespaces[rec.name],
            "attrs": [self.pairs[item] for item in attrs.items()],
            "incomingEdges": [
                {
                    "sourceNodeId": src,
                    "sourceNodeOutputId": _NUMBER_TEXT[out_index],
                    "targetNodeInputId": _NUMBER_TEXT[position],
                }
                for position, (src, out_index) in enumerate(rec.inputs)
            ],
            "outputsMetadata": self._outputs_metadata(rec),
        }
        if rec.subgraphs:
            subgraph_ids = self._subgraph_ids(rec)
            if subgraph_ids:
                node["subgraphIds"] = subgraph_ids
        if partition is not None or cluster is not None:  # else no style: spare the call
            style = palette.node_style(partition, cluster is not None)
            if style:
                node["style"] = style
        return node

    def _subgraph_ids(self, rec: ir.NodeRecord) -> list[str]:
        """The graphs a get_attr loads or an op runs (``ir.link_subgraphs``), each once."""
        found = [self.sub_ids[name] for name in rec.subgraphs if name in self.sub_ids]
        return list(dict.fromkeys(found))

    def _outputs_metadata(self, rec: ir.NodeRecord) -> list[model.Metadata]:
        if not rec.outputs:
            return []
        first = rec.outputs[0]
        key = (first.dtype, first.shape, first.value)
        shared = self.first_outputs.get(key)
        if shared is None:  # output 0's attrs do not name the node (see _output_attrs)
            attrs = model.kv(_output_attrs(first, rec.name, 0))
            shared = self.first_outputs[key] = [{"id": "0", "attrs": attrs}]
        if len(rec.outputs) == 1:
            return shared
        metadata = list(shared)  # a node of its own: the later outputs name it
        for index in range(1, len(rec.outputs)):
            attrs = model.kv(_output_attrs(rec.outputs[index], rec.name, index))
            metadata.append({"id": _NUMBER_TEXT[index], "attrs": attrs})
        return metadata


class _SharedPairs(dict[tuple[str, str], model.KeyValue]):
    """Attr entries ``{"key": k, "value": v}`` by ``(k, v)``, made once per graph.

    A 20k-node graph has 90k node attrs but 7k distinct ones (``kind: op``, a module's
    path, a target ...): nodes share the entries (node JSON is written out, never edited).
    """

    def __missing__(self, pair: tuple[str, str]) -> model.KeyValue:
        entry: model.KeyValue = {"key": pair[0], "value": pair[1]}
        self[pair] = entry
        return entry


class _NumberText(dict[int, str]):
    """Input positions and output indices as text, each spelled once (a lookup in C)."""

    def __missing__(self, number: int) -> str:
        text = self[number] = str(number)
        return text


_NUMBER_TEXT = _NumberText()


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
    location = source.user_location(rec.stack_trace)
    if location is not None:
        attrs["source"] = location
    if rec.attrs:
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
        "parameters": _parameters_text(record),
    }
    if record.partitions:
        summary["partitions"] = ", ".join(info.label for info in record.partitions.values())
    if clusters:
        origin = "given names" if record.clusters_given else "graph neighbours"
        summary["qdq clusters"] = f"{clusters} (from {origin})"
    return summary


def _parameters_text(record: ir.ProgramRecord) -> str:
    """The model's size: parameter and constant tensor elements, delegated ones included
    (quantization folds weights into constants), with the part outside delegates beside it
    when the program has some (``1,684 (28 outside delegates)``)."""
    total = outside = 0
    for rec in record.nodes:
        if rec.kind not in _WEIGHT_KINDS or not rec.outputs:
            continue
        size = rec.outputs[0].numel()
        total += size
        outside += size if rec.partition is None else 0
    if total == 0:  # a reader that keeps no state nodes: what the signature says
        total = outside = sum(v.numel() for v in record.parameters.values())
    delegated = any(info.attrs.get("lowered module") for info in record.partitions.values())
    return f"{total:,} ({outside:,} outside delegates)" if delegated else f"{total:,}"
