"""The one shared Model Explorer server, for real: start, reuse, refresh, recover, stop."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import psutil
import pytest

from etviz_lsp import explorer
from etviz_lsp.errors import EtvizError
from etviz_lsp.explorer import locations, state
from tests.explorer_fixtures import explorer_home, server_processes  # noqa: F401

START_TIMEOUT = 90.0  # the machine is shared; a start normally takes 4-15 s


def _pid_of_listener(port: int) -> int | None:
    for conn in psutil.net_connections(kind="tcp"):
        if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port:
            return conn.pid
    return None


def _listen_addresses(pid: int) -> set[str]:
    return {
        c.laddr.ip for c in psutil.Process(pid).net_connections() if c.status == psutil.CONN_LISTEN
    }


@pytest.fixture(scope="module")
def server(explorer_home: Path) -> explorer.ServerInfo:  # noqa: F811
    return explorer.ensure_server(timeout=START_TIMEOUT)


def test_start_binds_loopback_and_records_private_state(
    server: explorer.ServerInfo,
    explorer_home: Path,  # noqa: F811
) -> None:
    assert psutil.pid_exists(server.pid)
    assert _listen_addresses(server.pid) == {"127.0.0.1"}
    assert _pid_of_listener(server.port) == server.pid
    record_path = explorer_home / "server.json"
    assert stat.S_IMODE(record_path.stat().st_mode) == 0o600
    assert stat.S_IMODE(explorer_home.stat().st_mode) == 0o700
    record = json.loads(record_path.read_text())
    assert (record["port"], record["pid"], record["token"]) == (
        server.port,
        server.pid,
        server.token,
    )
    assert str(os.getpid()) in record["owner"] and record["started"] <= time.time()
    assert len(server.token) >= 40  # 32 random bytes, URL-safe base64


def test_server_is_detached_in_its_own_session(server: explorer.ServerInfo) -> None:
    assert os.getsid(server.pid) == server.pid != os.getsid(0)


def test_the_server_process_stays_light(server: explorer.ServerInfo) -> None:
    """It serves finished graph JSON: Model Explorer's PyTorch adapter (and torch, ~2 s of
    start-up and ~300 MB) is never loaded."""
    process = psutil.Process(server.pid)
    libraries = {Path(m.path).name for m in process.memory_maps() if m.path}
    assert not any(name.startswith("libtorch") for name in libraries), sorted(libraries)
    assert process.memory_info().rss < 150 * 2**20


def test_second_process_reuses_same_server(server: explorer.ServerInfo) -> None:
    code = (
        "import json; from etviz_lsp import explorer; i = explorer.ensure_server(timeout=5);"
        "print(json.dumps([i.port, i.pid]))"
    )
    started = time.monotonic()
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert json.loads(out.stdout) == [server.port, server.pid]
    assert time.monotonic() - started < 10  # a lookup, not a start
    assert len(server_processes(Path(os.environ["ETVIZ_STATE_DIR"]))) == 1


def test_refresh_reaches_open_pages(server: explorer.ServerInfo) -> None:
    """An open tab listens on the server-sent-event stream; refresh() tells it to reload."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=15)
    conn.request("GET", "/apistream/server_director", headers={"X-Etviz-Token": server.token})
    stream = conn.getresponse()
    assert stream.status == 200
    stream.readline()  # the first heartbeat: the page is now a listener
    explorer.refresh(server)
    seen = b""
    deadline = time.monotonic() + 15
    while b"refreshPage" not in seen and time.monotonic() < deadline:
        seen += stream.readline()
    conn.close()
    assert b'"name": "refreshPage"' in seen


def test_server_alive_reports_truth(server: explorer.ServerInfo) -> None:
    assert explorer.server_alive(server)
    wrong = explorer.ServerInfo(server.port, server.pid, "x" * 43, server.base_url)
    assert not explorer.server_alive(wrong)


def test_crash_recovery_restarts_transparently(
    server: explorer.ServerInfo,
    explorer_home: Path,  # noqa: F811
) -> None:
    os.killpg(server.pid, signal.SIGKILL)
    psutil.Process(server.pid).wait(10) if psutil.pid_exists(server.pid) else None
    assert not explorer.server_alive(server)
    restarted = explorer.ensure_server(timeout=START_TIMEOUT)
    assert restarted.pid != server.pid and explorer.server_alive(restarted)
    assert state.load() is not None and state.load().pid == restarted.pid  # type: ignore[union-attr]
    assert [p.pid for p in server_processes(explorer_home)] == [restarted.pid]


class _Foreign(BaseHTTPRequestHandler):
    """Another program that happens to own a port: answers everything with 200."""

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        body = b"model_explorer_ok"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def foreign_server() -> Iterator[int]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Foreign)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd.server_address[1]
    httpd.shutdown()
    httpd.server_close()


def test_stale_record_on_foreign_port_is_replaced(
    explorer_home: Path,  # noqa: F811
    foreign_server: int,
) -> None:
    """The record's server is gone and another program now owns its port."""
    current = explorer.ensure_server(timeout=START_TIMEOUT)
    os.killpg(current.pid, signal.SIGKILL)
    stale = state.load()
    assert stale is not None
    state.save(
        state.ServerRecord(
            port=foreign_server,
            pid=current.pid,
            token=stale.token,
            owner=stale.owner,
            started=stale.started,
            cache_dir=stale.cache_dir,
        )
    )
    fresh = explorer.ensure_server(timeout=START_TIMEOUT)
    assert fresh.port != foreign_server and fresh.pid != current.pid
    assert explorer.server_alive(fresh)
    assert _pid_of_listener(foreign_server) == os.getpid()  # the other program is untouched


def test_explicit_port_in_use_is_a_clear_error(
    explorer_home: Path,  # noqa: F811
    foreign_server: int,
) -> None:
    explorer.stop_server()
    with pytest.raises(EtvizError, match=f"127.0.0.1:{foreign_server}: port is in use"):
        explorer.ensure_server(port=foreign_server, timeout=START_TIMEOUT)
    assert state.load() is None and server_processes(explorer_home) == []


def test_port_taken_during_start_is_no_false_success(explorer_home: Path) -> None:  # noqa: F811
    """A port bound (not yet listening) by someone else: Model Explorer's own check passes,
    its bind then fails; plain model-explorer prints its "Starting" line and exits 0 here."""
    explorer.stop_server()
    holder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    holder.bind(("127.0.0.1", 0))
    port = holder.getsockname()[1]
    try:
        with pytest.raises(EtvizError, match="taken by another process while Model Explorer"):
            explorer.ensure_server(port=port, timeout=START_TIMEOUT)
        log = (explorer_home / "server.log").read_text()
        assert "Starting Model Explorer server" in log  # its false success was printed...
    finally:
        holder.close()
    assert state.load() is None  # ...and not believed
    assert server_processes(explorer_home) == []


def test_stop_server(explorer_home: Path) -> None:  # noqa: F811
    info = explorer.ensure_server(timeout=START_TIMEOUT)
    assert explorer.stop_server() is True
    assert not psutil.pid_exists(info.pid) or psutil.Process(info.pid).status() == "zombie"
    assert not locations.state_file().exists()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", info.port), timeout=2).close()
    assert explorer.stop_server() is False
    assert server_processes(explorer_home) == []


def test_explorer_room_does_not_import_torch() -> None:
    code = "import sys, etviz_lsp.explorer; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
