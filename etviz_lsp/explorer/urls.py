"""URLs that open a graph in the shared server: ``/?data=<JSON>&etviz_token=<token>``.

``data`` is Model Explorer's own URL format: the models to load (a graph JSON path read
by its ``builtin_json`` adapter) and an optional ``uiState`` (expanded layers, selected
node and graph per pane). The web app rewrites ``data`` in the address bar as the user
expands and selects, and keeps our token parameter, so a reload (``refresh``) restores
the user's view.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from urllib.parse import quote

from etviz_lsp.explorer.guard import TOKEN_PARAM
from etviz_lsp.explorer.manager import ServerInfo
from etviz_lsp.explorer.publish import in_cache, publish, publish_beside
from etviz_lsp.graph_files import NodeData

GROUP_SUFFIX = "___group___"  # Model Explorer's id of the layer node for a namespace


def graph_url(
    info: ServerInfo,
    json_path: Path,
    ui_state: dict[str, Any] | None = None,
    *,
    node_data: NodeData | None = None,
) -> str:
    """The URL showing ``json_path``; a file outside the cache is published there first.

    ``node_data`` (overlay files, ``{graphId: {results: ...}}``, as the graph's manifest
    lists them) are published beside the graph and loaded with it (``nodeData``), in their
    order, applied to the graph's collection (``nodeDataTargets``: its label): the guard
    reads them from the cache like graphs.
    """
    shown = json_path if in_cache(json_path) else publish(json_path)
    data: dict[str, Any] = {"models": [{"url": str(shown), "adapterId": "builtin_json"}]}
    overlays = [str(publish_beside(path, shown)) for path in node_data.files] if node_data else []
    if node_data and overlays:
        data["nodeData"] = overlays
        data["nodeDataTargets"] = [node_data.label] * len(overlays)
    if ui_state:
        data["uiState"] = ui_state
    encoded = quote(json.dumps(data, separators=(",", ":")), safe="")
    return f"{info.base_url}/?{TOKEN_PARAM}={quote(info.token, safe='')}&data={encoded}"


def ui_state(
    graph_id: str,
    *,
    collection_label: str = "",
    expanded_layers: Iterable[str] = (),
    selected_node_id: str = "",
) -> dict[str, Any]:
    """One pane showing ``graph_id`` with the given layers (namespaces) expanded."""
    return {
        "paneStates": [
            {
                "deepestExpandedGroupNodeIds": [f"{ns}{GROUP_SUFFIX}" for ns in expanded_layers],
                "selectedNodeId": selected_node_id,
                "selectedGraphId": graph_id,
                "selectedCollectionLabel": collection_label,
                "widthFraction": 1,
                "selected": True,
            }
        ]
    }
