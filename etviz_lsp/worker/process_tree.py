"""Leave no process behind: the warm worker adopts orphans and kills every descendant.

Each run's child starts its own session (so one ``killpg`` reaches its process group), but a
script can start processes that leave the group (``start_new_session=True``, a daemon's
double fork). The warm worker therefore makes itself a *child subreaper* (Linux
``PR_SET_CHILD_SUBREAPER``): orphans are re-parented to it instead of to init, so after a run
every process still below it is a leftover of that run, found through ``/proc`` and killed.
No cgroups, no extra dependency. Elsewhere (no ``/proc``) the process group kill remains.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
import time

_PR_SET_PDEATHSIG = 1
_PR_SET_CHILD_SUBREAPER = 36
_PROC = "/proc"


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
    """Living (non-zombie) processes below ``root``, read from ``/proc``."""
    children: dict[int, list[int]] = {}
    zombies: set[int] = set()
    try:
        entries = os.listdir(_PROC)
    except OSError:
        return []
    for entry in entries:
        if not entry.isdigit():
            continue
        parsed = _parent_and_state(int(entry))
        if parsed is None:
            continue
        parent, state = parsed
        children.setdefault(parent, []).append(int(entry))
        if state == "Z":
            zombies.add(int(entry))
    found: list[int] = []
    stack = list(children.get(root, []))
    while stack:
        pid = stack.pop()
        if pid not in zombies:
            found.append(pid)
        stack.extend(children.get(pid, []))
    return found


def _parent_and_state(pid: int) -> tuple[int, str] | None:
    try:
        with open(f"{_PROC}/{pid}/stat", "rb") as handle:
            stat = handle.read().decode(errors="replace")
    except OSError:
        return None
    # The command name sits in parentheses and may itself hold spaces or ')'.
    fields = stat[stat.rfind(")") + 2 :].split()
    if len(fields) < 2:
        return None
    return int(fields[1]), fields[0]


def kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def reap_children() -> None:
    """Collect every exited child (ours or adopted) so no zombie stays."""
    while True:
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
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
                killed.add(pid)
        if root == os.getpid():
            reap_children()
        time.sleep(0.005)
    if root == os.getpid():
        reap_children()
    return len(killed)
