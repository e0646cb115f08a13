"""The language server: registers features and commands, nothing else.

The work behind them lives in :mod:`visualizer` (runs, pages, notifications), the code
lenses in :mod:`lenses`, settings in :mod:`options`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from lsprotocol import types
from pygls.lsp.server import LanguageServer

from etviz_lsp import __version__
from etviz_lsp.graph import inputs
from etviz_lsp.lsp import capabilities, editor_watch, lenses, logs, navigation, options
from etviz_lsp.lsp.visualizer import RequestFailed, Visualizer

log = logging.getLogger(__name__)

VISUALIZE = "etviz.server.visualize"
REFRESH = "etviz.server.refresh"
STOP = "etviz.server.stop"
NODE_AT = "etviz.server.nodeAt"
SOURCE_OF = "etviz.server.sourceOf"
SHOW_IN_GRAPH = "etviz.server.showInGraph"


class EtvizServer(LanguageServer):
    def __init__(self) -> None:
        super().__init__("etviz-lsp", __version__, protocol_cls=capabilities.EtvizProtocol)
        self.options = options.InitOptions()
        self._visualizer: Visualizer | None = None
        self._editor_watch: asyncio.Task[None] | None = None
        self.command_line_client_pid: int | None = None

    @property
    def visualizer(self) -> Visualizer:
        if self._visualizer is None:  # before initialize: settings unknown
            self._visualizer = Visualizer(self, self.options)
        return self._visualizer

    def stop_everything(self) -> None:
        """Blocking: stop every process this server started (idempotent)."""
        if self._visualizer is not None:
            self._visualizer.close_now()


def create_server() -> EtvizServer:
    server = EtvizServer()

    @server.feature(types.INITIALIZE)
    def initialize(ls: EtvizServer, params: types.InitializeParams) -> None:
        ls.options = options.parse(params.initialization_options)
        for warning in ls.options.warnings:
            log.warning("%s", warning)
        editor_pid = params.process_id or ls.command_line_client_pid
        if ls.options.client_pid is None and editor_pid:
            ls.options = _with_client_pid(ls.options, editor_pid)

    @server.feature(types.INITIALIZED)
    def initialized(ls: EtvizServer, params: types.InitializedParams) -> None:
        loop = asyncio.get_running_loop()
        logs.forward_to_client(ls, loop)
        _stop_on_terminate(ls, loop)
        ls.visualizer.start(loop)
        pid = ls.options.client_pid
        if pid is not None:
            ls._editor_watch = loop.create_task(editor_watch.watch_editor(pid, _editor_died(ls)))
        trust = "trusted" if ls.options.trusted else "NOT trusted: scripts will not run"
        log.info("etviz-lsp %s ready (workspace %s)", __version__, trust)

    @server.feature(types.SHUTDOWN)
    async def shutdown(ls: EtvizServer, params: None) -> None:
        if ls._editor_watch is not None:
            ls._editor_watch.cancel()
        if ls._visualizer is not None:
            await ls._visualizer.close()

    @server.feature(types.EXIT)
    def exit_(ls: EtvizServer, params: None) -> None:
        logs.stop_forwarding()
        ls.stop_everything()

    @server.feature(types.WORKSPACE_DID_CHANGE_CONFIGURATION)
    def did_change_configuration(
        ls: EtvizServer, params: types.DidChangeConfigurationParams
    ) -> None:
        """The editor's etviz settings changed: apply timeout / auto-refresh / port live."""
        settings = params.settings.get("etviz") if isinstance(params.settings, dict) else None
        if settings is None:
            return
        ls.options = options.update(ls.options, settings)
        for warning in ls.options.warnings:
            log.warning("%s", warning)
        ls.visualizer.reconfigure(ls.options)

    @server.feature(types.TEXT_DOCUMENT_DID_OPEN)
    def did_open(ls: EtvizServer, params: types.DidOpenTextDocumentParams) -> None:
        """Registered so the client syncs documents (the lenses read their text)."""

    @server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(ls: EtvizServer, params: types.DidCloseTextDocumentParams) -> None:
        """Registered for document sync; a closed file stays visualized and watched."""

    @server.feature(types.TEXT_DOCUMENT_DID_SAVE)
    def did_save(ls: EtvizServer, params: types.DidSaveTextDocumentParams) -> None:
        ls.visualizer.saved(params.text_document.uri)

    @server.feature(types.TEXT_DOCUMENT_CODE_LENS)
    def code_lens(ls: EtvizServer, params: types.CodeLensParams) -> list[types.CodeLens]:
        uri = params.text_document.uri
        if not inputs.is_script(uri):
            return []
        document = ls.workspace.get_text_document(uri)
        visualize = [
            _lens(call.line, call.column, "Visualize", VISUALIZE, [uri])
            for call in lenses.find_export_calls(document.source)
        ]
        path = navigation.path_of(uri)
        counts = ls.visualizer.navigator.line_counts(path) if path is not None else {}
        lines = document.lines
        show = [
            _lens(line, _indent(lines, line), navigation.lens_title(count), SHOW_IN_GRAPH,
                  [uri, line])
            for line, (_graph, count) in counts.items()
        ]
        return sorted(visualize + show, key=lambda lens: lens.range.start.line)

    @server.feature(types.TEXT_DOCUMENT_HOVER)
    def hover(ls: EtvizServer, params: types.HoverParams) -> types.Hover | None:
        path = navigation.path_of(params.text_document.uri)
        if path is None:
            return None
        text = ls.visualizer.navigator.hover_text(path, params.position.line)
        if text is None:
            return None
        return types.Hover(types.MarkupContent(types.MarkupKind.Markdown, text))

    @server.command(VISUALIZE)
    async def visualize(ls: EtvizServer, *args: Any) -> dict[str, Any]:
        return await ls.visualizer.visualize(
            args[0] if args else None, args[1] if len(args) > 1 else None
        )

    @server.command(REFRESH)
    async def refresh(ls: EtvizServer, *args: Any) -> dict[str, Any]:
        return await ls.visualizer.refresh(args[0] if args else None)

    @server.command(STOP)
    async def stop(ls: EtvizServer, *args: Any) -> dict[str, Any]:
        return await ls.visualizer.stop()

    @server.command(NODE_AT)
    def node_at(ls: EtvizServer, *args: Any) -> dict[str, Any]:
        path, line, graph_id = _position_args(NODE_AT, args)
        return ls.visualizer.navigator.node_at(path, line, graph_id)

    @server.command(SHOW_IN_GRAPH)
    def show_in_graph(ls: EtvizServer, *args: Any) -> dict[str, Any]:
        path, line, graph_id = _position_args(SHOW_IN_GRAPH, args)
        answer = ls.visualizer.navigator.show_in_graph(path, line, graph_id)
        if answer["nodeIds"]:
            selection = ("source", "graphId", "nodeIds", "namespaces", "url")
            ls.protocol.notify(
                navigation.SELECT_NODES, {k: answer[k] for k in selection if k in answer}
            )
        return answer

    @server.command(SOURCE_OF)
    def source_of(ls: EtvizServer, *args: Any) -> dict[str, Any]:
        if len(args) < 2 or not isinstance(args[1], str) or not isinstance(args[0], str | None):
            raise RequestFailed(f"{SOURCE_OF}: expected [graphId, nodeId, sourceUri?], got {args}")
        source = navigation.path_of(args[2]) if len(args) > 2 else None
        return ls.visualizer.navigator.source_of(args[0] or None, args[1], source)

    return server


