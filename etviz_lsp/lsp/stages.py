"""Each stage of a run on screen as soon as the worker converted it.

The worker writes the stages made so far to a partial graph file beside the final one
(in the cache, so Model Explorer may serve it) and calls back on the thread running the
run; :class:`RunStages` turns each call into an ``etviz/graphReady`` marked
``inProgress``. The final collection (written only by a run that succeeds) replaces it;
a failed run leaves the last good graph's file untouched. The stages a failed, timed-out
or stopped run finished stay in the partial file, marked partial by the worker's caller
(``worker.partial_stages``): pages showing them reload with the marks, and the failure's
``etviz/graphReady`` carries them (``partial_view``): shown when no good graph exists, the
last good graph staying "the" graph of the file otherwise.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from etviz_lsp.lsp.explorer_server import ExplorerServer
from etviz_lsp.lsp.paths import uri_of
from etviz_lsp.worker import StageUpdate
from etviz_lsp.worker.script_error import PartialStages

log = logging.getLogger(__name__)


def partial_view(explorer: ExplorerServer, partial: PartialStages) -> dict[str, Any] | None:
    """A failed run's finished stages as a graphReady part (``url``, ``graphs``,
    ``failure``), from the server already known (no request); None before it is."""
    url = explorer.known_url_for(partial.path, {})
    if url is None:
        return None
    graphs = [{"id": graph_id, "nodeCount": count} for graph_id, count in partial.graphs]
    return {"url": url, "graphs": graphs, "failure": partial.failure}


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

    def failed(self, partial: PartialStages | None) -> None:
        """The run failed: pages showing its stages reload them, now marked partial."""
        if partial is None or not self.shown:
            return
        try:
            self._explorer.reload()
        except Exception as error:  # the marks show at the next reload instead
            log.warning("%s: partial stages not reloaded: %s", self._source.name, error)

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
