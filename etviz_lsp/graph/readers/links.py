"""What an ETRecord says about a ``.pte`` program's instructions: the one type both readers share.

``etrecord.links`` makes it, the ``.pte`` reader and the numeric gap overlay use it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from etviz_lsp.graph.readers.not_delegated_file import ByHandle


@dataclass(slots=True)
class Links:
    """What an ETRecord says about one program's instructions (see ``etrecord.links``)."""

    source: str  # the ETRecord's file name, shown on the graph
    # method -> instruction id -> debug handles of the edge ops it runs
    handles: dict[str, dict[int, list[int]]] = field(default_factory=dict)
    # method -> debug handle -> (edge op name, user location or "")
    ops: dict[str, dict[int, list[tuple[str, str]]]] = field(default_factory=dict)
    # method -> instruction id -> backend of the delegate it calls (to check the match)
    delegates: dict[str, dict[int, str]] = field(default_factory=dict)
    # method -> delegate instruction id -> the backend's own id of an op inside it (Vulkan's
    # node id, Core ML's ``output:op``) -> debug handles (the ETRecord's ``delegate_map``)
    delegate_ids: dict[str, dict[int, dict[str, list[int]]]] = field(default_factory=dict)
    # Why the ETRecord found beside the .pte could not be read ("" when it was)
    error: str = ""
    # Why ops stayed on the CPU, kept beside the ETRecord by the run that saved it
    not_delegated: ByHandle = field(default_factory=dict)
