"""The one shared Model Explorer server per user: start, find, reuse, check, refresh, stop.

The server runs detached (its own session), so it outlives the command or editor that
started it; a record in the per-user state folder lets every later process find and reuse
it. A record is trusted only when its port answers our guard's status route, with the
recorded token, from the recorded pid: a dead server, or a port now answered by somebody
else, makes the record stale and it is cleaned up (and the next request starts a new one).
"""

from __future__ import annotations

import contextlib
import http.client
import importlib.util
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from etviz_lsp import processes
from etviz_lsp.errors import EtvizError
from etviz_lsp.explorer import leases, locations, state
from etviz_lsp.explorer.guard import STATUS_PATH, TOKEN_HEADER
from etviz_lsp.explorer.serve import EXIT_SERVER_ENDED

HOST = "127.0.0.1"
PROBE_TIMEOUT = 2.0
START_ATTEMPTS = 3  # fresh ports to try when the picked one is taken during start-up
STOP_GRACE = 5.0
SERVE_MODULE = "etviz_lsp.explorer.serve"

# Servers this process started: kept so their exit is reaped (no zombies in a long-lived
# language server) and so stop() can wait for them.
_children: dict[int, subprocess.Popen[bytes]] = {}


@dataclass(frozen=True, slots=True)
class ServerInfo:
    port: int
    pid: int
    token: str
    base_url: str


class PortTaken(Exception):
    """The chosen port was taken by another process while the server started."""


def ensure_server(
    port: int | None = None, timeout: float = 30.0, *, lease: bool = False
) -> ServerInfo:
    """The running shared server, started (detached) if there is none or it died.

    ``port`` is used only when a new server must start; a running one is reused wherever
    it listens (there is one shared server, other windows may be showing it). ``lease``:
    an editor window that will show it (see ``leave_server``); taken under the same lock,
    so a window closing meanwhile cannot stop the server between the two.
    """
    with state.locked():
        record = state.load()
        started = record is None or not _answers_patiently(record)
        if started:
            if record is not None:
                _discard(record)
            record = _start(port, timeout)
        assert record is not None
        if lease:
            leases.hold(record.pid, started=started)
        return _info(record)


def server_alive(info: ServerInfo) -> bool:
    _reap()
    return _answers(info.port, info.token, info.pid)


def current_server() -> ServerInfo | None:
    """The recorded server if it answers, without starting one."""
    record = state.load()
    if record is None or not _answers(record.port, record.token, record.pid):
        return None
    return _info(record)


def refresh(info: ServerInfo) -> None:
    """Ask every open tab of the server to reload (they keep their uiState: it is in the URL)."""
    status, _body = _request(info.port, "POST", "/apipost/v1/refresh_page", info.token)
    if status != 200:
        raise EtvizError(info.base_url, f"refresh failed (HTTP {status})")


def stop_server() -> bool:
    """Stop the shared server; True if one was running."""
    with state.locked():
        return _stop_recorded()


def leave_server(*, stop: bool = False) -> Literal["stopped", "kept", "none"]:
    """An editor window is done with the server: it stops when that was the last window on
    a server an editor started (a server the CLI started is left for the CLI), or when
    ``stop``. Says whether it "stopped", was "kept" for others, or there was "none"."""
    with state.locked():
        record = state.load()
        if record is None:
            return "none"
        if leases.release_is_last(record.pid) or stop:
            return "stopped" if _stop_recorded() else "none"
        return "kept"


def _stop_recorded() -> bool:
    """Stop the recorded server and clear its record (the caller holds the lock)."""
    record = state.load()
    if record is None:
        return False
    stopped = _answers(record.port, record.token, record.pid) or _is_our_server(record)
    if stopped:
        _kill(record.pid)
    state.clear()
    return stopped


# -- starting ----------------------------------------------------------------------------


def _start(port: int | None, timeout: float) -> state.ServerRecord:
    if importlib.util.find_spec("model_explorer") is None:
        raise EtvizError(
            "model-explorer", f"not installed for {sys.executable} (ai-edge-model-explorer)"
        )
    if port is not None and _port_in_use(port):
        raise EtvizError(f"{HOST}:{port}", "port is in use by another process")
    cache = locations.cache_dir()
    deadline = time.monotonic() + timeout
    attempts = 1 if port is not None else START_ATTEMPTS
    for _ in range(attempts):
        chosen = port if port is not None else _free_port()
        token = secrets.token_urlsafe(32)
        process = _spawn(chosen, token, cache)
        try:
            _wait_ready(process, chosen, token, deadline)
        except PortTaken:
            _kill(process.pid)
            continue
        except BaseException:
            _kill(process.pid)
            raise
        record = state.ServerRecord(
            port=chosen,
            pid=process.pid,
            token=token,
            owner=state.owner_label(),
            started=time.time(),
            cache_dir=str(cache),
        )
        state.save(record)
        return record
    where = f"{HOST}:{port}" if port is not None else HOST
    raise EtvizError(where, "port was taken by another process while Model Explorer started")


