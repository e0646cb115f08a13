"""This window's handle on the one shared Model Explorer server (explorer room): started
on first use, the URLs of graphs on it, reloads of its pages, and stopping it at shutdown
when this is the last editor window using a server an editor started (explorer.leases
keeps that count).

Every call here blocks (HTTP, process start): the caller runs them in a thread.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

from etviz_lsp import explorer, graph_files

log = logging.getLogger(__name__)
START_TIMEOUT = 60.0


class ExplorerServer:
    """The server this window uses (its address once known) and the port to start one on."""

    def __init__(self, port: int | None) -> None:
        self._port = port
        self._lock = threading.Lock()
        self._info: explorer.ServerInfo | None = None

    def ensure(self) -> explorer.ServerInfo:
        """The running server (started, or reused when one is up)."""
        with self._lock:
            if self._info is not None and explorer.server_alive(self._info):
                return self._info
            self._info = explorer.ensure_server(port=self._port, timeout=START_TIMEOUT, lease=True)
            log.info("Model Explorer at %s (pid %s)", self._info.base_url, self._info.pid)
            return self._info

    def use_port(self, port: int | None) -> None:
        """The port the next server this window starts listens on (a running one stays)."""
        with self._lock:
            self._port = port

    @staticmethod
    def graph_file_for(source: Path) -> Path:
        """Where the graph of ``source`` is written: the one folder the server may read."""
        return explorer.cache_path_for(source)

    def url_for(self, graph_json: Path, ui_state: dict[str, Any] | None = None) -> str:
        """The graph page, with the node data its manifest lists loaded (graph_files), in
        ``ui_state``'s view when given."""
        node_data = graph_files.node_data_of(graph_json)
        return explorer.graph_url(self.ensure(), graph_json, ui_state, node_data=node_data)

    def known_url_for(self, graph_json: Path, ui_state: dict[str, Any]) -> str | None:
        """The URL with a view state, from the server already known (no request, no
        start: navigation asks often); None before the first graph was shown."""
        with self._lock:
            info = self._info
        if info is None:
            return None
        node_data = graph_files.node_data_of(graph_json)
        return explorer.graph_url(info, graph_json, ui_state, node_data=node_data)

    def reload(self) -> None:
        """Open tabs reload their graph (after a re-run wrote new JSON at the same path)."""
        with self._lock:
            info = self._info
        if info is not None:
            explorer.refresh(info)

    def stop(self, *, even_if_shared: bool = False) -> bool:
        """Stop the server when this is the last window using a server an editor started
        (or always, with ``even_if_shared``); True when one stopped."""
        with self._lock:
            self._info = None
        outcome = explorer.leave_server(stop=even_if_shared)
        if outcome == "kept":
            log.info("Model Explorer left running: other windows or the CLI use it")
        return outcome == "stopped"
