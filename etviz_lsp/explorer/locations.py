"""Where the shared server's per-user files live.

- state folder: the reuse record (``server.json``), its lock, the server's log.
  ``$ETVIZ_STATE_DIR``, else ``$XDG_STATE_HOME/etviz-lsp``, else ``~/.local/state/etviz-lsp``.
- graph cache: the only folder whose files the server may read. ``$ETVIZ_STATE_DIR/graphs``
  when that variable is set (tests get one isolated place), else
  ``$XDG_CACHE_HOME/etviz-lsp/graphs``, else ``~/.cache/etviz-lsp/graphs``.

Both are created private to the user (mode 0700): the record holds the server's token.
"""

from __future__ import annotations

import os
from pathlib import Path

from etviz_lsp.errors import EtvizError

APP = "etviz-lsp"


def state_dir() -> Path:
    override = os.environ.get("ETVIZ_STATE_DIR")
    if override:
        return _private_dir(Path(override))
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return _private_dir(Path(base) / APP)


def cache_dir() -> Path:
    override = os.environ.get("ETVIZ_STATE_DIR")
    if override:
        return _private_dir(Path(override) / "graphs")
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return _private_dir(Path(base) / APP / "graphs")


def state_file() -> Path:
    return state_dir() / "server.json"


def lock_file() -> Path:
    return state_dir() / "server.lock"


def log_file() -> Path:
    return state_dir() / "server.log"


def _private_dir(path: Path) -> Path:
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise EtvizError(str(path), f"cannot create folder: {exc.strerror}") from exc
    return path.resolve()
