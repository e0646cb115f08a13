"""A real etviz-lsp server over stdio for end-to-end tests, with its own state folders.

Every process the session starts inherits ``ETVIZ_TEST_SESSION`` in its environment (the
worker, the script's children, the detached Model Explorer server too), so "nothing left
behind" is checked by looking for that marker in every process on the machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import textwrap
import time
import urllib.parse
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import psutil
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient

from tests.conftest import PYTHON

SERVER = [PYTHON, "-m", "etviz_lsp", "--stdio"]
GRAPH_READY = "etviz/graphReady"
MARKER = "ETVIZ_TEST_SESSION"


def export_script(layers: int, *, width: int = 4, before_export: str = "") -> str:
    """A tiny export script; the graph grows with ``layers``. Line 12 is ``forward``'s body."""
    return textwrap.dedent(f"""\
        import torch

        LAYERS = {layers}


        class Net(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.layers = torch.nn.Sequential(*[torch.nn.Linear(4, 4) for _ in range(LAYERS)])

            def forward(self, x):
                return self.layers(x)

        {before_export}
        ep = torch.export.export(Net(), (torch.randn(2, {width}),))
        """)


def ancestry_script(layers: int) -> str:
    """``export_script`` that first writes the pids of the processes it runs under to
    ``ancestors.json`` beside itself (``ancestors_of``): which worker served the run."""
    return textwrap.dedent("""\
        import json, pathlib, psutil
        pathlib.Path(__file__).with_name("ancestors.json").write_text(
            json.dumps([p.pid for p in psutil.Process().parents()]))
        """) + export_script(layers)


def ancestors_of(script: Path) -> list[int]:
    return [int(pid) for pid in json.loads(script.with_name("ancestors.json").read_text())]


def seed_workspace(root: Path, files: dict[str, str]) -> Path:
    """Files in the workspace of ``lsp_session(root)`` before its server starts (what the
    server finds at ``initialized``); the workspace folder."""
    workspace = root / "workspace"
    for name, text in files.items():
        (workspace / name).parent.mkdir(parents=True, exist_ok=True)
        (workspace / name).write_text(text)
    return workspace


def session_env(root: Path, marker: str) -> dict[str, str]:
    env = dict(os.environ)
    for name in ("XDG_CACHE_HOME", "XDG_STATE_HOME", "XDG_CONFIG_HOME", "XDG_DATA_HOME"):
        folder = root / name.lower()
        folder.mkdir(parents=True, exist_ok=True)
        env[name] = str(folder)
    env["ETVIZ_STATE_DIR"] = str(root / "etviz-state")
    env[MARKER] = marker
    return env


def processes_of(marker: str) -> list[psutil.Process]:
    """Every living process whose environment carries this session's marker."""
    found = []
    for proc in psutil.process_iter():
        with contextlib.suppress(psutil.Error):
            if proc.status() == psutil.STATUS_ZOMBIE:
                continue
            if proc.environ().get(MARKER) == marker:
                found.append(proc)
    return found


def wait_until_gone(marker: str, seconds: float = 10.0) -> list[psutil.Process]:
    deadline = time.monotonic() + seconds
    left = processes_of(marker)
    while left and time.monotonic() < deadline:
        time.sleep(0.2)
        left = processes_of(marker)
    return left


