"""What the commands and events do: run a file in the worker, show it in Model Explorer,
tell the client (``etviz/graphReady``, diagnostics, progress), keep it current on save.

One warm worker runs one file at a time (runs queue on ``_one_run``); per file, ``Jobs``
debounces saves and lets the newest win. The last good graph of each file is kept: when a
later run fails the client hears ``stale: true`` with the error, and the page keeps showing
the good graph (its JSON is only replaced by a successful run, atomically). While a run
goes, each stage it makes is sent at once (``stages``); the stages a failed run finished
stay viewable, marked partial (``partial`` in its graphReady; shown when the file has no
good graph yet). A run stopped at its time limit says which setting to raise. A file runs
with the launch configuration the client gave for it (``run_configs``); saving a visualized
file or any workspace file its run imported (``imported_files``) re-runs it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pygls.exceptions import JsonRpcRequestCancelled
from pygls.lsp.server import LanguageServer

from etviz_lsp import graph_files
from etviz_lsp.errors import EtvizError
from etviz_lsp.graph import inputs
from etviz_lsp.lsp import prestart, profile, run_configs, source_map
from etviz_lsp.lsp.commands import RequestFailed
from etviz_lsp.lsp.diagnostics import Diagnostics
from etviz_lsp.lsp.explorer_server import ExplorerServer
from etviz_lsp.lsp.imported_files import ImportedFiles
from etviz_lsp.lsp.jobs import JobCancelled, Jobs, Ticket
from etviz_lsp.lsp.navigation import Mapped, Navigator
from etviz_lsp.lsp.numeric_diagnostics import NumericDiagnostics
from etviz_lsp.lsp.options import InitOptions, timeout_advice
from etviz_lsp.lsp.paths import path_of, uri_of
from etviz_lsp.lsp.progress import RunProgress
from etviz_lsp.lsp.stages import RunStages, partial_view
from etviz_lsp.lsp.watch import FileWatcher
from etviz_lsp.worker import (
    GraphInfo,
    RunResult,
    RunTarget,
    ScriptError,
    ScriptFailed,
    WarmWorker,
)

log = logging.getLogger(__name__)

GRAPH_READY = "etviz/graphReady"
# Quiet time before a save is run: an editor's save plus the watcher's events, or a burst
# of saves, become one run.
DEBOUNCE_SECONDS = 0.4


@dataclass(frozen=True, slots=True)
class VisualizedGraphs:
    """The graphs one visualized file made, as on screen: what ``visualize`` answers and
    ``graphReady`` carries."""

    source: Path
    url: str
    graphs: tuple[GraphInfo, ...]
    elapsed_ms: int
    # navigation: the graph JSON and its line <-> node map, from the graph's manifest (not
    # sent to the client)
    graph_file: Path = field(default=Path(), compare=False, repr=False)
    source_map: source_map.SourceMap = field(
        default_factory=source_map.SourceMap, compare=False, repr=False
    )
    imported: tuple[Path, ...] = field(default=(), compare=False, repr=False)
    numeric: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)
    # A profile made with the run (etviz.profile onSave): its summary, or why it failed
    profile: dict[str, object] | None = field(default=None, compare=False, repr=False)
    profile_error: str = field(default="", compare=False, repr=False)
    # The run's ops left on the CPU, with the partitioners' reasons (RunResult.not_delegated)
    not_delegated: list[dict[str, Any]] = field(default_factory=list, compare=False, repr=False)
    # The memory timeline beside the graph JSON (its manifest's), for the editor's
    # "Show Memory Timeline" command; "" when the run made no memory plan
    memory_svg: str = field(default="", compare=False, repr=False)

    def payload(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "source": uri_of(self.source),
            "url": self.url,
            "graphs": [{"id": g.id, "nodeCount": g.node_count} for g in self.graphs],
            "elapsedMs": self.elapsed_ms,
            "inProgress": False,
        }
        if self.profile is not None:
            out["profile"] = self.profile
        if self.profile_error:
            out["profileError"] = self.profile_error
        if self.memory_svg:
            out["memorySvg"] = self.memory_svg
        return out


def _memory_svg(manifest: graph_files.Manifest | None) -> str:
    """The memory timeline a graph's manifest lists, as a path the client reads ("": none)."""
    found = manifest.file(graph_files.MEMORY_SVG) if manifest is not None else None
    return str(found) if found is not None else ""


