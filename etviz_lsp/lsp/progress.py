"""One run's ``window/workDoneProgress``: begin, stages, end; the client's cancel button
calls ``on_cancel`` (the server kills the worker's child).

Server-initiated: a token is created with ``window/workDoneProgress/create`` when the
client supports it; without that capability every call is a no-op.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Callable
from concurrent.futures import Future

from lsprotocol import types
from pygls.lsp.server import LanguageServer

log = logging.getLogger(__name__)
_tokens = itertools.count(1)


class RunProgress:
    def __init__(self, server: LanguageServer, token: str | None) -> None:
        self._server = server
        self._token = token
        self._loop = asyncio.get_running_loop()
        self._ended = False

    @classmethod
    async def begin(
        cls, server: LanguageServer, title: str, on_cancel: Callable[[], object]
    ) -> RunProgress:
        if not _client_shows_progress(server):
            return cls(server, None)
        token = f"etviz-run-{next(_tokens)}"
        try:
            await server.work_done_progress.create_async(token)
        except Exception as error:  # the client refused: run without a progress bar
            log.warning("no progress bar for %s: %s", title, error)
            return cls(server, None)
        progress = cls(server, token)
        server.work_done_progress.begin(
            token,
            types.WorkDoneProgressBegin(title=title, message="starting", cancellable=True),
        )
        cancelled = server.work_done_progress.tokens[token]

        def cancel_pressed(future: Future[object]) -> None:
            if future.cancelled() and not progress._ended:
                progress._loop.call_soon_threadsafe(on_cancel)

        cancelled.add_done_callback(cancel_pressed)
        return progress

    def report(self, stage: str) -> None:
        """From the loop's thread."""
        if self._token is not None and not self._ended:
            self._server.work_done_progress.report(
                self._token, types.WorkDoneProgressReport(message=stage)
            )

    def report_threadsafe(self, stage: str) -> None:
        """From the worker's thread (its ``on_progress`` callback)."""
        self._loop.call_soon_threadsafe(self.report, stage)

    def end(self, message: str) -> None:
        if self._token is None or self._ended:
            return
        self._ended = True
        self._server.work_done_progress.end(self._token, types.WorkDoneProgressEnd(message=message))
        self._server.work_done_progress.tokens.pop(self._token, None)


def _client_shows_progress(server: LanguageServer) -> bool:
    window = server.client_capabilities.window
    return bool(window and window.work_done_progress)
