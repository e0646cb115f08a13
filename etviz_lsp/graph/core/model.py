"""Model Explorer's graph format: typed dicts for the per-node parts, data classes above.

Field names follow Model Explorer's JSON (camelCase on the wire). A 20k-node graph has
about 100k nodes, edges and metadata entries: they are built as the plain dicts that get
serialized (``TypedDict`` s, so the format is still spelled out and type-checked), because
an object per entry plus a ``to_json`` copy of each cost a third of ``--once``'s time.
Graphs, collections and layer colours are few: those stay data classes with ``to_json``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NotRequired, TypedDict

Json = dict[str, Any]


class KeyValue(TypedDict):
    key: str
    value: str


def kv(attrs: dict[str, str]) -> list[KeyValue]:
    """``{"k": "v"}`` -> ``[{"key": "k", "value": "v"}]``, how Model Explorer lists attrs."""
    return [{"key": key, "value": value} for key, value in attrs.items()]


class Edge(TypedDict):
    sourceNodeId: str
    # The producer's output index and the consumer's input position, as text.
    sourceNodeOutputId: str
    targetNodeInputId: str


class Metadata(TypedDict):
    """Per input or output: ``id`` is the index as text; attrs hold ``tensor_shape`` etc."""

    id: str
    attrs: list[KeyValue]


class Node(TypedDict):
    id: str
    label: str
    namespace: str
    attrs: list[KeyValue]
    incomingEdges: list[Edge]
    outputsMetadata: list[Metadata]
    subgraphIds: NotRequired[list[str]]
    style: NotRequired[dict[str, str]]


def node_attr(node: Node, key: str) -> str | None:
    """The value of attr ``key`` of ``node``, None when it has none."""
    for item in node["attrs"]:
        if item["key"] == key:
            return item["value"]
    return None


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
            "nodes": self.nodes,  # already JSON: serialized as they are, not copied
            "groupNodeAttributes": self.group_attrs,
        }
        if self.group_configs:
            out["groupNodeConfigs"] = [cfg.to_json() for cfg in self.group_configs]
        return out


@dataclass(slots=True)
class GraphCollection:
    label: str
    graphs: list[Graph] = field(default_factory=list)
    # What a reader found beside the graphs, not in the JSON (a .pte's memory plans)
    extras: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> Json:
        return {"label": self.label, "graphs": [graph.to_json() for graph in self.graphs]}
