"""What a run depended on and what it left behind, seen from inside the run child.

- **Imported files**: the ``.py`` files the run imported that are the user's kind of code
  (not the standard library, not site-packages, not etviz itself), so an editor can re-run
  the flow when one of them is saved. Modules the warm worker held before the fork are
  libraries by construction and are skipped.
- **Artifacts**: ``.pte`` / ``.pt2`` / ``.etrecord`` files the run wrote. Python-level
  writes (``open``, ``os.open``, renames) are seen through an audit hook; ``torch.export.save``
  writes from C++, so the run's folders are also scanned (bounded) for such files modified
  since the run started.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

import etviz_lsp
from etviz_lsp.graph.source import is_user_file

ARTIFACT_SUFFIXES = (".pte", ".pt2", ".etrecord")
_SCAN_DEPTH = 4
_SCAN_ENTRIES = 20_000  # a scan of a huge tree stops here: the hook still saw Python writes
_SKIP_DIRS = frozenset({"node_modules", "__pycache__", "site-packages", "dist-packages"})
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC


class Footprint:
    """Started when the child starts the run (after the fork), read when it ends."""

    def __init__(self) -> None:
        self.started = time.time()
        self._warm_modules = frozenset(sys.modules)
        self._written: set[str] = set()
        sys.addaudithook(self._audit)  # lives as long as this child: it exits after the run

    def _audit(self, event: str, args: tuple[Any, ...]) -> None:
        if event == "open":
            path, mode, flags = args
            if _is_artifact(path) and _writes(mode, flags):
                self._written.add(os.path.abspath(os.fsdecode(path)))
        elif event in ("os.rename", "os.replace") and _is_artifact(args[1]):
            self._written.add(os.path.abspath(os.fsdecode(args[1])))

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


def _is_artifact(path: object) -> bool:
    if isinstance(path, int):  # a file descriptor: no name
        return False
    try:
        return os.fsdecode(path).endswith(ARTIFACT_SUFFIXES)  # type: ignore[arg-type]
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
                elif entry.name.endswith(ARTIFACT_SUFFIXES) and entry.stat().st_mtime >= since:
                    found.append(os.path.abspath(entry.path))
            except OSError:
                continue
    return found


def _skipped(name: str) -> bool:
    return name.startswith(".") or name in _SKIP_DIRS or name.endswith(".egg-info")
