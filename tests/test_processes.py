"""Process facts (``etviz_lsp/processes.py``), the same code on Linux, macOS and Windows:
real processes, real kills; the fallback a worker has without psutil; the explorer's
"is the recorded pid still our server" by command line and create time."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from etviz_lsp import processes
from etviz_lsp.explorer import manager, state
from etviz_lsp.worker import process_tree

# A parent that starts a child that starts a sleeper, each printing its pid.
_CHAIN = """
import subprocess, sys, time
depth = int(sys.argv[1])
if depth:
    subprocess.Popen([sys.executable, "-c", sys.argv[2], str(depth - 1), sys.argv[2]])
print("up", flush=True)
time.sleep(60)
"""


def _sleeper(*extra: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", *extra])


def _until(check, seconds: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_a_process_is_alive_until_it_exits_and_a_zombie_is_not() -> None:
    child = _sleeper()
    try:
        assert processes.alive(child.pid)
        os.kill(child.pid, signal.SIGKILL)
        # exited but not reaped: a zombie, which runs nothing
        _until(lambda: not processes.alive(child.pid))
        assert child.poll() is not None
    finally:
        child.kill()
        child.wait()
    assert not processes.alive(child.pid)


def test_a_pid_names_the_same_process_only_with_its_create_time() -> None:
    child = _sleeper()
    try:
        who = processes.identity(child.pid)
        assert who is not None and abs(who.created - time.time()) < 30
        assert processes.still(who)
        # the same pid with another create time: a reused pid, not the process we meant
        assert not processes.still(processes.Identity(child.pid, who.created - 5))
    finally:
        child.kill()
        child.wait()
    assert not processes.still(who)


def test_a_tree_is_found_leaves_first_and_killed_whole() -> None:
    top = subprocess.Popen([sys.executable, "-c", _CHAIN, "2", _CHAIN])
    try:
        _until(lambda: len(processes.descendants(top.pid)) == 2)
        below = processes.descendants(top.pid)
        leaf, middle = below
        assert processes.descendants(middle) == [leaf]  # the deepest comes first
        assert processes.kill_tree(top.pid) == 3
        top.wait(10)
        _until(lambda: not processes.alive(leaf) and not processes.alive(middle))
    finally:
        top.kill()
        top.wait()


def test_a_run_tree_kills_what_lost_its_parent_leaves_first(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """What Windows needs (no subreaper there: an orphan is below no one we ask): a process
    whose parent exited is still killed because it was recorded while its parent lived, and
    the kills go deepest first. The real kills, only recorded in order."""
    top = subprocess.Popen([sys.executable, "-c", _CHAIN, "3", _CHAIN])
    order: list[int] = []
    below: list[int] = []
    real_kill = processes.kill
    monkeypatch.setattr(processes, "kill", lambda pid: order.append(pid) or real_kill(pid))
    try:
        _until(lambda: len(processes.descendants(top.pid)) == 3)
        tree = process_tree.RunTree(top.pid)
        tree.note()
        below[:] = processes.descendants(top.pid)
        leaf, lower, upper = below
        real_kill(lower)  # the leaf's parent exits: the leaf is orphaned, re-parented away
        _until(lambda: leaf not in processes.descendants(top.pid))
        assert processes.alive(leaf)
        tree.kill()
        _until(lambda: not any(map(processes.alive, (leaf, upper, top.pid))))
        # leaf before its ancestors; the dead one (a zombie now) not signalled again
        assert [pid for pid in order if pid in (leaf, lower, upper, top.pid)] == [
            leaf, upper, top.pid]
    finally:
        top.kill()
        top.wait()
        for pid in below:
            real_kill(pid)


def test_without_psutil_a_worker_still_knows_what_os_knows(tmp_path: Path) -> None:
    """The worker's fallback (an interpreter where even the lent psutil cannot load)."""
    code = (
        "import sys, subprocess, json\n"
        "sys.modules['psutil'] = None\n"
        "from etviz_lsp import processes\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        "facts = [processes.available(), processes.alive(child.pid),\n"
        "         processes.descendants(0), processes.thread_count(), processes.kill(child.pid)]\n"
        "child.wait()\n"
        "print(json.dumps(facts + [processes.alive(child.pid)]))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, timeout=60)
    assert json.loads(done.stdout) == [False, True, [], 0, True, False]


def test_the_recorded_pid_is_our_server_only_if_it_started_before_the_record() -> None:
    """Its command line names the serve module, and a reused pid started after the record."""
    server_like = _sleeper(manager.SERVE_MODULE)
    stranger = _sleeper()
    try:
        started = processes.created(server_like.pid)
        assert started is not None

        def record(pid: int, when: float) -> state.ServerRecord:
            return state.ServerRecord(port=1, pid=pid, token="t", owner="test", started=when,
                                      cache_dir="/nowhere")

        assert manager._is_our_server(record(server_like.pid, time.time()))
        assert not manager._is_our_server(record(server_like.pid, started - 60))
        assert not manager._is_our_server(record(stranger.pid, time.time()))
    finally:
        for child in (server_like, stranger):
            child.kill()
            child.wait()
    assert not manager._is_our_server(record(server_like.pid, time.time()))


@pytest.mark.asyncio
async def test_the_editor_watch_ends_when_the_editor_exits() -> None:
    from etviz_lsp.lsp import editor_watch

    editor = _sleeper()
    ended: list[float] = []
    watching = editor_watch.watch_editor(editor.pid, lambda: ended.append(time.monotonic()),
                                         interval=0.05)
    task = asyncio.ensure_future(watching)
    await asyncio.sleep(0.3)
    assert not ended
    editor.kill()
    killed = time.monotonic()
    await asyncio.wait_for(task, 5)
    editor.wait()
    assert ended and ended[0] - killed < 1.0
