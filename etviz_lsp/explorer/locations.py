"""Where the shared server's per-user files live, as ``platformdirs`` says per system.

- state folder: the reuse record (``server.json``), its lock, the server's log.
  ``$ETVIZ_STATE_DIR``, else the user state folder: Linux ``$XDG_STATE_HOME/etviz-lsp``
  (``~/.local/state/etviz-lsp``), macOS ``~/Library/Application Support/etviz-lsp``,
  Windows ``%LOCALAPPDATA%\\etviz-lsp``.
- graph cache: the only folder whose files the server may read. ``$ETVIZ_STATE_DIR/graphs``
  when that variable is set (tests get one isolated place), else ``graphs`` in the user
  cache folder: Linux ``$XDG_CACHE_HOME/etviz-lsp`` (``~/.cache/etviz-lsp``), macOS
  ``~/Library/Caches/etviz-lsp``, Windows ``%LOCALAPPDATA%\\etviz-lsp\\Cache``.

Both are created private to the user (mode 0700; Windows ignores the mode, a user's
``%LOCALAPPDATA%`` is already theirs): the record holds the server's token.
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
    return _private_dir(user_state_dir())


def cache_dir() -> Path:
    override = os.environ.get("ETVIZ_STATE_DIR")
    if override:
        return _private_dir(Path(override) / "graphs")
    return _private_dir(user_cache_dir() / "graphs")


# platformdirs is imported where it is used: the Model Explorer server process imports this
# package with only etviz_lsp on its path (the extension's bundled libraries are not).


def user_state_dir() -> Path:
    """This system's per-user state folder for etviz (not created here)."""
    import platformdirs

    return Path(platformdirs.user_state_dir(APP, appauthor=False))


def user_cache_dir() -> Path:
    """This system's per-user cache folder for etviz (not created here)."""
    import platformdirs

    return Path(platformdirs.user_cache_dir(APP, appauthor=False))


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
