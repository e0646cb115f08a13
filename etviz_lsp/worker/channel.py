"""The private channel between processes: one JSON object per line over a socket.

Used between the caller and the warm worker, and between the worker and each run's child.
Never stdout: a user's script may print anything there. ``send`` may be called from any
thread; reading belongs to one thread (the one that owns the run).
"""

from __future__ import annotations

import contextlib
import json
import select
import socket
import threading
import time
from typing import Any

Message = dict[str, Any]
_CHUNK = 1 << 16


class ChannelClosed(EOFError):
    """The other end went away (exited, crashed, or closed its socket)."""


class Channel:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._buffer = bytearray()
        self._messages: list[Message] = []
        self._send_lock = threading.Lock()
        self.closed = False

    def fileno(self) -> int:
        return self.sock.fileno()

    def send(self, message: Message) -> None:
        payload = json.dumps(message, separators=(",", ":")).encode() + b"\n"
        with self._send_lock:
            try:
                self.sock.sendall(payload)
            except OSError as exc:
                raise ChannelClosed(str(exc)) from exc

    def pop(self) -> Message | None:
        """A message already read, if any (no system call)."""
        return self._messages.pop(0) if self._messages else None

    def read_available(self) -> None:
        """One ``recv`` (call when the socket is readable); raises ChannelClosed at EOF."""
        try:
            data = self.sock.recv(_CHUNK)
        except (ConnectionResetError, BrokenPipeError):
            data = b""
        if not data:
            self.closed = True
            raise ChannelClosed("channel closed")
        self._buffer.extend(data)
        *lines, rest = self._buffer.split(b"\n")
        self._buffer = bytearray(rest)
        for line in lines:
            if line.strip():
                self._messages.append(json.loads(line))

    def recv(self, timeout: float | None) -> Message | None:
        """The next message, or None when ``timeout`` seconds pass without one."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            message = self.pop()
            if message is not None:
                return message
            wait = None if deadline is None else max(0.0, deadline - time.monotonic())
            readable, _, _ = select.select([self.sock], [], [], wait)
            if not readable:
                return None
            self.read_available()

    def close(self) -> None:
        self.closed = True
        with contextlib.suppress(OSError):
            self.sock.close()
