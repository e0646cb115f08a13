"""Per-file jobs: debounce bursts of saves, the newest save wins, older runs are cancelled.

One :class:`Jobs` holds a slot per key (a file). ``schedule(key)`` starts a run after
``delay`` seconds of quiet; a new ``schedule`` for the same key restarts the wait and, if a
run for an older version is in flight, marks its :class:`Ticket` cancelled and calls
``interrupt`` (the server kills the worker's child). Only the outcome of the newest
generation is reported (``on_outcome``) and handed to the futures ``schedule`` returned:
a superseded run's result or error is dropped, so a stale graph never wins over a newer
save. A user's ``cancel(key)`` fails the waiting futures with :class:`JobCancelled`.

Runs of one key never overlap: a newer run waits until the interrupted one has returned.
Nothing here knows about workers or LSP; the server passes the callables.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
R = TypeVar("R")

log = logging.getLogger(__name__)


class JobCancelled(Exception):
    """The user cancelled the run (not superseded by a newer save)."""


@dataclass(eq=False)
class Ticket(Generic[K]):
    """One run's handle: ``cancelled`` turns true when it is superseded or cancelled."""

    key: K
    generation: int
    cancelled: bool = False


@dataclass(eq=False)
class _Slot(Generic[K, R]):
    generation: int = 0
    timer: asyncio.TimerHandle | None = None
    task: asyncio.Task[None] | None = None
    ticket: Ticket[K] | None = None
    # The newest generation's timer fired while an older run was still finishing.
    start_when_idle: bool = False
    waiters: list[asyncio.Future[R]] = field(default_factory=list)


class Jobs(Generic[K, R]):
    def __init__(
        self,
        run: Callable[[Ticket[K]], Awaitable[R]],
        *,
        delay: float,
        interrupt: Callable[[Ticket[K]], None],
        on_outcome: Callable[[K, R | Exception], None] | None = None,
    ) -> None:
        self._run = run
        self._delay = delay
        self._interrupt = interrupt
        self._on_outcome = on_outcome
        self._slots: dict[K, _Slot[K, R]] = {}
        self.runs_started = 0

    def schedule(self, key: K, delay: float | None = None) -> asyncio.Future[R]:
        """Run ``key`` after ``delay`` s of quiet; the future gets the newest run's outcome."""
        loop = asyncio.get_running_loop()
        slot = self._slots.setdefault(key, _Slot())
        slot.generation += 1
        self._stop_running(slot)
        if slot.timer is not None:
            slot.timer.cancel()
        wait = self._delay if delay is None else delay
        slot.timer = loop.call_later(wait, self._timer_fired, key, slot.generation)
        waiter: asyncio.Future[R] = loop.create_future()
        slot.waiters.append(waiter)
        return waiter

    def cancel(self, key: K) -> bool:
        """Stop ``key``'s pending and running work; True when there was some."""
        slot = self._slots.get(key)
        if slot is None:
            return False
        busy = slot.timer is not None or slot.ticket is not None or bool(slot.waiters)
        slot.generation += 1  # whatever is in flight is no longer current
        if slot.timer is not None:
            slot.timer.cancel()
            slot.timer = None
        slot.start_when_idle = False
        self._stop_running(slot)
        self._settle(slot, JobCancelled(f"{key}: cancelled"))
        return busy

    def running(self, key: K) -> bool:
        slot = self._slots.get(key)
        return slot is not None and slot.ticket is not None

    async def close(self) -> None:
        """Cancel everything and wait for the runs to return."""
        for key in list(self._slots):
            self.cancel(key)
        tasks = [s.task for s in self._slots.values() if s.task is not None]
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    def _stop_running(self, slot: _Slot[K, R]) -> None:
        ticket = slot.ticket
        if ticket is not None and not ticket.cancelled:
            ticket.cancelled = True
            try:
                self._interrupt(ticket)
            except Exception:  # a failing interrupt must not lose the newer save
                log.exception("interrupting the run of %s failed", ticket.key)

    def _timer_fired(self, key: K, generation: int) -> None:
        slot = self._slots[key]
        slot.timer = None
        if generation != slot.generation:
            return
        if slot.task is not None:  # the interrupted older run is still returning
            slot.start_when_idle = True
            return
        self._start(key, slot)

    def _start(self, key: K, slot: _Slot[K, R]) -> None:
        ticket = Ticket(key, slot.generation)
        slot.ticket = ticket
        self.runs_started += 1
        slot.task = asyncio.get_running_loop().create_task(self._run_one(slot, ticket))

    async def _run_one(self, slot: _Slot[K, R], ticket: Ticket[K]) -> None:
        outcome: R | Exception
        try:
            outcome = await self._run(ticket)
        except Exception as error:
            outcome = error
        slot.task = None
        slot.ticket = None
        if ticket.generation == slot.generation:
            self._settle(slot, outcome)
            if self._on_outcome is not None:
                try:
                    self._on_outcome(ticket.key, outcome)
                except Exception:
                    log.exception("reporting the outcome for %s failed", ticket.key)
        else:
            log.debug("dropped the outcome of a superseded run of %s", ticket.key)
        if slot.start_when_idle:
            slot.start_when_idle = False
            self._start(ticket.key, slot)

    @staticmethod
    def _settle(slot: _Slot[K, R], outcome: R | Exception) -> None:
        waiters, slot.waiters = slot.waiters, []
        for waiter in waiters:
            if waiter.done():
                continue
            if isinstance(outcome, Exception):
                waiter.set_exception(outcome)
                waiter.exception()  # auto-refresh callers drop their future: no "never retrieved"
            else:
                waiter.set_result(outcome)
