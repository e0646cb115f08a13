"""Model Explorer's graph format as plain data classes.

Field names follow Model Explorer's JSON (camelCase on the wire). ``to_json`` methods are
written out by hand because ``dataclasses.asdict`` deep-copies recursively and costs
seconds on a 20k-node graph.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

Json = dict[str, Any]


def _kv(attrs: dict[str, str]) -> list[Json]:
    return [{"key": key, "value": value} for key, value in attrs.items()]


@dataclass(slots=True)
class Edge:
    source_node_id: str
    source_output_id: str
    target_input_id: str

    def to_json(self) -> Json:
        return {
            "sourceNodeId": self.source_node_id,
            "sourceNodeOutputId": self.source_output_id,
            "targetNodeInputId": self.target_input_id,
        }


@dataclass(slots=True)
class Metadata:
    """Per input or output: ``id`` is the index as text; attrs hold ``tensor_shape`` etc."""

    id: str
    attrs: dict[str, str]

    def to_json(self) -> Json:
        return {"id": self.id, "attrs": _kv(self.attrs)}


@dataclass(slots=True)
class Node:
    id: str
    label: str
    namespace: str = ""
    attrs: dict[str, str] = field(default_factory=dict)
    incoming_edges: list[Edge] = field(default_factory=list)
    outputs_metadata: list[Metadata] = field(default_factory=list)
    subgraph_ids: list[str] = field(default_factory=list)
    style: dict[str, str] | None = None

    def to_json(self) -> Json:
        out: Json = {
            "id": self.id,
            "label": self.label,
            "namespace": self.namespace,
            "attrs": _kv(self.attrs),
            "incomingEdges": [edge.to_json() for edge in self.incoming_edges],
            "outputsMetadata": [meta.to_json() for meta in self.outputs_metadata],
        }
        if self.subgraph_ids:
            out["subgraphIds"] = self.subgraph_ids
        if self.style:
            out["style"] = self.style
        return out


@dataclass(slots=True)
class GroupConfig:
    """Colours for the layers whose namespace matches ``namespace_regex`` (first match wins)."""

    namespace_regex: str
    background_color: str | None = None
    border_color: str | None = None
    text_color: str | None = None

    def to_json(self) -> Json:
        out: Json = {"namespaceRegex": self.namespace_regex}
        for key, value in (
            ("backgroundColor", self.background_color),
            ("borderColor", self.border_color),
            ("textColor", self.text_color),
        ):
            if value:
                out[key] = value
        return out


@dataclass(slots=True)
class Graph:
    id: str
    nodes: list[Node] = field(default_factory=list)
    # Layer attributes by namespace; "" describes the whole graph.
    group_attrs: dict[str, dict[str, str]] = field(default_factory=dict)
    group_configs: list[GroupConfig] = field(default_factory=list)

    def to_json(self) -> Json:
        out: Json = {
            "id": self.id,
            "nodes": [node.to_json() for node in self.nodes],
            "groupNodeAttributes": self.group_attrs,
        }
        if self.group_configs:
            out["groupNodeConfigs"] = [cfg.to_json() for cfg in self.group_configs]
        return out


@dataclass(slots=True)
class GraphCollection:
    label: str
    graphs: list[Graph] = field(default_factory=list)

    def to_json(self) -> Json:
        return {"label": self.label, "graphs": [graph.to_json() for graph in self.graphs]}
