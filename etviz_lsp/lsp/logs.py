"""Logging for a stdio server: stderr and the client's ``window/logMessage``, never stdout
(stdout carries the protocol). pygls logs every message body at INFO: kept at WARNING.

Editors show a server's stderr in the same log as its ``window/logMessage``: while the
client receives our records they do not also go to stderr, so each line appears once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys

from lsprotocol import types
from pygls.lsp.server import LanguageServer

_FORMAT = "%(asctime)s %(name)s %(levelname)s %(message)s"
_LEVELS = {
    logging.ERROR: types.MessageType.Error,
    logging.WARNING: types.MessageType.Warning,
    logging.INFO: types.MessageType.Info,
}


class ClientLogHandler(logging.Handler):
    """Forwards records to the client's log, from any thread, once the loop runs."""

    def __init__(self, server: LanguageServer, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(level=logging.INFO)
        self._server = server
        self._loop = loop

    def emit(self, record: logging.LogRecord) -> None:
        if self._loop.is_closed():
            # After the session: the root logger's stderr handler is the only way out.
            logging.getLogger().handle(record)
            return
        kind = _LEVELS.get(record.levelno, types.MessageType.Log)
        if record.levelno >= logging.ERROR:
            kind = types.MessageType.Error
        params = types.LogMessageParams(type=kind, message=self.format(record))
        # RuntimeError: the loop closed between the check and the call
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(self._server.window_log_message, params)


def setup_stderr(verbose: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)
    logging.getLogger("etviz_lsp").setLevel(logging.DEBUG if verbose else logging.INFO)
    logging.getLogger("pygls").setLevel(logging.WARNING)


def forward_to_client(server: LanguageServer, loop: asyncio.AbstractEventLoop) -> None:
    handler = ClientLogHandler(server, loop)
    handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
    etviz = logging.getLogger("etviz_lsp")
    etviz.addHandler(handler)
    etviz.propagate = False  # the client log has it: not stderr as well
