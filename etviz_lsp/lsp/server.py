"""The language server: registers features and commands, nothing else.

The work behind them lives in :mod:`visualizer` (runs, pages, notifications), the code
lenses in :mod:`lenses`, code <-> graph in :mod:`navigation`, settings in :mod:`options`,
the process's life (editor gone, SIGTERM) in :mod:`editor_watch`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from lsprotocol import types
from pygls.lsp.server import LanguageServer

from etviz_lsp import __version__
from etviz_lsp.graph import inputs
from etviz_lsp.lsp import (
    capabilities,
    editor_watch,
    lenses,
    logs,
    navigation,
    options,
    paths,
    versions,
)
from etviz_lsp.lsp.commands import (
    COMPARE,
    NODE_AT,
    PROFILE,
    REFRESH,
    SHOW_IN_GRAPH,
    SOURCE_OF,
    STOP,
    VISUALIZE,
)
from etviz_lsp.lsp.compare import compare_answer
from etviz_lsp.lsp.visualizer import Visualizer

log = logging.getLogger(__name__)


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


# Each handler is small and hands the work to the module that owns it; `create_server`
# registers them from the two tables at the end (pygls passes the server as `ls`).


def initialize(ls: EtvizServer, params: types.InitializeParams) -> None:
    ls.options = options.parse(params.initialization_options)
    for warning in ls.options.warnings:
        log.warning("%s", warning)
    other_build = versions.mismatch(ls.options.extension_version)
    if other_build is not None:
        log.warning("%s", other_build)  # the extension says it to the user
    editor_pid = params.process_id or ls.command_line_client_pid
    if ls.options.client_pid is None and editor_pid:
        ls.options = replace(ls.options, client_pid=editor_pid)


def initialized(ls: EtvizServer, params: types.InitializedParams) -> None:
    loop = asyncio.get_running_loop()
    logs.forward_to_client(ls, loop)
    editor_watch.stop_on_terminate(ls.stop_everything, loop)
    ls.visualizer.start(loop)
    pid = ls.options.client_pid
    if pid is not None:
        ls._editor_watch = loop.create_task(
            editor_watch.watch_editor(pid, editor_watch.exit_after(ls.stop_everything))
        )
    trust = "trusted" if ls.options.trusted else "NOT trusted: scripts will not run"
    pickle = "allowed (etviz.allowPickle)" if ls.options.allow_pickle else "never"
    log.info("etviz-lsp %s ready (workspace %s; unpickling %s)", __version__, trust, pickle)


async def shutdown(ls: EtvizServer, params: None) -> None:
    if ls._editor_watch is not None:
        ls._editor_watch.cancel()
    if ls._visualizer is not None:
        await ls._visualizer.close()


def exit_(ls: EtvizServer, params: None) -> None:
    logs.stop_forwarding()
    ls.stop_everything()


def did_change_configuration(ls: EtvizServer, params: types.DidChangeConfigurationParams) -> None:
    """The editor's etviz settings changed: apply timeout / auto-refresh / port live."""
    settings = params.settings.get("etviz") if isinstance(params.settings, dict) else None
    if settings is None:
        return
    ls.options = options.update(ls.options, settings)
    for warning in ls.options.warnings:
        log.warning("%s", warning)
    ls.visualizer.reconfigure(ls.options)


def did_open(ls: EtvizServer, params: types.DidOpenTextDocumentParams) -> None:
    """Registered so the client syncs documents (the lenses read their text)."""


def did_close(ls: EtvizServer, params: types.DidCloseTextDocumentParams) -> None:
    """Registered for document sync; a closed file stays visualized and watched."""


def did_save(ls: EtvizServer, params: types.DidSaveTextDocumentParams) -> None:
    ls.visualizer.saved(params.text_document.uri)


def code_lens(ls: EtvizServer, params: types.CodeLensParams) -> list[types.CodeLens]:
    uri = params.text_document.uri
    if not inputs.is_script(uri):
        return []
    document = ls.workspace.get_text_document(uri)
    return lenses.code_lenses(uri, document.source, document.lines, ls.visualizer.navigator)


def hover(ls: EtvizServer, params: types.HoverParams) -> types.Hover | None:
    path = paths.path_of(params.text_document.uri)
    if path is None:
        return None
    text = ls.visualizer.navigator.hover_text(path, params.position.line)
    if text is None:
        return None
    return types.Hover(types.MarkupContent(types.MarkupKind.Markdown, text))


async def visualize(ls: EtvizServer, *args: Any) -> dict[str, Any]:
    return await ls.visualizer.visualize(
        args[0] if args else None, args[1] if len(args) > 1 else None
    )


async def refresh(ls: EtvizServer, *args: Any) -> dict[str, Any]:
    return await ls.visualizer.refresh(args[0] if args else None)


async def profile(ls: EtvizServer, *args: Any) -> dict[str, Any]:
    return await ls.visualizer.profile(args[0] if args else None)


async def stop(ls: EtvizServer, *args: Any) -> dict[str, Any]:
    return await ls.visualizer.stop()


def node_at(ls: EtvizServer, *args: Any) -> dict[str, Any]:
    path, line, graph_id = navigation.position_args(NODE_AT, args)
    return ls.visualizer.navigator.node_at(path, line, graph_id)


def show_in_graph(ls: EtvizServer, *args: Any) -> dict[str, Any]:
    return navigation.show_in_graph(ls, ls.visualizer.navigator, args)


def source_of(ls: EtvizServer, *args: Any) -> dict[str, Any]:
    graph_id, node_id, source = navigation.source_of_args(args)
    return ls.visualizer.navigator.source_of(graph_id, node_id, source)


def compare(ls: EtvizServer, *args: Any) -> dict[str, Any]:
    return compare_answer(ls.visualizer.explorer, args)


FEATURES: tuple[tuple[str, Callable[..., Any]], ...] = (
    (types.INITIALIZE, initialize),
    (types.INITIALIZED, initialized),
    (types.SHUTDOWN, shutdown),
    (types.EXIT, exit_),
    (types.WORKSPACE_DID_CHANGE_CONFIGURATION, did_change_configuration),
    (types.TEXT_DOCUMENT_DID_OPEN, did_open),
    (types.TEXT_DOCUMENT_DID_CLOSE, did_close),
    (types.TEXT_DOCUMENT_DID_SAVE, did_save),
    (types.TEXT_DOCUMENT_CODE_LENS, code_lens),
    (types.TEXT_DOCUMENT_HOVER, hover),
)

COMMANDS: tuple[tuple[str, Callable[..., Any]], ...] = (
    (VISUALIZE, visualize),
    (REFRESH, refresh),
    (PROFILE, profile),
    (STOP, stop),
    (NODE_AT, node_at),
    (SHOW_IN_GRAPH, show_in_graph),
    (SOURCE_OF, source_of),
    (COMPARE, compare),
)


def create_server() -> EtvizServer:
    server = EtvizServer()
    for method, handler in FEATURES:
        server.feature(method)(handler)
    for command, handler in COMMANDS:
        server.command(command)(handler)
    return server


def run_stdio(verbose: bool = False, client_pid: int | None = None) -> int:
    logs.setup_stderr(verbose)
    server = create_server()
    server.command_line_client_pid = client_pid
    try:
        server.start_io()
    finally:
        server.stop_everything()
    return 0
