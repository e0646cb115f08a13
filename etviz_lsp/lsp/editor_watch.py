"""pygls 2 does not watch the editor: if its process dies without ``shutdown``/``exit``,
this notices within ``interval`` seconds and calls ``on_death`` (stop everything, exit).
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
from collections.abc import Callable

log = logging.getLogger(__name__)
INTERVAL = 0.5


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError as error:
        return error.errno == errno.EPERM  # exists, owned by someone else
    return not _zombie(pid)


def _zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return stat.read().rsplit(b")", 1)[1].split()[0] == b"Z"
    except (OSError, IndexError):
        return False


async def watch_editor(pid: int, on_death: Callable[[], None], interval: float = INTERVAL) -> None:
    while alive(pid):
        await asyncio.sleep(interval)
    log.warning("the editor (pid %d) is gone: stopping", pid)
    on_death()
