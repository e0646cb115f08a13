"""Sessions of their own: an untrusted workspace, code lenses, the editor dying, the
entry points. None of these needs a warm worker, so they stay quick."""

from __future__ import annotations

import asyncio
import select
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest
from lsprotocol import types
from pygls.exceptions import JsonRpcException

from tests.conftest import PYTHON
from tests.lsp_session import lsp_session, wait_until_gone

SCRIPT = textwrap.dedent("""\
    import pathlib
    import torch
    from executorch.exir import to_edge

    pathlib.Path(__file__).with_suffix(".ran").write_text("ran")
    ep = torch.export.export(torch.nn.Linear(2, 2), (torch.randn(1, 2),))
    edge = to_edge(ep)
    """)


async def test_an_untrusted_workspace_refuses_to_run_code(tmp_path: Path) -> None:
    async with lsp_session(tmp_path, trusted=False) as session:
        script = session.root / "workspace" / "export.py"
        script.write_text(SCRIPT)
        with pytest.raises(JsonRpcException, match="not trusted"):
            await session.visualize(script)
        session.save(script, SCRIPT + "\n")  # and saving does not run it either
        await asyncio.sleep(1.5)
        assert not script.with_suffix(".ran").exists()
        assert session.graph_ready == []
        assert await session.close() == []


async def test_code_lenses_sit_on_export_and_lowering_calls(tmp_path: Path) -> None:
    async with lsp_session(tmp_path, trusted=False) as session:
        script = session.root / "workspace" / "export.py"
        script.write_text(SCRIPT)
        uri = script.as_uri()
        session.client.text_document_did_open(
            types.DidOpenTextDocumentParams(types.TextDocumentItem(uri, "python", 1, SCRIPT))
        )
        lenses = await session.client.text_document_code_lens_async(
            types.CodeLensParams(types.TextDocumentIdentifier(uri))
        )
        assert lenses is not None
        assert [lens.range.start.line for lens in lenses] == [5, 6]
        for lens in lenses:
            assert lens.command is not None
            assert lens.command.title == "Visualize"
            assert lens.command.command == "etviz.server.visualize"
            assert list(lens.command.arguments or []) == [uri]
        assert not script.with_suffix(".ran").exists()  # found by reading, not by running


async def test_the_server_exits_when_the_editor_dies(tmp_path: Path) -> None:
    editor = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        async with lsp_session(
            tmp_path, process_id=editor.pid, trusted=True, early_worker=True
        ) as session:
            server = psutil.Process(session.server_pid)
            assert session.workers()  # the worker, started early
            editor.kill()
            editor.wait()
            died = time.monotonic()
            await asyncio.to_thread(server.wait, 10)
            # polled every 0.5 s; a worker still importing torch gets 5 s to stop, then killed
            assert time.monotonic() - died < 8
            assert await asyncio.to_thread(wait_until_gone, session.marker, 5) == []
            session.closed = True  # nothing left to shut down
    finally:
        editor.kill()


async def test_sigterm_stops_the_worker_too(tmp_path: Path) -> None:
    async with lsp_session(tmp_path, trusted=True, early_worker=True) as session:
        server = psutil.Process(session.server_pid)
        server.terminate()
        await asyncio.to_thread(server.wait, 10)
        left = await asyncio.to_thread(wait_until_gone, session.marker, 5)
        assert left == [], [(p.pid, p.ppid(), p.cmdline()[:4]) for p in left]
        session.closed = True


@pytest.mark.parametrize("args", [[], ["--stdio"]], ids=["no-arguments", "stdio"])
def test_the_command_line_runs_the_server_on_stdio(args: list[str]) -> None:
    initialize = (
        '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"processId":null,'
        '"rootUri":null,"capabilities":{}}}'
    )
    message = f"Content-Length: {len(initialize)}\r\n\r\n{initialize}".encode()
    proc = subprocess.Popen(
        [PYTHON, "-m", "etviz_lsp", *args],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    try:
        out, _err = proc.communicate(message, timeout=60)  # stdin closes: the server ends
    finally:
        proc.kill()
    header, _, body = out.partition(b"\r\n\r\n")
    assert header.startswith(b"Content-Length:")  # stdout carries only protocol messages
    assert b'"etviz.server.visualize"' in body
    assert b'"codeLensProvider"' in body


def test_each_log_line_reaches_the_editor_once() -> None:
    """Editors show stderr and window/logMessage in one log: a line goes to one of them."""
    messages = [
        '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"processId":null,'
        '"rootUri":null,"capabilities":{}}}',
        '{"jsonrpc":"2.0","method":"initialized","params":{}}',
    ]
    wire = b"".join(f"Content-Length: {len(m)}\r\n\r\n{m}".encode() for m in messages)
    proc = subprocess.Popen(
        [PYTHON, "-m", "etviz_lsp", "--stdio"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    try:
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(wire)
        proc.stdin.flush()
        seen = _read_until(proc, (b"ready (workspace",), 60)
        proc.stdin.close()  # the server ends
        proc.wait(60)
        err = proc.stderr.read() if proc.stderr else b""
    finally:
        proc.kill()
    assert b'"window/logMessage"' in seen and b"ready (workspace" in seen
    assert b"ready (workspace" not in err, err.decode(errors="replace")


def test_shutdown_then_exit_ends_quietly_with_code_0() -> None:
    """The editor's orderly goodbye (exit sent once shutdown was answered): no traceback on
    stderr (editors show it in the log), exit code 0 as LSP asks after a shutdown."""
    def frame(message: str) -> bytes:
        return f"Content-Length: {len(message)}\r\n\r\n{message}".encode()

    proc = subprocess.Popen(
        [PYTHON, "-m", "etviz_lsp", "--stdio"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    try:
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(
            frame('{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"processId":null,'
                  '"rootUri":null,"capabilities":{}}}')
            + frame('{"jsonrpc":"2.0","method":"initialized","params":{}}')
            + frame('{"jsonrpc":"2.0","id":2,"method":"shutdown"}')
        )
        proc.stdin.flush()
        _read_until(proc, (b'"id": 2', b'"id":2'), 60)  # the shutdown's answer
        proc.stdin.write(frame('{"jsonrpc":"2.0","method":"exit"}'))
        proc.stdin.close()
        code = proc.wait(60)
        err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    finally:
        proc.kill()
    assert code == 0, err[-3000:]
    assert "Traceback" not in err and "Error sending data" not in err, err[-3000:]


def _read_until(proc: subprocess.Popen[bytes], markers: tuple[bytes, ...], seconds: float) -> bytes:
    """The server's stdout up to one of ``markers`` (never blocks past ``seconds``)."""
    assert proc.stdout is not None
    seen = b""
    deadline = time.monotonic() + seconds
    while not any(m in seen for m in markers):
        left = deadline - time.monotonic()
        ready, _, _ = select.select([proc.stdout], [], [], max(left, 0))
        if not ready:
            raise AssertionError(f"no {markers} from the server in {seconds} s: {seen[-500:]!r}")
        chunk = proc.stdout.read1(65536)
        if not chunk:
            raise AssertionError(f"the server closed stdout before {markers}: {seen[-500:]!r}")
        seen += chunk
    return seen
