"""Each stage of a run on screen as soon as the worker converted it.

The worker writes the stages made so far to a partial graph file beside the final one
(in the cache, so Model Explorer may serve it) and calls back on the thread running the
run; :class:`RunStages` turns each call into an ``etviz/graphReady`` marked
``inProgress``. The final collection (written only by a run that succeeds) replaces it;
a failed run leaves the last good graph's file untouched.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from etviz_lsp.lsp.explorer_server import ExplorerServer
from etviz_lsp.lsp.paths import uri_of
from etviz_lsp.worker import StageUpdate

log = logging.getLogger(__name__)


def partial_path(output: Path) -> Path:
    """Where a run's stages so far go: beside its final graph, never the same file."""
    return output.with_name(f"{output.stem}.partial.json")


class RunStages:
    """The stage callback of one run of ``source``. ``send`` gets each graphReady payload
    (on the worker's thread: it hops to the loop); ``current`` says whether the run is
    still the one wanted (a newer save or a cancel made it moot)."""

    def __init__(
        self, source: Path, explorer: ExplorerServer, send: Callable[[dict[str, Any]], None],
        current: Callable[[], bool],
    ) -> None:
        self._source = source
        self._explorer = explorer
        self._send = send
        self._current = current
        self.shown = 0
        self.first_elapsed: float | None = None  # seconds from run start to the first stage

    def __call__(self, update: StageUpdate) -> None:
        if not self._current():
            return
        try:
            url = self._explorer.url_for(update.path)  # blocks until the server is up
            if self.shown:
                # Same partial file, same URL: the panel leaves the reload to the server.
                self._explorer.reload()
        except Exception as error:  # a stage that cannot be shown costs only that stage
            log.warning("%s: stage not shown: %s", self._source.name, error)
            return
        self.shown += 1
        if self.first_elapsed is None:
            self.first_elapsed = update.elapsed
        log.info("%s: %d stage(s) on screen after %.1fs", self._source.name,
                 len(update.graphs), update.elapsed)
        self._send({
            "source": uri_of(self._source),
            "url": url,
            "graphs": [{"id": g.id, "nodeCount": g.node_count} for g in update.graphs],
            "elapsedMs": round(update.elapsed * 1000),
            "stale": False,
            "inProgress": True,
        })
