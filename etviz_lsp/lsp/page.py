"""The Model Explorer page graphs are shown in: the one shared server (explorer room),
started on first use, its URLs, reloads, and stopping it at shutdown when this language
server started it.

Every call here blocks (HTTP, process start): the caller runs them in a thread.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from etviz_lsp import explorer

log = logging.getLogger(__name__)
START_TIMEOUT = 60.0


class Page:
    def __init__(self, port: int | None) -> None:
        self._port = port
        self._lock = threading.Lock()
        self._info: explorer.ServerInfo | None = None

    def ensure(self) -> explorer.ServerInfo:
        """The running server (started, or reused when one is up)."""
        with self._lock:
            if self._info is not None and explorer.server_alive(self._info):
                return self._info
            self._info = explorer.ensure_server(port=self._port, timeout=START_TIMEOUT)
            log.info("Model Explorer at %s (pid %s)", self._info.base_url, self._info.pid)
            return self._info

    def url_for(self, graph_json: Path) -> str:
        return explorer.graph_url(self.ensure(), graph_json)

    def reload(self) -> None:
        """Open tabs reload their graph (after a re-run wrote new JSON at the same path)."""
        with self._lock:
            info = self._info
        if info is not None:
            explorer.refresh(info)

    def stop(self) -> bool:
        """Stop the server if this language server brought one up; True when one stopped."""
        with self._lock:
            if self._info is None:
                return False
            self._info = None
        return explorer.stop_server()
