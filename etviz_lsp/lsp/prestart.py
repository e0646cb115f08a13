"""Starting the warm worker early: at ``initialized``, in a trusted workspace that holds an
export script, so the first "Visualize" pays only the run (the worker's imports and
warm-up take many seconds).

The test for an export script is the code lenses' own (``lenses.find_export_calls``: the
text parsed with ``ast``, nothing imported), over a bounded breadth-first walk of the
workspace folders: hidden folders, virtual environments and ``node_modules`` are skipped,
and the walk stops after ``MAX_FILES`` Python files or ``MAX_ENTRIES`` folder entries. It
all runs in a thread; a failure is logged and the first run starts the worker as before.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from etviz_lsp.graph import inputs
from etviz_lsp.lsp.lenses import find_export_calls
from etviz_lsp.lsp.options import InitOptions
from etviz_lsp.worker import WarmWorker

MAX_FILES = 200  # Python files read
MAX_ENTRIES = 5000  # folder entries looked at (a data folder must not make the walk long)
MAX_FILE_BYTES = 512 * 1024  # an export script is small; bigger files are not read
SKIPPED_FOLDERS = frozenset({"node_modules", "__pycache__", "site-packages"})
SETTING = "etviz.prestartWorker"
NOT_STARTED = "warm worker: not started early (%s); the first run starts it"

log = logging.getLogger(__name__)


def refusal(options: InitOptions) -> str | None:
    """Why the worker must not start early with these options, or None."""
    if not options.trusted:
        return "the workspace is not trusted"
    if not options.prestart_worker:
        return f"{SETTING} is off"
    return None


def find_export_script(
    roots: Iterable[Path], stop: Callable[[], bool] = lambda: False
) -> Path | None:
    """The first Python file under ``roots`` (nearest the top first) that calls an export or
    lowering function, within the walk's bounds; None when there is none or ``stop()``."""
    for path in _python_files(roots, stop):
        if stop():
            return None
        if _has_export_call(path):
            return path
    return None


def _python_files(roots: Iterable[Path], stop: Callable[[], bool]) -> Iterator[Path]:
    folders = deque(roots)
    files = entries = 0
    while folders and not stop():
        try:
            with os.scandir(folders.popleft()) as found:
                children = sorted(found, key=lambda entry: entry.name)
        except OSError:
            continue  # unreadable or gone: not ours to report
        for entry in children:
            entries += 1
            if entries > MAX_ENTRIES or files >= MAX_FILES:
                return
            if inputs.is_script(entry.name) and entry.is_file(follow_symlinks=False):
                files += 1
                yield Path(entry.path)
            elif entry.is_dir(follow_symlinks=False) and _walked(entry):
                folders.append(Path(entry.path))


def _walked(folder: os.DirEntry[str]) -> bool:
    """Folders worth looking in: not hidden, not installed packages or a virtual env."""
    if folder.name.startswith(".") or folder.name in SKIPPED_FOLDERS:
        return False
    return not os.path.exists(os.path.join(folder.path, "pyvenv.cfg"))


def _has_export_call(path: Path) -> bool:
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            return False
        text = path.read_bytes().decode("utf-8", errors="replace")
    except OSError:
        return False
    # Most files mention neither: no parse for them.
    if "export" not in text and "to_edge" not in text:
        return False
    return bool(find_export_calls(text))


class Prestart:
    """Starts ``worker`` early, once, from a thread; :meth:`close` (at shutdown) first."""

    def __init__(self, worker: WarmWorker) -> None:
        self._worker = worker
        self._lock = threading.Lock()  # no start after close
        self._closed = False
        self._task: asyncio.Task[None] | None = None

    def schedule(
        self, options: InitOptions, roots: list[Path], loop: asyncio.AbstractEventLoop
    ) -> None:
        """At ``initialized``: look for an export script and start the worker, in a thread
        (the message loop goes on), when the options allow it."""
        refused = refusal(options)
        if refused is not None:
            log.info(NOT_STARTED, refused)
            return
        self._task = loop.create_task(self._run(roots))

    async def finished(self) -> None:
        """At shutdown, after :meth:`close` and the worker's close (which ends the wait)."""
        if self._task is not None:
            await asyncio.wait([self._task], timeout=5)

    async def _run(self, roots: list[Path]) -> None:
        """Never raises: an early start that fails costs only its saving."""
        try:
            await asyncio.to_thread(self._start_if_scripts, roots)
        except Exception as error:  # the first run starts the worker and reports its error
            if not self._closed:
                log.warning("warm worker: the early start failed: %s; the first run "
                            "starts it", error)

    def close(self) -> None:
        with self._lock:
            self._closed = True

    def _start_if_scripts(self, roots: list[Path]) -> None:
        script = find_export_script(roots, lambda: self._closed)
        if script is None:
            if not self._closed:
                log.info(NOT_STARTED, "no export script in the workspace")
            return
        with self._lock:
            if self._closed:
                return
            self._worker.start()
        log.info("warm worker: started early for %s (pid %s)", script, self._worker.pid)
        ready = self._worker.wait_until_ready()
        if ready is not None:
            log.info("warm worker: ready after %.1f s (started early, %s mode)",
                     float(ready.get("seconds") or 0.0), ready.get("mode", "fork"))