class Visualizer:
    def __init__(self, server: LanguageServer, options: InitOptions) -> None:
        self._server = server
        self.options = options
        mode = None if options.worker_mode == "auto" else options.worker_mode
        self.worker = WarmWorker(python=options.python_path, log=_worker_log, mode=mode)
        self.prestart = prestart.Prestart(self.worker)
        self.explorer = ExplorerServer(options.port)
        self.navigator = Navigator(self.explorer.known_url_for)
        self.diagnostics = Diagnostics(server)
        self.numeric = NumericDiagnostics(server)
        self.jobs: Jobs[Path, VisualizedGraphs] = Jobs(
            self._run, delay=DEBOUNCE_SECONDS, interrupt=self._interrupt, on_outcome=self._report
        )
        self.watcher = FileWatcher(self._changed_on_disk, poll_interval=options.poll_interval)
        self.imported = ImportedFiles(self.watcher, lambda path: path in self._visualized)
        self.imported.watch(options.auto_refresh)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._one_run = asyncio.Lock()
        self._running_lock = threading.Lock()
        self._running: Ticket[Path] | None = None
        self._shown: dict[Path, VisualizedGraphs] = {}
        self._visualized: set[Path] = set()
        self._run_targets: dict[Path, RunTarget] = {}  # launch configurations, per file
        self._closed = False

    # -- life cycle -----------------------------------------------------------------

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        root = self._server.workspace.root_path  # a client that sent no folders
        roots = self._workspace_roots() or ([Path(root)] if root else [])
        self.prestart.schedule(self.options, roots, loop)

    async def close(self) -> None:
        """Shutdown: stop runs, the watcher, the worker, the Model Explorer server."""
        if self._closed:
            return
        self._closed = True
        await self.jobs.close()
        await asyncio.to_thread(self.close_now)
        await self.prestart.finished()

    def close_now(self) -> None:
        """Blocking stop of every process we started (exit, or the editor died).

        The worker and the Model Explorer server stop in parallel: a worker still busy
        importing answers no shutdown request, and its close waits a few seconds before
        killing it.
        """
        self._closed = True
        self.prestart.close()  # before the worker's close: no early start after it
        self.watcher.close()
        explorer = threading.Thread(target=self._stop_explorer, name="etviz-stop-explorer")
        explorer.start()
        try:
            self.worker.close()
        except Exception:
            log.exception("stopping the worker failed")
        explorer.join()

    def _stop_explorer(self) -> None:
        try:
            if self.explorer.stop():
                log.info("stopped the Model Explorer server")
        except Exception:
            log.exception("stopping the Model Explorer server failed")

    # -- commands -------------------------------------------------------------------

    async def visualize(self, uri: object, how: object = None) -> dict[str, Any]:
        """Run ``uri`` and answer its graph. With ``{"showLast": true}`` (a restored
        window) the graph it had last time is answered at once, if its JSON is still in
        the cache, and the fresh one follows as ``etviz/graphReady``. ``{"run": {...}}``
        runs it with a launch configuration (``run_configs``), and so do its re-runs;
        ``{"run": null}`` goes back to running the file as it is."""
        source = _source_path(uri)
        self._check_trust(source)
        if isinstance(how, dict) and "run" in how:
            self._use_run(source, how["run"])
        self._remember(source)
        if isinstance(how, dict) and how.get("showLast") is True:
            last = await asyncio.to_thread(self._last_graph, source)
            if last is not None:
                self._shown[source] = last  # the fresh run reloads the page showing it
                self.navigator.graph_shown(Mapped(source, last.graph_file, last.source_map))
                self.jobs.schedule(source, delay=0)
                return last.payload() | {"stale": False, "last": True}
        try:
            shown = await self.jobs.schedule(source, delay=0)
        except JobCancelled:
            raise JsonRpcRequestCancelled(f"{source}: cancelled") from None
        except EtvizError as error:
            raise RequestFailed(str(error)) from None
        return shown.payload()

    async def refresh(self, uri: object = None) -> dict[str, Any]:
        """Re-run one visualized file (or all of them) now."""
        sources = [_source_path(uri)] if uri else sorted(self._visualized)
        for source in sources:
            self._check_trust(source)
            self._remember(source)
        results = await asyncio.gather(
            *(self.jobs.schedule(s, delay=0) for s in sources), return_exceptions=True
        )
        return {
            "refreshed": [r.payload() for r in results if isinstance(r, VisualizedGraphs)],
            "errors": [str(r) for r in results if isinstance(r, BaseException)],
        }

    async def profile(self, uri: object) -> dict[str, Any]:
        """"Profile on This Machine": the file's last ExecuTorch program (lsp/profile.py).
        A file not run yet in this session runs first."""
        source = _source_path(uri)
        self._check_trust(source)
        if self.options.profile != "off" and source not in self._shown:
            await self.visualize(str(source.as_uri()))
        job = profile.ProfileJob(
            self._server, self.worker, self._one_run, self.options, source,
            self.explorer.graph_file_for(source),
            lambda result: self._profiled_graphs(source, result),
        )
        shown, result = await job.run()
        self._show(shown)
        self._publish_run_diagnostics(shown)  # with the profile's runtime numeric gap
        summary = profile.summary_line(result.profile)
        return shown.payload() | {"stale": False, "profile": result.profile, "summary": summary}

    def _profiled_graphs(self, source: Path, result: RunResult) -> VisualizedGraphs:
        """Blocking: the graphs a profile rewrote, as shown (page URL with its node data,
        navigation map), open pages reloaded."""
        mapped = self._source_map(source, result.manifest)
        earlier = self._shown.get(source)
        shown = VisualizedGraphs(
            source, self._page_url(result), tuple(result.graphs),
            round(result.elapsed * 1000), result.output, mapped,
            imported=earlier.imported if earlier is not None else (),
            numeric=earlier.numeric if earlier is not None else {},  # the run's, still shown
            not_delegated=earlier.not_delegated if earlier is not None else [],
            profile=result.profile, memory_svg=_memory_svg(result.manifest),
        )
        if earlier is not None:
            self.explorer.reload()
        return shown

    def _page_url(self, result: RunResult) -> str:
        """Blocking: the run's page; a profiled run's opens on its lowered stage."""
        view = profile.lowered_view([g.id for g in result.graphs]) if result.profile else None
        return self.explorer.url_for(result.output, view)

    def _show(self, shown: VisualizedGraphs) -> None:
        """A new view of a file's graphs (a profile): kept, mapped, told to the client."""
        self._shown[shown.source] = shown
        self.navigator.graph_shown(Mapped(shown.source, shown.graph_file, shown.source_map))
        self._notify(shown.payload() | {"stale": False})
        self._refresh_lenses()

    async def stop(self) -> dict[str, Any]:
        """Cancel runs and stop the Model Explorer server (the next visualize restarts it)."""
        for source in list(self._visualized):
            self.jobs.cancel(source)
        stopped = await asyncio.to_thread(self.explorer.stop, even_if_shared=True)
        return {"stopped": stopped}

    def reconfigure(self, options: InitOptions) -> None:
        """New live settings (timeout, auto-refresh, port of a newly started server)."""
        was_watching = self.options.auto_refresh
        cpu_was_shown = self.options.not_delegated_diagnostics
        self.options = options
        self.explorer.use_port(options.port)
        if options.not_delegated_diagnostics != cpu_was_shown:
            for shown in self._shown.values():  # on or off now, not at the next run
                self._publish_run_diagnostics(shown)
        if options.auto_refresh and not was_watching:
            for source in self._visualized:
                self.watcher.watch(source)
        elif was_watching and not options.auto_refresh:
            for source in self._visualized:
                self.watcher.unwatch(source)
        self.imported.watch(options.auto_refresh)
        log.info(
            "settings: timeout %gs, auto-refresh %s, port %s", options.timeout,
            "on" if options.auto_refresh else "off", options.port or "any free",
        )

    def _publish_run_diagnostics(self, shown: VisualizedGraphs) -> None:
        """A good run's Information diagnostics: quantization error, ops left on the CPU."""
        cpu = shown.not_delegated if self.options.not_delegated_diagnostics else []
        gap = (shown.profile or {}).get("numeric_gap")
        worst = gap.get("worst") if isinstance(gap, dict) else None
        self.numeric.publish(shown.source, shown.numeric, shown.source_map, cpu,
                             worst if isinstance(worst, list) else None)

    def _use_run(self, source: Path, run: object) -> None:
        """From now on ``source`` runs with ``run`` (None: as it is)."""
        if run is None:
            self._run_targets.pop(source, None)
            return
        target = run_configs.from_client(run)
        if target != self._run_targets.get(source):
            log.info("%s runs as: python %s", source.name, run_configs.label(target))
        self._run_targets[source] = target

    def _remember(self, source: Path) -> None:
        """A file the user asked to see: re-run it when it changes (if autoRefresh)."""
        self._visualized.add(source)
        if self.options.auto_refresh:
            self.watcher.watch(source)

    # -- events ---------------------------------------------------------------------

    def saved(self, uri: str) -> None:
        path = path_of(uri)
        if path is not None:
            self._changed(path)

    def _changed_on_disk(self, path: Path) -> None:
        """On watchdog's thread."""
        if self._loop is not None and not self._closed:
            self._loop.call_soon_threadsafe(self._changed, path)

    def _changed(self, path: Path) -> None:
        """A visualized file, or a workspace file its last run imported, changed."""
        if self._closed or not self.options.auto_refresh:
            return
        if not path.exists():  # mid atomic save, or deleted: the next event brings it back
            return
        sources = {path} & self._visualized
        sources.update(s for s in self.imported.sources_using(path) if s in self._visualized)
        for source in sorted(sources):
            log.debug("%s changed: re-running %s", path.name, source.name)
            self.jobs.schedule(source)

    # -- one run --------------------------------------------------------------------

    async def _run(self, ticket: Ticket[Path]) -> VisualizedGraphs:
        source = ticket.key
        async with self._one_run:
            if ticket.cancelled:
                raise _cancelled(source)
            progress = await RunProgress.begin(
                self._server, f"etviz: {source.name}", lambda: self.jobs.cancel(source)
            )
            page_up = asyncio.ensure_future(asyncio.to_thread(self.explorer.ensure))
            page_up.add_done_callback(_retrieve)  # a failed start is reported below, once
            try:
                result = await asyncio.to_thread(
                    self._run_in_worker, ticket, progress.report_threadsafe
                )
                if ticket.cancelled:
                    raise _cancelled(source)
                progress.report("refreshing")
                mapped = await asyncio.to_thread(self._source_map, source, result.manifest)
                await page_up
                shown = VisualizedGraphs(
                    source, self._page_url(result), tuple(result.graphs),
                    round(result.elapsed * 1000), result.output, mapped,
                    tuple(result.imported_files), result.numeric, result.profile,
                    result.profile_error, result.not_delegated, _memory_svg(result.manifest),
                )
                if result.profile_error:
                    log.warning("%s: profile: %s", source.name, result.profile_error)
                if source in self._shown:
                    await asyncio.to_thread(self.explorer.reload)
            except BaseException as error:
                progress.end(_end_message(error))
                raise
            progress.end(f"{sum(g.node_count for g in shown.graphs)} nodes")
            return shown

    def _last_graph(self, source: Path) -> VisualizedGraphs | None:
        """What ``source`` showed when last run (its graph JSON in the cache, described by
        its manifest), or None."""
        graph_json = self.explorer.graph_file_for(source)
        if not graph_json.is_file():
            return None
        try:
            manifest = graph_files.read(graph_json)
        except EtvizError as error:
            log.warning("%s", error)
            return None
        if manifest is None or not manifest.graphs:  # none, or empty: run it instead
            return None
        mapped = self._source_map(source, manifest)
        url = self.explorer.url_for(graph_json)
        return VisualizedGraphs(source, url, manifest.graphs, 0, graph_json, mapped,
                                memory_svg=_memory_svg(manifest))

    def _run_in_worker(self, ticket: Ticket[Path], on_progress: Callable[[str], None]) -> RunResult:
        source = ticket.key
        with self._running_lock:
            if ticket.cancelled:
                raise _cancelled(source)
            self._running = ticket
        target = self._run_targets.get(source)
        stages = RunStages(source, self.explorer, self._send_stage(ticket),
                           lambda: not ticket.cancelled)
        try:
            output = self.explorer.graph_file_for(source)
            return self.worker.run(
                target or source, output, timeout=self.options.timeout,
                cwd=source.parent, allow_pickle=self.options.allow_pickle,
                on_progress=on_progress, on_stage=stages,
                partial_output=graph_files.partial_path(output),
                numeric=self.options.numeric != "off",
                # Profile on this machine (lsp/profile.py): keep the program for the command;
                # with onSave profile it in the run too.
                keep_program=self.options.profile != "off",
                profile_iterations=(
                    self.options.profile_iterations if self.options.profile == "onSave" else 0
                ),
                numeric_gap=self.options.profile_numeric_gap and self.options.profile != "off",
            )
        except ScriptFailed as failed:
            stages.failed(failed.partial)
            if failed.error.kind == "timeout":
                raise failed.with_note(timeout_advice(self.options.timeout)) from None
            raise
        except OSError as error:
            raise EtvizError(str(source), f"cannot write the graph: {error}") from error
        finally:
            with self._running_lock:
                self._running = None

    def _send_stage(self, ticket: Ticket[Path]) -> Callable[[dict[str, Any]], None]:
        """A stage's graphReady, from the worker's thread to the loop (if still wanted)."""

        def on_loop(payload: dict[str, Any]) -> None:
            if not ticket.cancelled and not self._closed:
                self._notify(payload)

        def send(payload: dict[str, Any]) -> None:
            if self._loop is not None:
                self._loop.call_soon_threadsafe(on_loop, payload)

        return send

    def _source_map(
        self, source: Path, manifest: graph_files.Manifest | None
    ) -> source_map.SourceMap:
        """The line <-> node map of a fresh graph, from its manifest; a map that cannot be
        made costs only navigation, never the graph."""
        if manifest is None:
            log.warning("%s: no navigation map: the run listed no graph files", source)
            return source_map.SourceMap()
        roots = [source.parent, *self._workspace_roots()]
        try:
            return source_map.from_manifest(manifest, roots)
        except (OSError, ValueError, TypeError, AttributeError) as error:
            log.warning("%s: no navigation map: %s", manifest.graph_json, error)
            return source_map.SourceMap()

    def _roots_of(self, source: Path) -> list[Path]:
        """Where a run's imported files count as the user's: the workspace (the file's
        folder when the client opened none)."""
        return self._workspace_roots() or [source.parent]

    def _workspace_roots(self) -> list[Path]:
        roots = []
        for folder in self._server.workspace.folders.values():
            path = path_of(folder.uri)
            if path is not None:
                roots.append(path)
        return roots

    def _interrupt(self, ticket: Ticket[Path]) -> None:
        """A newer save or a cancel: kill the child running this ticket (if it is running)."""
        with self._running_lock:
            if self._running is ticket:
                log.info("cancelling the run of %s", ticket.key.name)
                self.worker.cancel()

    # -- telling the client ---------------------------------------------------------

    def _report(self, source: Path, outcome: VisualizedGraphs | Exception) -> None:
        if isinstance(outcome, VisualizedGraphs):
            self._shown[source] = outcome
            self.navigator.graph_shown(Mapped(source, outcome.graph_file, outcome.source_map))
            self.diagnostics.clear(source)
            self._publish_run_diagnostics(outcome)
            self.imported.update(source, outcome.imported, self._roots_of(source))
            self._notify(outcome.payload() | {"stale": False})
            self._refresh_lenses()
            return
        if isinstance(outcome, ScriptFailed) and outcome.error.kind == "cancelled":
            return
        if isinstance(outcome, ScriptFailed):
            self.numeric.clear(source)  # before the error: they may share a file
            self.diagnostics.publish(source, outcome.error)
            # What it imported before failing counts too (fixing the broken model re-runs);
            # what it did not reach stays from the last good run.
            imported = [*self.imported.files_of(source), *outcome.imported_files]
            self.imported.update(source, imported, self._roots_of(source))
        elif not isinstance(outcome, EtvizError):
            log.error("run of %s failed", source, exc_info=outcome)
        log.warning("%s", outcome)
        self._notify_failure(source, outcome)

    def _notify_failure(self, source: Path, outcome: Exception) -> None:
        """The last good graph stays the file's graph (``stale``); the stages the failed run
        finished ride along as ``partial``, and are what is shown when there is no good one."""
        partial = outcome.partial if isinstance(outcome, ScriptFailed) else None
        kept = partial_view(self.explorer, partial) if partial is not None else None
        extra = {"error": str(outcome), **({"partial": kept} if kept is not None else {})}
        last_good = self._shown.get(source)
        if last_good is not None:
            self._notify(last_good.payload() | {"stale": True, **extra})
        elif kept is not None:
            self._notify({
                "source": uri_of(source), "url": kept["url"], "graphs": kept["graphs"],
                "elapsedMs": 0, "stale": False, "inProgress": False, **extra,
            })

    def _refresh_lenses(self) -> None:
        """"Show in Graph" lenses follow the new map (if the client can be asked to)."""
        workspace = self._server.client_capabilities.workspace
        code_lens = workspace.code_lens if workspace is not None else None
        if code_lens is not None and code_lens.refresh_support:
            self._server.workspace_code_lens_refresh(None).add_done_callback(_log_failure)

    def _notify(self, payload: dict[str, Any]) -> None:
        self._server.protocol.notify(GRAPH_READY, payload)

    def _check_trust(self, source: Path) -> None:
        kind = inputs.kind_of(source)
        if kind is not None and kind.needs_trust and not self.options.trusted:
            raise RequestFailed(
                f"{source}: not run: the workspace is not trusted (initializationOptions "
                "'trusted' is not true); trust the workspace to run export scripts"
            )


def _source_path(uri: object) -> Path:
    if not isinstance(uri, str) or not uri:
        raise RequestFailed(f"expected a file URI, got {uri!r}")
    path = path_of(uri)
    if path is None:
        raise RequestFailed(f"{uri}: not a file URI")
    if inputs.kind_of(path) is None:
        raise RequestFailed(f"{path}: {inputs.unsupported(path)}")
    if path.is_dir():
        raise RequestFailed(f"{path}: is a directory, not a file")
    if not path.is_file():
        raise RequestFailed(f"{path}: no such file")
    return path


def _cancelled(source: Path) -> ScriptFailed:
    return ScriptFailed(ScriptError("cancelled", str(source), message="cancelled"))


def _end_message(error: BaseException) -> str:
    if isinstance(error, ScriptFailed) and error.error.kind == "cancelled":
        return "cancelled"
    return f"failed: {error}"


def _retrieve(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()


def _log_failure(future: concurrent.futures.Future[Any]) -> None:
    if not future.cancelled() and future.exception() is not None:
        log.debug("the client refused a request: %s", future.exception())


def _worker_log(text: str) -> None:
    logging.getLogger("etviz_lsp.worker.output").info("%s", text.rstrip())
