"""``etviz.server.profile``: "Profile on This Machine" for a visualized export script.

The run's child kept the ExecuTorch program it made beside the graph JSON in the cache
(``worker/profile_run.py``; ``etviz.profile`` is not ``off``); this command has the warm
worker fork a fresh child that runs it with ETDump on, ``etviz.profileIterations`` times,
with the example inputs the script gave ``torch.export.export``. The child adds the
``.pte``'s graphs (the ``program`` stage) to the collection and writes the latency
node-data files after it, so the page URL built then loads them (``overlay_files``) and
the panel gets a fresh ``etviz/graphReady``. Progress and cancel as for a run; one run or
profile at a time (the visualizer's run lock). Never imports torch: the profile runs in
the worker's child.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from pygls.exceptions import JsonRpcRequestCancelled

from etviz_lsp.lsp.commands import RequestFailed
from etviz_lsp.lsp.options import timeout_advice
from etviz_lsp.lsp.progress import RunProgress
from etviz_lsp.worker import ScriptFailed
from etviz_lsp.worker.profile_run import NOTHING_TO_PROFILE, kept_folder, summary_line

if TYPE_CHECKING:
    from pathlib import Path

    from etviz_lsp.lsp.visualizer import Visualizer

log = logging.getLogger(__name__)


async def profile(visualizer: Visualizer, source: Path) -> dict[str, Any]:
    """Profile ``source``'s last ExecuTorch program; answers its graphs (with the node data
    in the URL) and the profile's summary. A file not run yet in this session runs first."""
    options = visualizer.options
    if options.profile == "off":
        raise RequestFailed(f"{source}: profiling is off (setting etviz.profile)")
    if visualizer.shown(source) is None:
        await visualizer.visualize(str(source.as_uri()))
    graph_json = visualizer.explorer.graph_file_for(source)
    if not (kept_folder(graph_json) / "program.pte").is_file():
        raise RequestFailed(f"{source}: nothing to profile: {NOTHING_TO_PROFILE}")
    async with visualizer.run_lock:
        progress = await RunProgress.begin(
            visualizer.server, f"etviz: profile {source.name}", visualizer.worker.cancel
        )
        try:
            result = await asyncio.to_thread(
                visualizer.worker.profile_kept, graph_json,
                iterations=options.profile_iterations, timeout=options.timeout,
                on_progress=progress.report_threadsafe,
            )
            progress.report("refreshing")
            shown = await asyncio.to_thread(visualizer.graphs_of, source, result)
        except ScriptFailed as failed:
            cancelled = failed.error.kind == "cancelled"
            progress.end("cancelled" if cancelled else f"failed: {failed.error.headline}")
            if cancelled:
                raise JsonRpcRequestCancelled(f"{source}: profile cancelled") from None
            if failed.error.kind == "timeout":
                failed = failed.with_note(timeout_advice(options.timeout))
            raise RequestFailed(f"{source}: profile failed: {failed.error.headline}") from None
        except BaseException as error:
            progress.end(f"failed: {error}")
            raise
        progress.end(summary_line(result.profile))
    visualizer.show(shown)
    log.info("profiled %s: %s", source.name, summary_line(result.profile))
    return shown.payload() | {"stale": False, "profile": result.profile,
                              "summary": summary_line(result.profile)}