def _position_args(command: str, args: tuple[Any, ...]) -> tuple[Path, int, str | None]:
    """``[uri, line, graphId?]`` -> (resolved path, 0-based line, graph id)."""
    path = navigation.path_of(args[0]) if args else None
    line = args[1] if len(args) > 1 else None
    graph_id = args[2] if len(args) > 2 and isinstance(args[2], str) and args[2] else None
    if path is None or not isinstance(line, int) or isinstance(line, bool) or line < 0:
        raise RequestFailed(f"{command}: expected [fileUri, line (0-based), graphId?], got {args}")
    return path, line, graph_id


def _lens(line: int, column: int, title: str, command: str, arguments: list[Any]) -> types.CodeLens:
    position = types.Position(line, column)
    return types.CodeLens(
        range=types.Range(position, position),
        command=types.Command(title=title, command=command, arguments=arguments),
    )


def _indent(lines: Sequence[str], line: int) -> int:
    """Column of the line's first non-blank character (0 past the end: file changed)."""
    if line >= len(lines):
        return 0
    text = lines[line]
    return len(text) - len(text.lstrip())


def _with_client_pid(opts: options.InitOptions, pid: int) -> options.InitOptions:
    return replace(opts, client_pid=pid)


def _editor_died(ls: EtvizServer) -> Callable[[], None]:
    def on_death() -> None:
        ls.stop_everything()
        # The reader thread is blocked on stdin; nothing else would end the process.
        os._exit(0)

    return on_death


def run_stdio(verbose: bool = False, client_pid: int | None = None) -> int:
    logs.setup_stderr(verbose)
    server = create_server()
    server.command_line_client_pid = client_pid
    try:
        server.start_io()
    finally:
        server.stop_everything()
    return 0


def _stop_on_terminate(server: EtvizServer, loop: asyncio.AbstractEventLoop) -> None:
    """An editor that gives up waiting for ``exit`` sends SIGTERM: the worker and the
    Model Explorer server live in sessions of their own and would survive us. Handled on
    the loop (not in a raw signal handler), so it never lands inside ``Popen`` while the
    worker is being started."""

    def terminated(signum: int) -> None:
        log.warning("terminated by signal %d: stopping", signum)
        server.stop_everything()
        os._exit(0)

    for signum in (signal.SIGTERM, signal.SIGHUP):
        loop.add_signal_handler(signum, terminated, signum)
