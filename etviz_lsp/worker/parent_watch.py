"""A worker process that outlives its parent ends itself (portable mode; every system).

Linux can have the kernel do it (``PR_SET_PDEATHSIG``, the forked run children's way);
macOS and Windows cannot. So a portable-mode warm worker watches the language server (or
CLI) that started it, and a run host watches that warm worker: a daemon thread looks every
``INTERVAL`` seconds whether the parent is still the process it was (pid and create time,
``processes.still``; without psutil: whether ``os.getppid()`` changed, which it does on
POSIX when the parent dies), and when it is gone kills everything below this process,
leaves first, and exits. A thread is fine here: these processes never fork.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable

from etviz_lsp import processes
from etviz_lsp.worker import process_tree

INTERVAL = 0.5


def start(interval: float = INTERVAL) -> threading.Thread:
    """Watch this process's parent from a daemon thread; its death ends this process."""
    parent_lives = _parent_check()
    thread = threading.Thread(target=_watch, args=(parent_lives, interval),
                              name="etviz-parent-watch", daemon=True)
    thread.start()
    return thread


def _parent_check() -> Callable[[], bool]:
    parent = os.getppid()
    who = processes.identity(parent)
    if who is not None:
        return lambda: processes.still(who)
    return lambda: os.getppid() == parent


def _watch(parent_lives: Callable[[], bool], interval: float) -> None:
    while parent_lives():
        time.sleep(interval)
    process_tree.kill_descendants()
    os._exit(1)
