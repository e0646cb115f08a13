"""Leave no process behind: the warm worker adopts orphans and kills every descendant.

Each run's process starts its own session (so one ``killpg`` reaches its process group),
but a script can start processes that leave the group (``start_new_session=True``, a
daemon's double fork). The warm worker therefore makes itself a *child subreaper* (Linux
``PR_SET_CHILD_SUBREAPER``): orphans are re-parented to it instead of to init, so after a run
every process still below it is a leftover of that run, found (psutil, ``processes.py``) and
killed. Where there is no subreaper (macOS, Windows) the run's tree is recorded while it
runs (``RunTree``: the portable mode's supervisor notes it every second) and killed
leaf-first: what left the group, or lost its parent, is still known. Windows has no
process groups (``own_group`` starts a new one there, for Ctrl-C only): that walk is all
there is.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
from typing import Any

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


def own_group() -> dict[str, Any]:
    """``Popen`` arguments that start a process in a group of its own: a new session on
    POSIX (one ``killpg`` ends it and what stayed in it; the editor's Ctrl-C never reaches
    it), a new process group on Windows (the console's Ctrl-C is not sent to it; there is
    no killpg there: :class:`RunTree` ends the tree)."""
    if sys.platform == "win32":
        return {"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP}
    return {"start_new_session": True}


def kill_group(pgid: int) -> None:
    if hasattr(os, "killpg"):  # not on Windows: there the tree walk does it
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)


class RunTree:
    """A run's process and what it started, recorded while it runs.

    Where no subreaper adopts orphans (macOS, Windows), a process whose parent exited is
    no longer below the run's process: it is found only if it was noted (:meth:`note`) while its
    parent lived. Each is kept with its create time, so a pid reused since is not killed.
    (A Windows Job object would catch even what is started and orphaned between two notes;
    it is not used: no Windows machine is here to test it.)
    """

    def __init__(self, root: int) -> None:
        self.root = root
        self._seen: dict[int, tuple[int, processes.Identity]] = {}

    def note(self) -> None:
        """Add what runs below the root now (kept: its depth when first seen)."""
        for depth, who in processes.tree(self.root):
            known = self._seen.get(who.pid)
            if known is None or known[1] != who:
                self._seen[who.pid] = (depth, who)

    def kill(self) -> None:
        """End it all: the tree read once more (it may have grown since the last note),
        the root's group (POSIX), then every process seen, deepest first, then the root."""
        self.note()
        kill_group(self.root)
        for _, who in sorted(self._seen.values(), key=lambda seen: seen[0], reverse=True):
            processes.kill_same(who)
        processes.kill(self.root)


def kill_run(pid: int) -> None:
    """End a run's process and everything it started: its tree read first (a process that
    left the group is found below ``pid`` only while ``pid`` lives), then its group, then
    that tree leaf-first."""
    RunTree(pid).kill()


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
