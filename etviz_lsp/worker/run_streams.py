"""What a run's process writes that its supervisor reads: its output and its stack dumps.

Output: the fork mode's child writes into a pipe the supervisor selects on. Windows'
``select`` takes sockets only, so a run host (the portable mode) writes into the pipe
``Popen`` gave it and a thread of the warm worker copies that pipe into a socket pair
(``RelayedOutput``): the supervisor selects on a socket on every system. Either way a
script printing megabytes never blocks, and EOF comes once every writer is dead.

Stack dumps: ``faulthandler`` writes into a named temporary file (``StackFile``), which a
forked child inherits open and a run host opens by its path (no descriptor is handed down);
removed when the run is over.
"""

from __future__ import annotations

import contextlib
import os
import socket
import tempfile
import threading
from typing import IO, Protocol

_CHUNK = 1 << 16


class RunOutput(Protocol):
    """A run's stdout and stderr as the supervisor reads them (``select``-able)."""

    def fileno(self) -> int: ...

    def read(self) -> bytes:
        """What is there (call when readable); ``b""`` at EOF."""
        ...

    def close(self) -> None: ...


class PipeOutput:
    """The fork mode's: the read end of the pipe the child writes into."""

    def __init__(self, fd: int) -> None:
        self._fd = fd

    def fileno(self) -> int:
        return self._fd

    def read(self) -> bytes:
        return os.read(self._fd, _CHUNK)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self._fd)


class RelayedOutput:
    """The portable mode's: a run host's stdout pipe, copied into a socket by a thread."""

    def __init__(self, pipe: IO[bytes]) -> None:
        self._sock, far = socket.socketpair()
        threading.Thread(target=_copy, args=(pipe, far), name="etviz-run-output",
                         daemon=True).start()

    def fileno(self) -> int:
        return self._sock.fileno()

    def read(self) -> bytes:
        try:
            return self._sock.recv(_CHUNK)
        except OSError:  # the copy ended abruptly: as EOF
            return b""

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._sock.close()


def _copy(pipe: IO[bytes], far: socket.socket) -> None:
    try:
        while chunk := os.read(pipe.fileno(), _CHUNK):
            far.sendall(chunk)
    except OSError:  # the supervisor closed its end: nobody reads any more
        pass
    finally:
        far.close()
        pipe.close()


class StackFile:
    """Where ``faulthandler`` writes a run's stack: a named temporary file."""

    def __init__(self) -> None:
        self.file: IO[bytes] = tempfile.NamedTemporaryFile(  # noqa: SIM115 (see close)
            prefix="etviz-stack-", suffix=".txt", delete=False)
        self.path = self.file.name

    def read_all(self) -> str:
        self.file.seek(0)
        return self.file.read().decode(errors="replace")

    def close(self) -> None:
        """Closed and removed (on Windows only once the run's process is gone: the
        supervisor calls this after it was killed and reaped)."""
        self.file.close()
        with contextlib.suppress(OSError):
            os.unlink(self.path)
