"""The portable mode's private socket (``worker/handoff.py``): loopback, port and one-time
token in the environment, no descriptor handed down (Windows has no ``pass_fds``). Real
child processes, real sockets; a connection with a wrong token is refused (a local process
that found the port must not get the channel that carries scripts to run)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys

import pytest

from etviz_lsp.worker import handoff

# A child as the warm worker and run hosts are: connects, then says what it sees.
_CHILD = """
import json, os, sys
from etviz_lsp.worker import handoff
sock = handoff.connect()
sock.sendall(json.dumps({"pid": os.getpid(), "env": os.environ.get(handoff.ENV)}).encode()
             + b"\\n")
sock.recv(1)
"""


def _child(listener: handoff.Listener) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", _CHILD], env=listener.environment(),
                            stdin=subprocess.DEVNULL)


def _says(sock: socket.socket) -> dict[str, object]:
    sock.settimeout(30)  # a socket that is not the child's would never say anything
    data = b""
    while not data.endswith(b"\n"):
        chunk = sock.recv(4096)
        assert chunk, "closed before it said anything"
        data += chunk
    return dict(json.loads(data))


def test_the_listener_is_on_loopback_and_the_token_is_not_on_the_command_line() -> None:
    listener = handoff.Listener()
    try:
        child = _child(listener)
        sock = listener.accept(30, lambda: child.poll() is None)
        assert sock.getsockname()[0] == "127.0.0.1" and sock.getpeername()[0] == "127.0.0.1"
        assert listener.token not in " ".join(map(str, child.args))
        said = _says(sock)
        # the child took the token out of its environment: its script never sees it
        assert said == {"pid": child.pid, "env": None}
        sock.close()
        assert child.wait(30) == 0
    finally:
        listener.close()


@pytest.mark.parametrize("wrong", ["0" * 32, "", "short"])
def test_a_wrong_token_is_refused_and_the_real_child_still_connects(wrong: str) -> None:
    listener = handoff.Listener()
    intruder = socket.create_connection(("127.0.0.1", listener.port), timeout=10)
    intruder.sendall(wrong.encode() + b"\n")
    child = _child(listener)
    try:
        sock = listener.accept(30, lambda: child.poll() is None)
        # the intruder came first and was closed; the accepted one is the child
        assert intruder.recv(1) == b""
        assert _says(sock)["pid"] == child.pid
        sock.close()
        assert child.wait(30) == 0
    finally:
        intruder.close()
        child.kill()
        child.wait()


def test_a_child_that_exits_without_connecting_fails_the_accept_at_once() -> None:
    listener = handoff.Listener()
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    with pytest.raises(handoff.HandoffFailed, match="exited before it connected"):
        listener.accept(60, lambda: child.poll() is None)
    # the port is closed with the listener: nobody can connect later
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", listener.port), timeout=5).recv(1)


def test_a_child_without_the_variable_says_so_in_one_line(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv(handoff.ENV, raising=False)
    with pytest.raises(handoff.HandoffFailed, match=r"\$ETVIZ_HANDOFF is missing"):
        handoff.connect()