class Session:
    def __init__(self, client: LanguageClient, root: Path, marker: str) -> None:
        self.client = client
        self.root = root
        self.marker = marker
        self.graph_ready: list[Any] = []
        self.closed = False
        self.initialize_result: types.InitializeResult | None = None

        @client.feature(GRAPH_READY)
        def _graph_ready(params: Any) -> None:
            self.graph_ready.append(params)

    @property
    def server_pid(self) -> int:
        server = self.client._server
        assert server is not None
        return server.pid

    def workers(self) -> list[psutil.Process]:
        """The server's children running the warm worker (its runs are grandchildren)."""
        found = []
        for child in psutil.Process(self.server_pid).children():
            with contextlib.suppress(psutil.Error):
                if "etviz_lsp.worker.zygote" in " ".join(child.cmdline()):
                    found.append(child)
        return found

    def logged(self, text: str) -> list[str]:
        """The server's log lines (``window/logMessage``) that contain ``text``."""
        return [m.message for m in self.client.log_messages if text in m.message]

    async def visualize(self, path: Path, how: dict[str, Any] | None = None) -> Any:
        """The command's answer, with attribute access like the notifications have."""
        arguments: list[Any] = [path.as_uri()] if how is None else [path.as_uri(), how]
        answer = await self.client.workspace_execute_command_async(
            types.ExecuteCommandParams(command="etviz.server.visualize", arguments=arguments)
        )
        return json.loads(json.dumps(answer), object_hook=lambda d: SimpleNamespace(**d))

    def save(self, path: Path, text: str) -> None:
        """What an editor does on save: write the file, then ``didSave``."""
        path.write_text(text)
        self.client.text_document_did_save(
            types.DidSaveTextDocumentParams(text_document=types.TextDocumentIdentifier(path.as_uri()))
        )

    async def next_graph(
        self, path: Path, after: int, *, stale: bool | None = None, seconds: float = 180
    ) -> Any:
        """The first graphReady for ``path`` past index ``after`` (matching ``stale``) that
        carries a run's outcome (the stages shown while it runs are skipped)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            for params in self.graph_ready[after:]:
                if getattr(params, "inProgress", False):
                    continue
                if params.source == path.as_uri() and (stale is None or params.stale == stale):
                    return params
            await asyncio.sleep(0.1)
        raise AssertionError(f"no graphReady for {path.name} in {seconds} s: {self.graph_ready}")

    def configure(self, **etviz: object) -> None:
        """What an editor sends when the user edits the etviz settings."""
        self.client.workspace_did_change_configuration(
            types.DidChangeConfigurationParams(settings={"etviz": etviz})
        )

    async def wait_for(self, condition: Any, seconds: float = 180, what: str = "") -> None:
        deadline = time.monotonic() + seconds
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what or condition}")
            await asyncio.sleep(0.1)

    async def close(self) -> list[psutil.Process]:
        """shutdown + exit; the processes still alive 10 s later (should be none)."""
        if not self.closed:
            self.closed = True
            await asyncio.wait_for(self.client.shutdown_session(), 60)
            await self.client.stop()
        return await asyncio.to_thread(wait_until_gone, self.marker)


def graph_json(url: str) -> Any:
    """The graph file a Model Explorer page URL loads (it lies in the session's cache)."""
    data = urllib.parse.parse_qs(urllib.parse.urlparse(url).query)["data"][0]
    return json.loads(Path(json.loads(data)["models"][0]["url"]).read_text())


def capabilities() -> types.ClientCapabilities:
    return types.ClientCapabilities(
        window=types.WindowClientCapabilities(work_done_progress=True),
        text_document=types.TextDocumentClientCapabilities(
            synchronization=types.TextDocumentSyncClientCapabilities(did_save=True),
            code_lens=types.CodeLensClientCapabilities(),
        ),
    )


@contextlib.asynccontextmanager
async def lsp_session(
    root: Path,
    *,
    process_id: int | None = None,
    client_capabilities: types.ClientCapabilities | None = None,
    early_worker: bool = False,
    **options: Any,
) -> AsyncIterator[Session]:
    """A session in ``root / "workspace"``. ``early_worker`` (with ``trusted=True``): an
    export script lies in the workspace, so the server starts its worker at once, as in an
    editor; the session is yielded once that worker process exists."""
    marker = uuid.uuid4().hex
    if early_worker:
        seed_workspace(root, {"warm_start.py": export_script(1)})
    workspace = root / "workspace"
    workspace.mkdir(parents=True, exist_ok=True)
    config = ClientServerConfig(server_command=SERVER, server_env=session_env(root, marker))
    client = await config.start()
    assert isinstance(client, LanguageClient)
    session = Session(client, root, marker)
    try:
        session.initialize_result = await client.initialize_session(
            types.InitializeParams(
                capabilities=client_capabilities or capabilities(),
                process_id=process_id,
                root_uri=workspace.as_uri(),
                workspace_folders=[types.WorkspaceFolder(workspace.as_uri(), "workspace")],
                initialization_options={"timeout": 120, **options},
            )
        )
        if early_worker:
            await session.wait_for(session.workers, 60, "the worker started early")
        yield session
    finally:
        if not session.closed:
            with contextlib.suppress(Exception):
                await session.close()
        for proc in processes_of(marker):  # never leave a process behind, even on failure
            with contextlib.suppress(psutil.Error):
                proc.kill()
