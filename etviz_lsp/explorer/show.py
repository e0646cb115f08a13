"""Show a graph JSON in the shared server: ensure it runs, publish, URL, refresh, browser tab.

What the CLI's ``--serve`` and the Python API's ``visualize`` do. A graph already shown
before (same source, so same cache file and same URL) is refreshed in place: open tabs
reload and keep their expanded layers and selection.
"""

from __future__ import annotations

import webbrowser
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from etviz_lsp.explorer.manager import ServerInfo, ensure_server, refresh
from etviz_lsp.explorer.publish import cache_path_for, in_cache
from etviz_lsp.explorer.urls import graph_url
from etviz_lsp.graph_files import NodeData


@dataclass(frozen=True, slots=True)
class PublishedGraph:
    """A graph JSON now served: its page's URL, the server, what happened to tabs."""

    url: str
    server: ServerInfo
    shown_before: bool  # the same graph was published earlier: its tabs were refreshed
    opened_tab: bool


def show(
    json_path: Path,
    *,
    open_browser: bool = True,
    new_tab_if_shown_before: bool = True,
    ui_state: dict[str, Any] | None = None,
    port: int | None = None,
    timeout: float = 30.0,
    node_data: NodeData | None = None,
) -> PublishedGraph:
    """``node_data``: Model Explorer node-data files (the overlays a graph's manifest
    lists) loaded with the graph."""
    info = ensure_server(port=port, timeout=timeout)
    target = json_path if in_cache(json_path) else cache_path_for(json_path)
    shown_before = target.exists()
    url = graph_url(info, json_path, ui_state, node_data=node_data)
    if shown_before:
        refresh(info)
    opened = False
    if open_browser and (new_tab_if_shown_before or not shown_before):
        opened = webbrowser.open_new_tab(url)
    return PublishedGraph(url=url, server=info, shown_before=shown_before, opened_tab=opened)
