"""Load helpers shared by ``tests/test_reliability_lsp.py`` (short runs) and
``bench/soak.py`` (long runs): repeated refreshes with the memory of every process we
started measured, and a sampler of how many runs are in flight."""

from __future__ import annotations

import contextlib
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

import psutil
from lsprotocol import types

from tests.lsp_session import Session, processes_of

MB = 1024 * 1024


@dataclass
class Rss:
    """Resident memory (MB) of the language server, its warm worker and Model Explorer."""

    server: float
    worker: float
    explorer: float

    def __str__(self) -> str:
        return (f"language server {self.server:.1f} MB, worker {self.worker:.1f} MB, "
                f"Model Explorer {self.explorer:.1f} MB")


def roles(session: Session) -> dict[str, psutil.Process]:
    """Our long-lived processes by role (the worker's run children excluded)."""
    server = psutil.Process(session.server_pid)
    found = {"server": server}
    for proc in processes_of(session.marker):
        with contextlib.suppress(psutil.Error):
            cmdline = " ".join(proc.cmdline())
            if "etviz_lsp.explorer.serve" in cmdline:
                found["explorer"] = proc
            elif proc.ppid() == server.pid:
                found["worker"] = proc
    return found


def rss(session: Session) -> Rss:
    procs = roles(session)

    def mb(role: str) -> float:
        proc = procs.get(role)
        return proc.memory_info().rss / MB if proc is not None else 0.0

    return Rss(mb("server"), mb("worker"), mb("explorer"))


async def refresh(session: Session, path: Path) -> dict:
    answer = await session.client.workspace_execute_command_async(
        types.ExecuteCommandParams(command="etviz.server.refresh", arguments=[path.as_uri()])
    )
    assert answer["errors"] == [], answer
    return answer


async def refresh_soak(session: Session, path: Path, count: int, every: int) -> list[Rss]:
    """``count`` refreshes of ``path``; the memory of our processes every ``every`` ones."""
    samples = [rss(session)]
    for index in range(1, count + 1):
        await refresh(session, path)
        if index % every == 0:
            samples.append(rss(session))
    return samples


@dataclass
class InFlight:
    """Samples the warm worker's children (one per run) in a thread: the most at once."""

    worker: psutil.Process
    most: int = 0
    runs_seen: set[int] = field(default_factory=set)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> InFlight:
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        assert self._thread is not None
        self._thread.join()

    def _sample(self) -> None:
        while not self._stop.wait(0.01):
            alive = living_children(self.worker.pid)
            self.runs_seen.update(alive)
            self.most = max(self.most, len(alive))


def living_children(pid: int) -> list[int]:
    """The children of ``pid`` that are not zombies, from the kernel's per-thread lists.
    ``psutil.Process.children`` reads every process of the machine (14 ms here): every
    10 ms, it held the GIL from the test's event loop and slowed the saves it paces."""
    found = []
    with contextlib.suppress(OSError):
        for task in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(OSError):
                found += Path(f"/proc/{pid}/task/{task}/children").read_text().split()
    return [int(child) for child in found if _state(child) not in ("Z", "X", None)]


def _state(pid: str) -> str | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):  # gone meanwhile
        return None
