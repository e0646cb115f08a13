"""``etviz.server.profile``: "Profile on This Machine" for a visualized export script.

The run's child kept the ExecuTorch program it made beside the graph JSON in the cache
(``worker/profile_run.py``; ``etviz.profile`` is not ``off``); this command has the warm
worker fork a fresh child that runs it with ETDump on, ``etviz.profileIterations`` times,
with the example inputs the script gave ``torch.export.export``. The child adds the
``.pte``'s graphs (the ``program`` stage) to the collection, moves the time on to the
run's ``lowered`` / ``executorch`` stages (the graphs users read, with their source lines:
``graph/overlays/stage_latency.py``) and writes the latency node-data files after it, so
the page URL built then loads them (the manifest lists them) and the panel gets a fresh
``etviz/graphReady``; that page opens on the lowered stage (:func:`lowered_view`), not on
the ``program`` stage the profile added last. Progress and cancel as for a run; one run or
profile at a time (the visualizer's run lock). The visualizer hands a :class:`ProfileJob`
over with what it needs and shows what comes back: this module never reaches back into it.
Never imports torch: the profile runs in the worker's child.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

from pygls.exceptions import JsonRpcRequestCancelled
from pygls.lsp.server import LanguageServer

from etviz_lsp import graph_files
from etviz_lsp.errors import EtvizError
from etviz_lsp.explorer.urls import ui_state
from etviz_lsp.lsp.commands import RequestFailed
from etviz_lsp.lsp.options import InitOptions, timeout_advice
from etviz_lsp.lsp.progress import RunProgress
from etviz_lsp.worker import RunResult, ScriptFailed, WarmWorker
from etviz_lsp.worker.profile_run import NOTHING_TO_PROFILE, summary_line

log = logging.getLogger(__name__)
Shown = TypeVar("Shown")
LOWERED = " (lowered)"  # how a script run names its lowered stages' graph ids


def lowered_view(graph_ids: Sequence[str]) -> dict[str, Any] | None:
    """Model Explorer's view state opening a profiled collection on its last lowered stage:
    the graph users read (their modules, partitions, source lines) with the kernels' time
    moved onto it (issue 28). Without it the panel opens on the last graph, the ``program``
    stage the profile appended. None when the run made no lowered stage."""
    lowered = [graph_id for graph_id in graph_ids if graph_id.endswith(LOWERED)]
    return ui_state(lowered[-1]) if lowered else None


@dataclass(frozen=True)
class ProfileJob(Generic[Shown]):
    """One profile of ``source``'s kept program, with what it needs from the visualizer."""

    server: LanguageServer
    worker: WarmWorker
    run_lock: asyncio.Lock  # one run or profile at a time in the warm worker
    options: InitOptions
    source: Path
    graph_json: Path  # the graph the run wrote; its kept program lies beside it
    # blocking: the rewritten graphs as shown (page URL, navigation map), open pages reloaded
    graphs_of: Callable[[RunResult], Shown]

    def check(self) -> None:
        """A one-line refusal when profiling is off or the run kept no program."""
        if self.options.profile == "off":
            raise RequestFailed(f"{self.source}: profiling is off (setting etviz.profile)")
        try:
            manifest = graph_files.read(self.graph_json, navigation=False)
        except EtvizError as exc:
            raise RequestFailed(str(exc)) from None
        if manifest is None or manifest.file(graph_files.KEPT_PROGRAM) is None:
            raise RequestFailed(f"{self.source}: nothing to profile: {NOTHING_TO_PROFILE}")

    async def run(self) -> tuple[Shown, RunResult]:
        """Profile with progress and cancel; the graphs as shown and the worker's result."""
        self.check()
        async with self.run_lock:
            progress = await RunProgress.begin(
                self.server, f"etviz: profile {self.source.name}", self.worker.cancel
            )
            try:
                result = await asyncio.to_thread(
                    self.worker.profile_kept, self.graph_json,
                    iterations=self.options.profile_iterations, timeout=self.options.timeout,
                    on_progress=progress.report_threadsafe,
                )
                progress.report("refreshing")
                shown = await asyncio.to_thread(self.graphs_of, result)
            except ScriptFailed as failed:
                progress.end(self._failure(failed))
                raise self._request_error(failed) from None
            except BaseException as error:
                progress.end(f"failed: {error}")
                raise
            progress.end(summary_line(result.profile))
        log.info("profiled %s: %s", self.source.name, summary_line(result.profile))
        return shown, result

    def _failure(self, failed: ScriptFailed) -> str:
        return "cancelled" if failed.error.kind == "cancelled" else (
            f"failed: {failed.error.headline}")

    def _request_error(self, failed: ScriptFailed) -> Exception:
        if failed.error.kind == "cancelled":
            return JsonRpcRequestCancelled(f"{self.source}: profile cancelled")
        if failed.error.kind == "timeout":
            failed = failed.with_note(timeout_advice(self.options.timeout))
        return RequestFailed(f"{self.source}: profile failed: {failed.error.headline}")
