"""A private socket to a child process on every system: loopback, port and one-time token.

The fork mode hands its child one end of a ``socketpair`` by descriptor (``pass_fds``);
Windows has no ``pass_fds``. So the portable mode (``warm_worker.py`` starting the warm
worker, ``host_pool.py`` starting each run host) does this instead: the parent listens on
127.0.0.1, port 0 (never another address: the channel carries scripts to run), gives the
child the port and a random token in the environment (never argv: any local user can read a
command line), and the child connects and sends the token first. The parent accepts with a
deadline and closes every connection whose token is wrong (another local process that found
the port) until the child's comes. The child removes the variable from its environment at
once, so neither the user's script nor what it starts sees it.
"""

from __future__ import annotations

import contextlib
import hmac
import os
import secrets
import socket
import subprocess
import time
from collections.abc import Callable

from etviz_lsp.worker import process_tree

ENV = "ETVIZ_HANDOFF"  # "PORT TOKEN"
ARGUMENT = "loopback"  # in place of a descriptor number: connect through ENV
_HOST = "127.0.0.1"
# A child connects before it imports torch: well within this even on a loaded machine.
CONNECT_WAIT = 60.0
_TOKEN_WAIT = 5.0  # a connection that does not say its token by then is dropped
_TICK = 0.2


class HandoffFailed(OSError):
    """The child never connected with the right token (it exited, or the time ran out)."""


class Listener:
    """One child's way in: listening on loopback until :meth:`accept` returns its socket."""

    def __init__(self) -> None:
        self.token = secrets.token_hex(16)
        self._sock = socket.create_server((_HOST, 0))
        self.port = int(self._sock.getsockname()[1])

    def environment(self) -> dict[str, str]:
        """The environment for the child: this process's, plus the port and token."""
        return {**os.environ, ENV: f"{self.port} {self.token}"}

    def accept(self, timeout: float, alive: Callable[[], bool]) -> socket.socket:
        """The child's connection; wrong tokens are refused. Raises HandoffFailed when
        ``alive()`` turns false (the child exited) or ``timeout`` seconds pass."""
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                if not alive():
                    raise HandoffFailed("the process exited before it connected")
                self._sock.settimeout(min(_TICK, max(0.0, deadline - time.monotonic())))
                try:
                    conn, _ = self._sock.accept()
                except TimeoutError:
                    continue
                if _says_token(conn, self.token):
                    conn.settimeout(None)
                    return conn
                conn.close()  # not our child: refused, keep waiting for it
            raise HandoffFailed(f"no connection with the right token within {timeout:g} s")
        finally:
            self.close()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._sock.close()


def start_connected(
    start: Callable[[dict[str, str]], subprocess.Popen[bytes]],
) -> tuple[subprocess.Popen[bytes], socket.socket]:
    """Start a child with ``start(environment)`` and wait for its connection. A child that
    never connects is killed with what it started, and the error raised (OSError)."""
    listener = Listener()
    try:
        process = start(listener.environment())
    except OSError:
        listener.close()
        raise
    try:
        return process, listener.accept(CONNECT_WAIT, lambda: process.poll() is None)
    except OSError:
        process_tree.kill_run(process.pid)
        process.wait()
        if process.stdout is not None:
            process.stdout.close()
        raise


def _says_token(conn: socket.socket, token: str) -> bool:
    expected = token.encode() + b"\n"
    conn.settimeout(_TOKEN_WAIT)
    received = b""
    with contextlib.suppress(OSError):
        while len(received) < len(expected) and not received.endswith(b"\n"):
            chunk = conn.recv(len(expected) - len(received))
            if not chunk:
                break
            received += chunk
    return hmac.compare_digest(received, expected)


def connect() -> socket.socket:
    """In the child: the connection to the parent named by ``ENV`` (removed from the
    environment here, before anything else of this process can read it)."""
    value = os.environ.pop(ENV, "")
    port, _, token = value.partition(" ")
    if not port.isdigit() or not token:
        raise HandoffFailed(f"${ENV} is missing or malformed")
    sock = socket.create_connection((_HOST, int(port)), timeout=_TOKEN_WAIT)
    sock.sendall(token.encode() + b"\n")
    sock.settimeout(None)
    return sock


def channel_socket(argument: str) -> socket.socket:
    """A child's channel from its first argument: a descriptor handed down (fork mode's
    worker), or :data:`ARGUMENT` (connect through the environment)."""
    if argument == ARGUMENT:
        return connect()
    return socket.socket(fileno=int(argument))
