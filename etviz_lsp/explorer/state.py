"""The reuse record of the one shared server: ``{port, pid, token, owner, started, ...}``.

Written atomically with mode 0600 (it holds the token). A lock file serializes the
processes that look at it, so two editors starting at once end up with one server.
"""

from __future__ import annotations

import contextlib
import getpass
import json
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from etviz_lsp import atomic_file
from etviz_lsp.explorer import locations

try:  # POSIX; elsewhere the lock is best effort (a race can at worst start a spare server)
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]


@dataclass(frozen=True, slots=True)
class ServerRecord:
    port: int
    pid: int
    token: str
    owner: str  # the user and the process that started the server
    started: float  # Unix time
    cache_dir: str

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def load() -> ServerRecord | None:
    """The current record, or None when there is none or it is unreadable (then it is stale)."""
    try:
        raw = json.loads(locations.state_file().read_text(encoding="utf-8"))
        return ServerRecord(
            port=int(raw["port"]),
            pid=int(raw["pid"]),
            token=str(raw["token"]),
            owner=str(raw["owner"]),
            started=float(raw["started"]),
            cache_dir=str(raw["cache_dir"]),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def save(record: ServerRecord) -> None:
    # atomic_file's temp is made 0600: the token is never readable by others, not even briefly.
    atomic_file.write_bytes(locations.state_file(), json.dumps(asdict(record)).encode("utf-8"))


def clear() -> None:
    with contextlib.suppress(FileNotFoundError):
        locations.state_file().unlink()


def owner_label() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid()) if hasattr(os, "getuid") else "?"
    return f"{user} (pid {os.getpid()})"


@contextlib.contextmanager
def locked() -> Iterator[None]:
    """Hold the per-user lock while reading, starting or stopping the server."""
    path: Path = locations.lock_file()
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the flock
