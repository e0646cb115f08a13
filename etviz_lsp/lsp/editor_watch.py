"""The server process's end when the editor does not ask for it: pygls 2 does not watch
the editor, so if its process dies without ``shutdown``/``exit`` this notices within
``interval`` seconds and calls ``on_death`` (stop everything, exit); an editor that gives
up waiting sends SIGTERM, handled the same way.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Callable

from etviz_lsp import processes

log = logging.getLogger(__name__)
INTERVAL = 0.5


def alive(pid: int) -> Callable[[], bool]:
    """A check of the editor ``pid`` as it is now: false once it exits, or once its pid
    names another process (pids are reused; the create time tells them apart)."""
    who = processes.identity(pid)
    if who is None:
        return lambda: processes.alive(pid)
    return lambda: processes.still(who)


async def watch_editor(pid: int, on_death: Callable[[], None], interval: float = INTERVAL) -> None:
    editor_lives = alive(pid)
    while editor_lives():
        await asyncio.sleep(interval)
    log.warning("the editor (pid %d) is gone: stopping", pid)
    on_death()


def exit_after(stop: Callable[[], None]) -> Callable[[], None]:
    """``on_death`` for :func:`watch_editor`: ``stop`` everything, then end the process."""

    def on_death() -> None:
        stop()
        # The reader thread is blocked on stdin; nothing else would end the process.
        os._exit(0)

    return on_death


def stop_on_terminate(stop: Callable[[], None], loop: asyncio.AbstractEventLoop) -> None:
    """An editor that gives up waiting for ``exit`` sends SIGTERM: the worker and the
    Model Explorer server live in sessions of their own and would survive us. Handled on
    the loop (not in a raw signal handler), so it never lands inside ``Popen`` while the
    worker is being started."""

    def terminated(signum: int) -> None:
        log.warning("terminated by signal %d: stopping", signum)
        stop()
        os._exit(0)

    for name in ("SIGTERM", "SIGHUP"):
        signum = getattr(signal, name, None)
        if signum is None:
            continue  # Windows: no SIGHUP
        try:
            loop.add_signal_handler(signum, terminated, signum)
        except NotImplementedError:  # Windows' event loops take no signal handlers
            signal.signal(signum, lambda number, _frame: terminated(number))
