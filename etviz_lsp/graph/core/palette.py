"""Colours for partitions and QDQ clusters, written into the graph JSON itself.

Model Explorer draws ``groupNodeConfigs`` (layer colours by namespace regex, first match
wins) and node ``style`` on first open, with no rules to import. One hue per backend,
a different shade per partition of that backend; clusters are amber everywhere, so a
cluster inside a partition shows as an amber frame on the partition's shade.
"""

from __future__ import annotations

import colorsys
import zlib

from etviz_lsp.graph.core import ir, model

# Hues (degrees) per backend id: each backend module of graph/backends/ registers its own
# (``registry.register``); a backend no module knows gets a stable hue from its name.
BACKEND_HUES: dict[str, int] = {}
UNKNOWN_HUE = 190  # tags whose backend is unknown
# Shades per partition of one backend (HSL lightness), cycled.
LIGHTNESS = (0.84, 0.74, 0.91, 0.79, 0.88, 0.70)
CLUSTER_FILL = "#ffe7a8"
CLUSTER_BORDER = "#d97706"
# Matches a cluster layer at any depth (its last namespace piece starts "cluster ").
CLUSTER_LAYER_REGEX = r"(^|/)cluster [^/]*$"


def set_backend_hue(backend: str, hue: int) -> None:
    BACKEND_HUES[backend] = hue


def backend_hue(backend: str) -> int:
    if not backend:
        return UNKNOWN_HUE
    if backend in BACKEND_HUES:
        return BACKEND_HUES[backend]
    hue = zlib.crc32(backend.encode()) % 300
    return hue + 60 if hue >= 20 else hue  # skip the cluster's amber (20-60 degrees)


def _hex(hue: int, lightness: float, saturation: float) -> str:
    red, green, blue = colorsys.hls_to_rgb(hue / 360, lightness, saturation)
    return "#{:02x}{:02x}{:02x}".format(*(round(c * 255) for c in (red, green, blue)))


def partition_fill(info: ir.PartitionInfo) -> str:
    return _hex(backend_hue(info.backend), LIGHTNESS[info.index % len(LIGHTNESS)], 0.75)


def partition_border(info: ir.PartitionInfo) -> str:
    return _hex(backend_hue(info.backend), 0.38, 0.65)


def js_regex_escape(text: str) -> str:
    """Escape for JavaScript's ``new RegExp`` (what Model Explorer builds from the JSON)."""
    return "".join("\\" + ch if ch in r"\^$.|?*+()[]{}" else ch for ch in text)


def group_configs(
    partitions: list[ir.PartitionInfo], with_clusters: bool
) -> list[model.GroupConfig]:
    """Cluster layers first (the more specific pattern), then each partition layer.

    A partition layer may sit inside module layers (``layers/5 (TransformerBlock)/
    XnnpackBackend #37``): its pattern matches the layer's last piece, at any depth.
    """
    configs = []
    if with_clusters:
        configs.append(model.GroupConfig(CLUSTER_LAYER_REGEX, CLUSTER_FILL, CLUSTER_BORDER))
    for info in partitions:
        regex = f"(^|/){js_regex_escape(info.label)}$"
        configs.append(model.GroupConfig(regex, partition_fill(info), partition_border(info)))
    return configs


def node_style(partition: ir.PartitionInfo | None, in_cluster: bool) -> dict[str, str] | None:
    """An op's fill says its partition; an amber border says it belongs to a cluster."""
    if partition is None:
        if not in_cluster:
            return None
        return {"backgroundColor": CLUSTER_FILL, "borderColor": CLUSTER_BORDER}
    border = CLUSTER_BORDER if in_cluster else partition_border(partition)
    return {"backgroundColor": partition_fill(partition), "borderColor": border}


# --- Model Explorer "Import rules" (styles/cluster_highlight_style.json) -----------------
# The UI applies the FIRST rule a node matches, so the more specific rules come first:
# a partition op that is also in a cluster, then partition ops, then cluster ops.


def import_rules() -> list[dict[str, object]]:
    """The rules shipped in ``styles/cluster_highlight_style.json`` (same colours as above)."""
    rules: list[dict[str, object]] = []
    backends = sorted(BACKEND_HUES)  # registration order is the room's module order
    for backend in [*backends, ""]:
        info = ir.PartitionInfo(backend=backend, index=0, label="")
        value = f"{backend}#" if backend else ""
        attr_regex = f"^partition[:=]{value}"
        fill, border = partition_fill(info), partition_border(info)
        in_cluster = [(attr_regex, "list"), ("^qdq_cluster[:=]", "list")]
        rules.append(_rule("op_nodes", in_cluster, fill, CLUSTER_BORDER))
        rules.append(_rule("op_nodes", [(attr_regex, "list")], fill, border))
        if backend:
            rules.append(_rule("layer_nodes", [(f"^{backend} #", "title")], fill, border))
    rules.append(_rule("op_nodes", [("^qdq_cluster[:=]", "list")], CLUSTER_FILL, CLUSTER_BORDER))
    rules.append(_rule("layer_nodes", [("^cluster ", "title")], CLUSTER_FILL, CLUSTER_BORDER))
    unknown = ir.PartitionInfo(backend="", index=0, label="")
    rules.append(
        _rule("layer_nodes", [("^partition #", "title")], partition_fill(unknown),
              partition_border(unknown))
    )
    return rules


def _rule(
    node_type: str, regexes: list[tuple[str, str]], fill: str, border: str
) -> dict[str, object]:
    queries: list[dict[str, object]] = [{"type": "node_type", "nodeType": node_type}]
    queries += [{"type": "regex", "queryRegex": rx, "matchTypes": [on]} for rx, on in regexes]
    return {
        "queries": queries,
        "nodeType": node_type,
        "styles": {
            "node_bg_color": {"id": "node_bg_color", "value": fill},
            "node_border_color": {"id": "node_border_color", "value": border},
        },
        "version": "v2",
    }


# --- an ExecuTorch program (.pte): where each instruction runs -------------------------
# CPU kernels are what fell back from the backends: a warm red that reads as "look here";
# delegate calls take their backend's partition colours.
CPU_KERNEL_FILL = "#fecaca"
CPU_KERNEL_BORDER = "#b91c1c"


def cpu_kernel_style() -> dict[str, str]:
    return {"backgroundColor": CPU_KERNEL_FILL, "borderColor": CPU_KERNEL_BORDER}


def delegate_call_style(info: ir.PartitionInfo) -> dict[str, str]:
    return {"backgroundColor": partition_fill(info), "borderColor": partition_border(info)}
