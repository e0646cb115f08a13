"""What a run depended on and what it left behind, seen from inside the run child.

- **Imported files**: the ``.py`` files the run imported that are the user's kind of code
  (not the standard library, not site-packages, not etviz itself), so an editor can re-run
  the flow when one of them is saved. Modules the warm worker held before the fork are
  libraries by construction and are skipped.
- **Artifacts**: files the run wrote of the kinds ``graph/inputs.py`` marks as artifacts
  (``.pte`` / ``.pt2`` / ``.etrecord``, in any case). Python-level writes (``open``,
  ``os.open``, ``os.rename`` / ``os.replace``) are seen by wrapping those functions in the
  run child; ``torch.export.save`` writes from C++, so the run's folders are also scanned
  (bounded) for such files modified since the run started.

Not an audit hook (``sys.addaudithook``): a hook runs on every audited event, and ``id()`` is
one; ``copy.deepcopy`` calls ``id()`` for every object it copies, and ExecuTorch's lowering
deep-copies node provenance all the time (issue 24: an LLM export ran ~15% longer in CPU
with the hook). The wrappers cost only the calls they wrap. What they miss, a file opened
through a reference taken before the run (``from io import open`` in a module the warm
worker had imported, ``io.FileIO``), the folder scan still finds in the run's folders.
"""

from __future__ import annotations

import builtins
import contextlib
import functools
import io
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import etviz_lsp
from etviz_lsp.graph import inputs
from etviz_lsp.graph.core.source import is_user_file

_SCAN_DEPTH = 4
_SCAN_ENTRIES = 20_000  # a scan of a huge tree stops here: the wrappers saw Python writes
_SKIP_DIRS = frozenset({"node_modules", "__pycache__", "site-packages", "dist-packages"})
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC


class Footprint:
    """Started when the child starts the run (after the fork), read when it ends."""

    def __init__(self) -> None:
        self.started = time.time()
        self._warm_modules = frozenset(sys.modules)
        self._written: set[str] = set()
        _watch_writes(self._note)  # for as long as this child lives: it exits after the run

    def _note(self, path: object, mode: object, flags: object) -> None:
        if _writes(mode, flags) and _is_artifact(path):  # the cheap test first: every open
            self._written.add(os.path.abspath(os.fsdecode(path)))  # type: ignore[arg-type]

    def imported_files(self, main_file: Path | None) -> list[str]:
        own_package = os.path.dirname(os.path.abspath(etviz_lsp.__file__)) + os.sep
        found = {str(main_file.resolve())} if main_file is not None else set()
        for name, module in list(sys.modules.items()):
            file = getattr(module, "__file__", None)
            if name in self._warm_modules or not isinstance(file, str):
                continue
            path = os.path.abspath(file)
            if is_user_file(path) and not path.startswith(own_package) and os.path.isfile(path):
                found.add(path)
        return sorted(found)

    def artifacts(self, roots: list[Path]) -> list[str]:
        found = {path for path in self._written if os.path.isfile(path)}
        for root in dict.fromkeys(str(root) for root in roots):
            found.update(_recent_artifacts(root, self.started - 1.0))
        return sorted(found)


Note = Callable[[object, object, object], None]  # (path, open mode, os.open flags)
Args = tuple[tuple[Any, ...], dict[str, Any]]


def _watch_writes(note: Note) -> None:
    """Wrap the functions Python code writes or renames files with; each call is noted."""

    def opening(call: Args) -> None:  # open(file, mode="r", ...)
        note(_arg(call, 0, "file", None), _arg(call, 1, "mode", "r"), None)

    def os_opening(call: Args) -> None:  # os.open(path, flags, ...)
        note(_arg(call, 0, "path", None), None, _arg(call, 1, "flags", 0))

    def renaming(call: Args) -> None:  # os.rename / os.replace(src, dst, ...)
        note(_arg(call, 1, "dst", None), "w", None)

    builtins.open = io.open = _wrapped(builtins.open, opening)
    for name, before in (("open", os_opening), ("rename", renaming), ("replace", renaming)):
        original = getattr(os, name)
        setattr(os, name, _wrapped(original, before))
        # `os.open in os.supports_dir_fd` and the like must stay true for the wrapper.
        for supports in (os.supports_dir_fd, os.supports_fd, os.supports_follow_symlinks):
            if original in supports:
                supports.add(getattr(os, name))


def _wrapped(function: Callable[..., Any], before: Callable[[Args], None]) -> Callable[..., Any]:
    @functools.wraps(function)
    def noting(*args: Any, **kwargs: Any) -> Any:
        with contextlib.suppress(Exception):  # noting must never change what the call does
            before((args, kwargs))
        return function(*args, **kwargs)

    return noting


def _arg(call: Args, index: int, name: str, default: object) -> object:
    args, kwargs = call
    return args[index] if len(args) > index else kwargs.get(name, default)


def _is_artifact(path: object) -> bool:
    if isinstance(path, int):  # a file descriptor: no name
        return False
    try:
        return inputs.is_artifact(os.fsdecode(path))  # type: ignore[arg-type]
    except TypeError:
        return False


def _writes(mode: object, flags: object) -> bool:
    if isinstance(mode, str):
        return any(c in mode for c in "wax+")
    return isinstance(flags, int) and bool(flags & _WRITE_FLAGS)


def _recent_artifacts(root: str, since: float) -> list[str]:
    """Artifact files under ``root`` modified after ``since``: bounded depth and entries."""
    found: list[str] = []
    budget = _SCAN_ENTRIES
    pending = [(root, 0)]
    while pending and budget > 0:
        folder, depth = pending.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        budget -= len(entries)
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=False):
                    if depth < _SCAN_DEPTH and not _skipped(entry.name):
                        pending.append((entry.path, depth + 1))
                elif inputs.is_artifact(entry.name) and entry.stat().st_mtime >= since:
                    found.append(os.path.abspath(entry.path))
            except OSError:
                continue
    return found


def _skipped(name: str) -> bool:
    return name.startswith(".") or name in _SKIP_DIRS or name.endswith(".egg-info")
