"""Facts about processes, the same on Linux, macOS and Windows: psutil, never a system's own files.

Is a pid alive (a zombie, exited but not yet reaped, is not), is it still the process we
mean (pids get reused: its create time and command line say), which processes run below
one, how many threads this process has, and ending a tree leaf-first (where no process
group reaches every process: Windows, or processes that left the group).

The language server always has psutil (a dependency). The worker runs in the user's
interpreter, which may lack it: the caller lends its copy (``worker/lent_libraries.py``),
and if even that cannot load here, these answers fall back to what ``os`` knows (alive by
signal 0, no descendants, no thread count): runs are then still ended by their process
group and, on Linux, by the worker's subreaper.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import signal
import sys
from dataclasses import dataclass
from typing import Any

# Create times are floats rounded by the system (Windows: 100 ns; Linux: clock ticks, read
# twice they agree): a tolerance, not equality.
_SAME_START = 0.05


def available() -> bool:
    """psutil is here (else the answers below are the weaker ``os`` ones)."""
    return _psutil() is not None


def _psutil() -> Any:
    """psutil, imported on first use: the worker borrows it (``lent_libraries``) only after
    its modules, this one included, are imported."""
    loaded = sys.modules.get("psutil")
    if loaded is not None:
        return loaded
    try:
        return importlib.import_module("psutil")
    except ImportError:  # a worker in an interpreter where even the lent copy cannot load
        return None


@dataclass(frozen=True, slots=True)
class Identity:
    """A process as it was when we looked: a pid reused later has another create time."""

    pid: int
    created: float


def alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie (another user's counts as alive)."""
    psutil = _psutil()
    if psutil is None:
        return _signal_zero(pid)
    try:
        return bool(psutil.Process(pid).status() != psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:
        return True


def identity(pid: int) -> Identity | None:
    """``pid`` with its create time, or None when it does not run (or cannot be read)."""
    psutil = _psutil()
    if psutil is None:
        return None
    try:
        return Identity(pid, psutil.Process(pid).create_time())
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None


def still(who: Identity) -> bool:
    """The process ``who`` names still runs: same pid, same create time, not a zombie."""
    now = identity(who.pid)
    return now is not None and abs(now.created - who.created) < _SAME_START and alive(who.pid)


def command_line(pid: int) -> list[str] | None:
    """``pid``'s arguments, or None when it is gone or hidden from us."""
    psutil = _psutil()
    if psutil is None:
        return None
    try:
        return [str(part) for part in psutil.Process(pid).cmdline()]
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return None


def created(pid: int) -> float | None:
    """When ``pid`` started (Unix time), or None when it is gone or hidden from us."""
    found = identity(pid)
    return found.created if found is not None else None


def descendants(root: int) -> list[int]:
    """Living (non-zombie) processes below ``root``, deepest first (leaves before parents)."""
    return [who.pid for _, who in tree(root)]


def tree(root: int) -> list[tuple[int, Identity]]:
    """Living processes below ``root`` with their depth (1: its children), deepest first;
    the identity lets a caller that kept them kill none whose pid was reused since."""
    psutil = _psutil()
    if psutil is None:
        return []
    try:
        below = psutil.Process(root).children(recursive=True)
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return []
    depth = {root: 0}
    found: list[tuple[int, Identity]] = []
    for process in below:  # parents come before their children in psutil's walk
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            if process.status() == psutil.STATUS_ZOMBIE:
                continue
            depth[process.pid] = depth.get(process.ppid(), 0) + 1
            found.append((depth[process.pid], Identity(process.pid, process.create_time())))
    return sorted(found, key=lambda item: (item[0], item[1].pid), reverse=True)


def thread_count() -> int:
    """Threads of this process (0 when unknown)."""
    psutil = _psutil()
    if psutil is None:
        return 0
    return int(psutil.Process().num_threads())


def kill(pid: int) -> bool:
    """Hard stop of one process (SIGKILL; TerminateProcess on Windows); False if gone."""
    psutil = _psutil()
    if psutil is None:
        try:
            os.kill(pid, getattr(signal, "SIGKILL", signal.SIGTERM))
        except (ProcessLookupError, PermissionError):
            return False
        return True
    try:
        psutil.Process(pid).kill()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False
    return True


def kill_same(who: Identity) -> bool:
    """:func:`kill` of ``who`` only while its pid still names that process (not reused)."""
    return still(who) and kill(who.pid)


def kill_tree(root: int, *, include_root: bool = True) -> int:
    """Kill everything below ``root`` leaf-first (a parent killed first could not hand its
    children on to anyone who finds them), then ``root``; returns how many were signalled."""
    killed = sum(kill(pid) for pid in descendants(root))
    if include_root:
        killed += kill(root)
    return killed


def _signal_zero(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:  # Windows: signal 0 is not a probe there
        return False
    return True

