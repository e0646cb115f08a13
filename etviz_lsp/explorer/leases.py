"""Which editor windows use the shared server, so the last one to close stops it.

Each language server that shows graphs holds a lease: a file named after its pid in the
state folder's ``leases/``, holding the server pid it uses. When an editor started the
server, ``leases/editor-started`` names that server's pid. A closing window stops the server
only when an editor started it and no other living window holds a lease on it: closing the
window that happened to start it no longer pulls the page from under the others. A server
the CLI started (``--serve``, meant to outlive it) is never stopped by an editor.

Leases of processes that died without closing (killed editors) are ignored and removed.
Callers hold the state lock (``state.locked``): the manager takes a lease or drops it in
the same critical section as finding or stopping the server.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from etviz_lsp import atomic_file, processes
from etviz_lsp.explorer import locations

EDITOR_STARTED = "editor-started"


def hold(server_pid: int, *, started: bool) -> None:
    """Records that this process uses ``server_pid`` (and started it, if ``started``)."""
    folder = _folder()
    _write(folder / str(os.getpid()), server_pid)
    if started:
        _write(folder / EDITOR_STARTED, server_pid)


def release_is_last(server_pid: int) -> bool:
    """Drops this process's lease; True when it was the last editor on a server that an
    editor started, i.e. when the caller should stop the server."""
    folder = _folder()
    with contextlib.suppress(FileNotFoundError):
        (folder / str(os.getpid())).unlink()
    others = [pid for pid, used in _living_leases(folder) if used == server_pid]
    return not others and _read(folder / EDITOR_STARTED) == server_pid


def _living_leases(folder: Path) -> list[tuple[int, int | None]]:
    """(holder pid, server pid) of every lease whose holder still runs; removes the rest."""
    living = []
    for path in folder.iterdir():
        if not path.name.isdigit():
            continue
        holder = int(path.name)
        if processes.alive(holder):
            living.append((holder, _read(path)))
        else:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
    return living


def _folder() -> Path:
    folder = locations.state_dir() / "leases"
    folder.mkdir(mode=0o700, exist_ok=True)
    return folder


def _write(path: Path, server_pid: int) -> None:
    atomic_file.write_bytes(path, str(server_pid).encode("ascii"))


def _read(path: Path) -> int | None:
    try:
        return int(path.read_text(encoding="ascii"))
    except (OSError, ValueError):
        return None
