"""Debounce, newest-save-wins and cancel in lsp/jobs.py, with a fake run that can be killed."""

from __future__ import annotations

import asyncio

import pytest

from etviz_lsp.lsp.jobs import JobCancelled, Jobs, Ticket


class FakeWorker:
    """Runs take ``seconds``; ``interrupt`` ends a run early, as killing the child does."""

    def __init__(self, seconds: float = 0.2) -> None:
        self.seconds = seconds
        self.started: list[tuple[str, int]] = []
        self.finished: list[tuple[str, int]] = []
        self.interrupted: list[tuple[str, int]] = []
        self._kill: dict[int, asyncio.Event] = {}

    async def run(self, ticket: Ticket[str]) -> str:
        self.started.append((ticket.key, ticket.generation))
        kill = self._kill.setdefault(id(ticket), asyncio.Event())
        try:
            await asyncio.wait_for(kill.wait(), self.seconds)
        except asyncio.TimeoutError:
            self.finished.append((ticket.key, ticket.generation))
            return f"{ticket.key}@{ticket.generation}"
        raise RuntimeError(f"killed {ticket.key}@{ticket.generation}")

    def interrupt(self, ticket: Ticket[str]) -> None:
        self.interrupted.append((ticket.key, ticket.generation))
        self._kill.setdefault(id(ticket), asyncio.Event()).set()


def make(worker: FakeWorker, delay: float = 0.15) -> tuple[Jobs[str, str], list[object]]:
    outcomes: list[object] = []
    jobs: Jobs[str, str] = Jobs(
        worker.run,
        delay=delay,
        interrupt=worker.interrupt,
        on_outcome=lambda key, outcome: outcomes.append(outcome),
    )
    return jobs, outcomes


async def test_a_burst_of_saves_makes_one_run_of_the_last_version() -> None:
    worker = FakeWorker(seconds=0.05)
    # Saves 20 ms apart, a quiet window of 1 s: a pause of the test process (a garbage
    # collection, a busy machine) up to ~1 s still leaves the burst one burst.
    jobs, outcomes = make(worker, delay=1.0)
    futures = []
    for _ in range(10):
        futures.append(jobs.schedule("a.py"))
        await asyncio.sleep(0.02)
    results = await asyncio.gather(*futures)
    assert worker.started == [("a.py", 10)]
    assert results == ["a.py@10"] * 10
    assert outcomes == ["a.py@10"]


async def test_a_save_during_a_run_kills_it_and_the_newest_wins() -> None:
    worker = FakeWorker(seconds=0.5)
    jobs, outcomes = make(worker, delay=0.05)
    first = jobs.schedule("a.py")
    await asyncio.sleep(0.15)  # the first run is in flight
    assert jobs.running("a.py")
    second = jobs.schedule("a.py")
    assert worker.interrupted == [("a.py", 1)]
    assert await first == "a.py@2"  # the first caller gets the newest graph, not an error
    assert await second == "a.py@2"
    assert worker.started == [("a.py", 1), ("a.py", 2)]
    assert outcomes == ["a.py@2"]  # the killed run's error is never reported


async def test_the_newer_run_waits_until_the_killed_one_returned() -> None:
    overlapping = []
    active = set()

    async def run(ticket: Ticket[str]) -> str:
        if ticket.key in active:
            overlapping.append(ticket.generation)
        active.add(ticket.key)
        try:
            # ignores the interrupt for a while, as a child that takes time to die
            await asyncio.sleep(0.3)
            return str(ticket.generation)
        finally:
            active.discard(ticket.key)

    jobs: Jobs[str, str] = Jobs(run, delay=0.01, interrupt=lambda t: None)
    jobs.schedule("a.py")
    await asyncio.sleep(0.05)
    assert await jobs.schedule("a.py") == "2"
    assert overlapping == []


async def test_cancel_kills_the_run_and_fails_the_waiters() -> None:
    worker = FakeWorker(seconds=5)
    jobs, outcomes = make(worker, delay=0.01)
    future = jobs.schedule("a.py")
    await asyncio.sleep(0.1)
    assert jobs.cancel("a.py")
    with pytest.raises(JobCancelled):
        await future
    await jobs.close()
    assert worker.interrupted == [("a.py", 1)]
    assert worker.finished == []
    assert outcomes == []


async def test_cancel_before_the_debounce_fired_runs_nothing() -> None:
    worker = FakeWorker(seconds=0.01)
    jobs, _ = make(worker, delay=0.1)
    future = jobs.schedule("a.py")
    jobs.cancel("a.py")
    with pytest.raises(JobCancelled):
        await future
    await asyncio.sleep(0.2)
    assert worker.started == []


async def test_files_do_not_debounce_each_other() -> None:
    worker = FakeWorker(seconds=0.05)
    jobs, _ = make(worker, delay=0.05)
    a = jobs.schedule("a.py")
    b = jobs.schedule("b.py")
    assert await asyncio.gather(a, b) == ["a.py@1", "b.py@1"]
    assert sorted(worker.started) == [("a.py", 1), ("b.py", 1)]
    assert worker.interrupted == []


async def test_a_failed_run_reaches_the_caller() -> None:
    async def run(ticket: Ticket[str]) -> str:
        raise ValueError("broken script")

    jobs: Jobs[str, str] = Jobs(run, delay=0.0, interrupt=lambda t: None)
    with pytest.raises(ValueError, match="broken script"):
        await jobs.schedule("a.py")
