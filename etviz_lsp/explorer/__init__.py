"""The one shared Model Explorer server: start, find and reuse, guard, URLs, refresh, stop.

No torch import here: the server runs Model Explorer in a process of its own.
"""

from etviz_lsp.explorer.manager import (
    ServerInfo,
    current_server,
    ensure_server,
    leave_server,
    refresh,
    server_alive,
    stop_server,
)
from etviz_lsp.explorer.publish import cache_path_for, publish
from etviz_lsp.explorer.urls import graph_url, ui_state

__all__ = [
    "ServerInfo",
    "cache_path_for",
    "current_server",
    "ensure_server",
    "graph_url",
    "leave_server",
    "publish",
    "refresh",
    "server_alive",
    "stop_server",
    "ui_state",
]
