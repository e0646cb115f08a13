"""Watch visualized files for changes made outside the editor (another process rewrote a
``.pt2``, a script edited elsewhere, an atomic save = write a temp file and rename it).

watchdog's native observer (inotify on Linux) watches each file's folder, non-recursively;
when it cannot (no inotify, watch limit reached) or when a poll interval is configured, a
polling observer does the job. ``on_change`` runs on watchdog's thread: the caller hops
to its own loop.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver, ObservedWatch
from watchdog.observers.polling import PollingObserver

log = logging.getLogger(__name__)
_POLL_DEFAULT = 1.0


class _FolderHandler(FileSystemEventHandler):
    def __init__(self, watcher: FileWatcher) -> None:
        self._watcher = watcher

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.is_directory or event.event_type in ("deleted", "opened", "closed_no_write"):
            return
        # An atomic save is a move onto the file: its destination is what we watch.
        for raw in (event.src_path, getattr(event, "dest_path", "")):
            if raw:
                self._watcher._touched(Path(os.fsdecode(raw)))


class FileWatcher:
    def __init__(
        self, on_change: Callable[[Path], None], *, poll_interval: float | None = None
    ) -> None:
        self._on_change = on_change
        self._poll_interval = poll_interval
        self._lock = threading.Lock()
        self._files: set[Path] = set()
        self._folders: dict[Path, tuple[BaseObserver, ObservedWatch]] = {}
        self._native: BaseObserver | None = None
        self._polling: BaseObserver | None = None

    @property
    def polling(self) -> bool:
        return self._poll_interval is not None

    def watch(self, path: Path) -> None:
        path = path.resolve()
        with self._lock:
            self._files.add(path)
            if path.parent not in self._folders:
                self._folders[path.parent] = self._schedule(path.parent)

    def unwatch(self, path: Path) -> None:
        path = path.resolve()
        with self._lock:
            self._files.discard(path)
            if any(f.parent == path.parent for f in self._files):
                return
            entry = self._folders.pop(path.parent, None)
        if entry is not None:
            observer, watch = entry
            observer.unschedule(watch)

    def watched(self) -> set[Path]:
        with self._lock:
            return set(self._files)

    def close(self) -> None:
        for observer in (self._native, self._polling):
            if observer is not None:
                observer.stop()
        for observer in (self._native, self._polling):
            if observer is not None and observer.is_alive():
                observer.join(timeout=5)

    def _touched(self, path: Path) -> None:
        with self._lock:
            hit = path in self._files
        if hit:
            self._on_change(path)

    def _schedule(self, folder: Path) -> tuple[BaseObserver, ObservedWatch]:
        handler = _FolderHandler(self)
        if self._poll_interval is None:
            try:
                observer = self._native_observer()
                return observer, observer.schedule(handler, str(folder), recursive=False)
            except OSError as error:  # inotify missing or out of watches
                log.warning("cannot watch %s natively (%s): polling instead", folder, error)
        observer = self._polling_observer()
        return observer, observer.schedule(handler, str(folder), recursive=False)

    def _native_observer(self) -> BaseObserver:
        if self._native is None:
            self._native = Observer()
            self._native.daemon = True
            self._native.start()
        return self._native

    def _polling_observer(self) -> BaseObserver:
        if self._polling is None:
            self._polling = PollingObserver(timeout=self._poll_interval or _POLL_DEFAULT)
            self._polling.daemon = True
            self._polling.start()
        return self._polling