def _spawn(port: int, token: str, cache: Path) -> subprocess.Popen[bytes]:
    log_fd = os.open(locations.log_file(), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    log = os.fdopen(log_fd, "wb")  # handed to the child, closed below
    env = dict(os.environ)
    # The child imports this very package, wherever it was imported from here.
    package_root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
    env["PYTHONUNBUFFERED"] = "1"
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", SERVE_MODULE, "--port", str(port), "--cache-dir", str(cache)],
            stdin=subprocess.PIPE,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=cache,
            env=env,
            start_new_session=True,  # detached: survives us, and its group can be killed whole
            close_fds=True,
        )
    finally:
        log.close()
    assert process.stdin is not None
    process.stdin.write(token.encode() + b"\n")
    process.stdin.close()
    _children[process.pid] = process
    return process


def _wait_ready(process: subprocess.Popen[bytes], port: int, token: str, deadline: float) -> None:
    """Until our guard answers with this process's pid; raise on exit, foreign answer, deadline."""
    while True:
        code = process.poll()
        if code is not None:
            if code == EXIT_SERVER_ENDED or (code == 1 and "in use" in _log_tail()):
                raise PortTaken()
            raise EtvizError(
                "model-explorer", f"server exited with code {code} during start-up: {_log_tail()}"
            )
        answer = _status(port, token)
        if answer is not None:
            if answer.get("pid") != process.pid:
                raise PortTaken()  # somebody else's server on the port we picked
            _check_guarded(port)
            return
        if time.monotonic() > deadline:
            raise EtvizError(
                f"{HOST}:{port}", "Model Explorer did not answer in time; see " + _log_path()
            )
        time.sleep(0.2)


def _check_guarded(port: int) -> None:
    """Fail closed: a token-less request must be refused, or the guard is not in place."""
    status, _ = _request(port, "GET", "/check_health", token=None)
    if status != 403:
        raise EtvizError(f"{HOST}:{port}", "the server answered without a token; refusing it")


# -- probing -----------------------------------------------------------------------------


def _request(
    port: int, method: str, path: str, token: str | None, timeout: float = PROBE_TIMEOUT
) -> tuple[int, bytes]:
    """One HTTP request to loopback; http.client so no proxy setting can reroute it."""
    connection = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        headers = {TOKEN_HEADER: token} if token else {}
        connection.request(method, path, headers=headers)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def _status(port: int, token: str) -> dict[str, object] | None:
    try:
        status, body = _request(port, "GET", STATUS_PATH, token)
        if status != 200:
            return {"pid": None}  # something answers, but not our server with this token
        answer = json.loads(body)
    except (OSError, http.client.HTTPException):
        return None  # nobody listening (yet)
    except ValueError:
        return {"pid": None}
    return answer if isinstance(answer, dict) else {"pid": None}


def _answers(port: int, token: str, pid: int) -> bool:
    answer = _status(port, token)
    return answer is not None and answer.get("app") == "etviz-lsp" and answer.get("pid") == pid


def _answers_patiently(record: state.ServerRecord) -> bool:
    """A live server of ours may be slow on a loaded machine: ask again before giving up."""
    for attempt in range(3):
        if _answers(record.port, record.token, record.pid):
            return True
        if not _is_our_server(record):
            return False
        time.sleep(0.5 * (attempt + 1))
    return False


def _port_in_use(port: int) -> bool:
    """Somebody listens there. (A port merely bound shows up later, as a failed start.)"""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(PROBE_TIMEOUT)
        return probe.connect_ex((HOST, port)) == 0


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


# -- cleaning up -------------------------------------------------------------------------


def _discard(record: state.ServerRecord) -> None:
    """A stale record: kill its process only if it is still ours (pids get reused)."""
    if _is_our_server(record):
        _kill(record.pid)
    state.clear()


def _is_our_server(record: state.ServerRecord) -> bool:
    """The recorded pid is still the server the record was written for: our serve module
    on its command line, and started before the record (a reused pid started later)."""
    created = processes.created(record.pid)
    command = processes.command_line(record.pid)
    if created is None or command is None:
        return False  # gone, or hidden from us: never kill on a guess
    return SERVE_MODULE in command and created <= record.started + 1.0


def _kill(pid: int) -> None:
    """Stop the server's process group (SIGTERM), hard after a grace period, reap if ours.
    Windows has no process groups: there its tree, leaves first."""
    for hard in (False, True):
        if hasattr(os, "killpg"):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL if hard else signal.SIGTERM)
        else:
            processes.kill_tree(pid)
        if _wait_gone(pid, 2.0 if hard else STOP_GRACE):
            break
    _children.pop(pid, None)


def _wait_gone(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    child = _children.get(pid)
    while time.monotonic() < deadline:
        if child is not None:
            if child.poll() is not None:
                return True
        elif not processes.alive(pid):
            return True
        time.sleep(0.05)
    return False


def _reap() -> None:
    for pid, child in list(_children.items()):
        if child.poll() is not None:
            del _children[pid]


def _log_path() -> str:
    return str(locations.log_file())


def _log_tail() -> str:
    try:
        lines = locations.log_file().read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return lines[-1] if lines else ""


def _info(record: state.ServerRecord) -> ServerInfo:
    return ServerInfo(record.port, record.pid, record.token, record.base_url)
