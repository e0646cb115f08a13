"""QDQ clusters: a compute op with its dequantize inputs, quantize outputs and the helpers
between them (view, permute, relu, getitem ...).

Works for any quantizer: quantize / dequantize ops are recognised by name
(``quantized_decomposed.dequantize_per_tensor``, ``..._per_channel``,
``torchao.dequantize_affine`` ...), so PT2E with XNNPACKQuantizer, NXP's or others'.
When a backend already named its clusters (``node.meta["cluster"]``) or the user passed a
function, those names are the clusters (``ProgramRecord.clusters_given``); otherwise they
are found from graph neighbours here. Graph neighbours, not module paths: after PT2E
convert and re-export, quantize/dequantize nodes carry only a bogus root module stack.

A cluster never crosses a partition boundary: a layer cannot be in two layers at once,
and the quantize/dequantize pair at a delegate's edge belongs to the delegate.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from etviz_lsp.graph.core import ir, naming, placement

# Ops that sit between a compute op and its quantize/dequantize nodes without changing
# the values' quantization (layout changes, fused activations, tuple unpacking).
HELPER_OPS = frozenset(
    {
        "view", "view_copy", "_unsafe_view", "reshape", "flatten", "permute", "permute_copy",
        "transpose", "transpose_copy", "t", "t_copy", "squeeze", "squeeze_copy", "unsqueeze",
        "unsqueeze_copy", "expand", "expand_copy", "clone", "contiguous", "relu", "relu_",
        "relu6", "hardtanh", "hardtanh_", "clamp", "getitem",
    }
)  # fmt: skip
# How far from a compute op helpers are followed.
MAX_HOPS = 4


@dataclass(slots=True)
class Cluster:
    name: str  # the value of every member's ``qdq_cluster`` attr
    layer: str  # the layer's name: ``cluster conv2d``
    compute: str  # node name of the compute op
    members: list[str] = field(default_factory=list)  # node names, graph order
    # The module the cluster layer sits in: the compute op's, narrowed to what its
    # helpers share (conv in ``a.conv`` + relu in ``a.relu`` -> ``a``).
    scopes: list[ir.Scope] = field(default_factory=list)
    partition: str | None = None


def is_dequantize(rec: ir.NodeRecord) -> bool:
    return rec.kind == ir.OP and naming.short_label(rec.target).startswith("dequantize")


def is_quantize(rec: ir.NodeRecord) -> bool:
    return rec.kind == ir.OP and naming.short_label(rec.target).startswith("quantize_")


def is_helper(rec: ir.NodeRecord) -> bool:
    return rec.kind == ir.OP and naming.short_label(rec.target) in HELPER_OPS


def find_clusters(record: ir.ProgramRecord) -> list[Cluster]:
    if record.clusters_given:
        clusters = _given(record)
    elif any("quantize" in rec.target for rec in record.nodes):
        clusters = _Finder(record).clusters()
    else:  # a float graph: nothing to find (a cheap test, big graphs are mostly float)
        return []
    by_name = {rec.name: rec for rec in record.nodes}
    for cluster in clusters:
        cluster.scopes = _cluster_scopes(cluster, by_name)
    return clusters


def _given(record: ir.ProgramRecord) -> list[Cluster]:
    """Clusters named by a backend or the user; split where one crosses partitions."""
    groups: dict[tuple[str | None, str], list[ir.NodeRecord]] = defaultdict(list)
    for rec in record.nodes:
        if rec.cluster is not None and rec.kind == ir.OP:
            groups[(rec.partition, rec.cluster)].append(rec)
    clusters = []
    for (partition, name), members in groups.items():
        compute = next((r for r in members if _is_compute(r)), members[0])
        clusters.append(
            Cluster(
                name=name,
                layer=f"cluster {name.replace('/', ':')}",
                compute=compute.name,
                members=[r.name for r in members],
                partition=partition,
            )
        )
    return clusters


def _is_qdq(rec: ir.NodeRecord) -> bool:
    return is_quantize(rec) or is_dequantize(rec)


def _is_compute(rec: ir.NodeRecord) -> bool:
    return not (_is_qdq(rec) or is_helper(rec))


class _Finder:
    """Clusters from graph neighbours; a node joins the first cluster that reaches it."""

    def __init__(self, record: ir.ProgramRecord) -> None:
        self.nodes = record.nodes
        self.by_name = {rec.name: rec for rec in record.nodes}
        self.users: dict[str, list[str]] = defaultdict(list)
        for rec in record.nodes:
            for src in dict.fromkeys(src for src, _ in rec.inputs):
                self.users[src].append(rec.name)
        self.claimed: set[str] = set()

    def clusters(self) -> list[Cluster]:
        # Size arithmetic reads quantized tensors' shapes, but it is not their compute.
        ops = [
            r for r in self.nodes
            if r.kind == ir.OP and not _is_qdq(r) and not placement.is_symbolic(r)
        ]
        # Real compute ops first; a lone helper between dq and q (a quantized view) after.
        candidates = [r for r in ops if not is_helper(r)] + [
            r for r in ops if is_helper(r) and naming.short_label(r.target) != "getitem"
        ]
        found = []
        order = {rec.name: i for i, rec in enumerate(self.nodes)}
        for rec in candidates:
            if rec.name in self.claimed:
                continue
            attached = self._inputs(rec) + self._outputs(rec)
            if not attached:
                continue
            members = sorted({rec.name, *attached}, key=order.__getitem__)
            self.claimed.update(members)
            local = rec.name.rsplit("/", 1)[-1]
            found.append(
                Cluster(rec.name, f"cluster {local}", rec.name, members, partition=rec.partition)
            )
        return found

    def _joinable(self, name: str, partition: str | None) -> ir.NodeRecord | None:
        rec = self.by_name.get(name)
        if rec is None or rec.kind != ir.OP or rec.partition != partition:
            return None
        return None if name in self.claimed else rec

    def _inputs(self, compute: ir.NodeRecord) -> list[str]:
        """Dequantize nodes feeding ``compute``, with the helpers on the way."""
        found: list[str] = []
        for src, _ in compute.inputs:
            chain: list[str] = []
            rec = self._joinable(src, compute.partition)
            for _ in range(MAX_HOPS):
                if rec is None:
                    break
                if is_dequantize(rec):
                    found.extend([*chain, rec.name])
                    break
                if not (is_helper(rec) and rec.inputs and len(self.users[rec.name]) == 1):
                    break
                chain.append(rec.name)
                rec = self._joinable(rec.inputs[0][0], compute.partition)
        return found

    def _outputs(self, compute: ir.NodeRecord) -> list[str]:
        """Quantize nodes fed by ``compute``, with the helpers on the way."""
        found: list[str] = []

        def walk(name: str, chain: list[str], depth: int) -> None:
            for user in self.users[name]:
                rec = self._joinable(user, compute.partition)
                if rec is None:
                    continue
                if is_quantize(rec):
                    found.extend([*chain, user])
                elif is_helper(rec) and depth < MAX_HOPS:
                    walk(user, [*chain, user], depth + 1)

        walk(compute.name, [], 0)
        return list(dict.fromkeys(found))


def _cluster_scopes(cluster: Cluster, by_name: dict[str, ir.NodeRecord]) -> list[ir.Scope]:
    scopes = list(by_name[cluster.compute].scopes)
    for name in cluster.members:
        rec = by_name[name]
        if _is_qdq(rec) or not rec.scopes:
            continue  # q/dq carry a bogus root stack; unscoped helpers say nothing
        common = 0
        while common < min(len(scopes), len(rec.scopes)) and scopes[common] == rec.scopes[common]:
            common += 1
        scopes = scopes[:common]
    return scopes


def annotate_params(rec: ir.NodeRecord) -> None:
    """Add ``range`` (``[quant_min, quant_max]``) to a quantize/dequantize node's attrs."""
    low, high = rec.attrs.get("quant_min"), rec.attrs.get("quant_max")
    if low is not None and high is not None:
        rec.attrs["range"] = f"[{low}, {high}]"


def params_text(rec: ir.NodeRecord) -> str:
    """``int8 scale=0.0235 zero_point=-128 range=[-128, 127]`` (per-channel: axis, scales)."""
    attrs = rec.attrs
    parts = [attrs.get("dtype", "")]
    if "axis" in attrs:
        parts.append(f"per-channel axis={attrs['axis']}")
    for key in ("scale", "zero_point", "scales", "zero_points", "range"):
        if key in attrs:
            parts.append(f"{key}={attrs[key]}")
    return " ".join(part for part in parts if part)


def cluster_attrs(cluster: Cluster, by_name: dict[str, ir.NodeRecord]) -> dict[str, str]:
    """The cluster layer's attributes: its compute op and every quantization it applies."""
    attrs = {
        "qdq_cluster": cluster.name,
        "compute op": cluster.compute,
        "members": str(len(cluster.members)),
    }
    for name in cluster.members:
        rec = by_name[name]
        local = name.rsplit("/", 1)[-1]
        if is_dequantize(rec):
            attrs[f"dequantize {local}"] = params_text(rec)
        elif is_quantize(rec):
            attrs[f"quantize {local}"] = params_text(rec)
    return attrs
