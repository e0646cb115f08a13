"""Leave no process behind: the warm worker adopts orphans and kills every descendant.

Each run's process starts its own session (so one ``killpg`` reaches its process group),
but a script can start processes that leave the group (``start_new_session=True``, a
daemon's double fork). The warm worker therefore makes itself a *child subreaper* (Linux
``PR_SET_CHILD_SUBREAPER``): orphans are re-parented to it instead of to init, so after a run
every process still below it is a leftover of that run, found (psutil, ``processes.py``) and
killed. Where there is no subreaper (macOS, Windows) the run's own tree is read before its
process is killed and killed leaf-first (``kill_run``): what left the group is still found
while its parent lives. Windows has no process groups: there that walk is all there is.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
import time

from etviz_lsp import processes

_PR_SET_PDEATHSIG = 1
_PR_SET_CHILD_SUBREAPER = 36


def _prctl(option: int, value: int) -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.prctl(option, value, 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


def become_subreaper() -> bool:
    """Orphaned descendants get re-parented to this process (Linux only)."""
    return _prctl(_PR_SET_CHILD_SUBREAPER, 1)


def die_with_parent() -> bool:
    """This process gets SIGKILL when its parent dies (Linux only)."""
    return _prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL))


def descendants(root: int) -> list[int]:
    """Living (non-zombie) processes below ``root``, leaves first."""
    return processes.descendants(root)


def kill_group(pgid: int) -> None:
    if hasattr(os, "killpg"):  # not on Windows: there the tree walk does it
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)


def kill_run(pid: int) -> None:
    """End a run's process and everything it started: its tree read first (a process that
    left the group is found below ``pid`` only while ``pid`` lives), then its group, then
    that tree leaf-first."""
    tree = descendants(pid)
    kill_group(pid)
    for below in tree:
        processes.kill(below)
    processes.kill(pid)


def reap_children() -> None:
    """Collect every exited child (ours or adopted) so no zombie stays (POSIX)."""
    while hasattr(os, "WNOHANG"):
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def kill_descendants(root: int | None = None, attempts: int = 200) -> int:
    """SIGKILL everything below ``root`` (default: this process) until nothing is left.

    Repeats because a process may fork while we kill; killed intermediate parents hand their
    children to us (subreaper), so they show up again under ``root``. Returns how many
    processes were signalled.
    """
    root = os.getpid() if root is None else root
    killed: set[int] = set()
    for _ in range(attempts):
        pids = descendants(root)
        if not pids:
            break
        for pid in pids:
            if processes.kill(pid):
                killed.add(pid)
        if root == os.getpid():
            reap_children()
        time.sleep(0.005)
    if root == os.getpid():
        reap_children()
    return len(killed)
