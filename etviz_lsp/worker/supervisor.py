"""One run, seen from the warm parent: fork (or take a run host), watch, enforce the
timeout, clean up.

The child (or the run host, in the portable mode: ``host_pool.py``) gets its own session
(one ``killpg`` reaches its process group), a private socket for progress and its result,
its stdout/stderr (read here into the run log, so a script printing megabytes never
blocks: ``run_streams.py``), and a file where ``faulthandler`` writes the stack on a crash
or when we ask before killing a script that hangs (the line it hung on). In the portable
mode the run's process tree is also recorded every second while it runs
(``process_tree.RunTree``): where no subreaper adopts orphans, that is how what lost its
parent is still found and killed.
Whatever happens, every process the run started is killed before we answer.
"""

from __future__ import annotations

import contextlib
import faulthandler
import math
import os
import re
import select
import signal
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from etviz_lsp.worker import process_tree, script_run
from etviz_lsp.worker.channel import Channel, ChannelClosed, Message
from etviz_lsp.worker.run_log import RunLog
from etviz_lsp.worker.run_streams import PipeOutput, RunOutput, StackFile
from etviz_lsp.worker.script_error import ScriptError
from etviz_lsp.worker.user_code import Site, UserCode

if TYPE_CHECKING:
    from etviz_lsp.worker.host_pool import HostPool

_TICK = 0.05
_STACK_DUMP_WAIT = 0.3
_REAP_WAIT = 5.0
_NOTE_EVERY = 1.0  # seconds between two records of a run's process tree (portable mode)
_FAULT_FRAME = re.compile(r'File "(?P<file>[^"]+)", line (?P<line>\d+)')


class CallerGone(Exception):
    """The caller closed the channel or asked us to shut down: stop after cleaning up."""


@dataclass
class _State:
    pid: int
    deadline: float
    poll: Callable[[], int | None]  # None while the run's process runs, then its exit code
    tree: process_tree.RunTree
    record_tree: bool = False  # note the tree while it runs (no subreaper to rely on)
    noted: float = -math.inf
    final: Message | None = None
    status: int | None = None  # exit code, negative: killed by that signal (as Popen's)
    cancelled: bool = False
    shutdown: bool = False
    main_file: str | None = None  # the file run as __main__, once the child found it
    streams: list[Any] = field(default_factory=list)


@dataclass
class _Launched:
    """A run's process as the supervisor sees it, forked or a run host's (portable)."""

    pid: int
    channel: Channel  # its progress, stages and result
    output: RunOutput  # its stdout and stderr
    stack_file: StackFile  # where faulthandler writes its stack
    poll: Callable[[], int | None]  # None while it runs, then its exit code (reaps it)


def supervise(
    message: Message, caller: Channel, num_threads: int, hosts: HostPool | None = None
) -> Message:
    """Run ``message``'s request in a forked child, or in a run host of ``hosts`` (the
    portable mode: no fork); returns the answer for the caller."""
    run_id = message["id"]
    request = script_run.Request.from_json(message)
    started = time.monotonic()
    if hosts is None:
        launched = _fork(request, caller, num_threads)
    else:
        taken = hosts.take(caller, run_id)
        if isinstance(taken, str):  # cancelled (or shut down) while its host got ready
            return _not_started(taken, message, started)
        taken.channel.send(message)
        launched = _Launched(taken.pid, taken.channel, taken.output, taken.stack_file,
                             taken.process.poll)
    log = RunLog(Path(message["log"]), lambda text: caller.send(
        {"event": "log", "id": run_id, "text": text}))
    caller.send({"event": "started", "id": run_id, "pid": launched.pid})
    # The time limit counts from here: a run host still importing is not the script's time.
    deadline = run_deadline(time.monotonic(), message.get("timeout"))
    state = _State(launched.pid, deadline, launched.poll, process_tree.RunTree(launched.pid),
                   record_tree=hosts is not None)
    try:
        why = _watch(state, caller, launched.channel, launched.output, log, run_id)
        answer = _finish(state, why, launched.channel, request, launched.stack_file, log,
                         message, caller)
    except BaseException:
        _stop_everything(state)  # _finish does it on the normal path
        raise
    finally:
        _drain_output(launched.output, log)
        launched.output.close()
        launched.channel.close()
        launched.stack_file.close()
        log.close()
    answer.update(id=run_id, log=str(log.path), elapsed=time.monotonic() - started)
    if state.shutdown:
        with contextlib.suppress(ChannelClosed):
            caller.send(answer)
        raise CallerGone("shutdown requested")
    return answer


def _fork(request: script_run.Request, caller: Channel, num_threads: int) -> _Launched:
    ours, theirs = socket.socketpair()
    out_read, out_write = os.pipe()
    stack_file = StackFile()  # closed by supervise
    pid = os.fork()
    if pid == 0:  # the child never returns from here
        _child(request, theirs, out_write, stack_file.file, [ours.fileno(), out_read,
                                                              caller.fileno()], num_threads)
    theirs.close()
    os.close(out_write)
    return _Launched(pid, Channel(ours), PipeOutput(out_read), stack_file, lambda: _reap(pid))


def _reap(pid: int) -> int | None:
    """The forked child's exit code once it exited (reaped here), None while it runs."""
    try:
        done, status = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:  # reaped already
        return 0
    return None if done == 0 else os.waitstatus_to_exitcode(status)


def _not_started(why: str, message: Message, started: float) -> Message:
    if why == "shutdown":
        raise CallerGone("shutdown requested")
    error = ScriptError("cancelled", str(message.get("source") or ""),
                        message="cancelled while the run's process was getting ready")
    return {"event": "failed", "id": message["id"], "error": error.to_json(),
            "elapsed": time.monotonic() - started}


def run_deadline(started: float, timeout: float | None) -> float:
    """When the run is stopped: ``timeout`` seconds after ``started``; never for None
    (the command line's default: a long export is normal, Ctrl+C stops it)."""
    if timeout is None:
        return math.inf
    return started + float(timeout)


def _watch(
    state: _State, caller: Channel, child: Channel, output: RunOutput, log: RunLog,
    run_id: Any,
) -> str:
    """Relay until the child exits, the time is up, or the caller cancels: says which."""
    watched: list[Any] = [caller.sock, child.sock, output]
    while True:
        if _child_exited(state):
            return "exited"
        now = time.monotonic()
        if state.record_tree and now - state.noted >= _NOTE_EVERY:
            state.tree.note()
            state.noted = now
        if now >= state.deadline:
            return "timeout"
        if state.cancelled or state.shutdown:
            return "cancelled"
        # Once the result is in, the child exits within moments: look again sooner.
        tick = _TICK / 10 if state.final is not None else _TICK
        readable, _, _ = select.select(watched, [], [], min(tick, state.deadline - now))
        if caller.sock in readable:
            _read_caller(state, caller)
        if child.sock in readable:
            _read_child(state, caller, child, run_id, watched)
        if output in readable:
            data = output.read()
            if data:
                log.write(data)
            else:
                watched.remove(output)


def _child_exited(state: _State) -> bool:
    state.status = state.poll()
    return state.status is not None


def _read_caller(state: _State, caller: Channel) -> None:
    try:
        caller.read_available()
    except ChannelClosed:
        state.shutdown = True
        return
    while (message := caller.pop()) is not None:
        if message.get("op") == "cancel":
            state.cancelled = True
        elif message.get("op") == "shutdown":
            state.shutdown = True


def _read_child(
    state: _State, caller: Channel, child: Channel, run_id: Any, watched: list[Any]
) -> None:
    try:
        child.read_available()
    except ChannelClosed:
        if child.sock in watched:
            watched.remove(child.sock)
    while (message := child.pop()) is not None:
        event = message.get("event")
        if event in ("progress", "stage"):
            caller.send({**message, "id": run_id})
        elif event == "main":
            state.main_file = str(message.get("file"))
        elif message.get("event") in ("done", "failed"):
            state.final = message


def _finish(
    state: _State, why: str, child: Channel, request: script_run.Request,
    stack_file: StackFile, log: RunLog, message: Message, caller: Channel,
) -> Message:
    killed = 0
    if why in ("timeout", "cancelled"):
        _dump_stack(state.pid)
        killed = len(process_tree.descendants(os.getpid()))
    _stop_everything(state)
    _drain_child(state, caller, child, message["id"])
    if why == "exited" and state.final is not None:
        return dict(state.final)
    site = _stack_site(stack_file, request, state.main_file)
    file = site.file if site else (state.main_file or str(request.source or request.label))
    line = site.line if site else None
    if why == "timeout":
        error = ScriptError(
            "timeout", file, line,
            message=f"timed out after {float(message['timeout']):g} s; "
            f"stopped the script and {_processes(killed)}",
        )
    elif why == "cancelled":
        error = ScriptError(
            "cancelled", file, line,
            message=f"cancelled; stopped the script and {_processes(killed)}",
        )
    else:
        error = ScriptError("crash", file, line, message=_crash_message(state.status))
    log.note(str(error))
    return {"event": "failed", "error": error.to_json()}


def _drain_child(state: _State, caller: Channel, child: Channel, run_id: Any) -> None:
    """Messages sent just before the child exited (its result, usually)."""
    while not child.closed:
        readable, _, _ = select.select([child.sock], [], [], 0.2)
        if not readable:
            return
        _read_child(state, caller, child, run_id, [])


def _processes(count: int) -> str:
    return "its process" if count <= 1 else f"its {count} processes"


def _crash_message(status: int | None) -> str:
    if status is not None and status < 0:
        try:
            name = signal.Signals(-status).name
        except ValueError:
            name = f"signal {-status}"
        return f"the script crashed ({name}) before reporting a result"
    return (
        f"the script's process exited with status {status} before reporting a result "
        "(os._exit, or a crash in native code)"
    )


def _dump_stack(pid: int) -> None:
    """Ask the child (faulthandler on SIGUSR1) where it is, so the error names that line."""
    if not hasattr(signal, "SIGUSR1"):
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGUSR1)
        time.sleep(_STACK_DUMP_WAIT)


def _stack_site(
    stack_file: StackFile, request: script_run.Request, main_file: str | None
) -> Site | None:
    """The user's most recent frame in a faulthandler dump (most recent call first)."""
    target = request.target
    if target is None or main_file is None:
        return None
    dump = stack_file.read_all()
    user = UserCode(Path(main_file), root=request.cwd if target.module else None)
    for block in dump.split("\n\n"):
        for match in _FAULT_FRAME.finditer(block):
            if user.owns(match["file"]):
                return Site(match["file"], int(match["line"]))
    return None


def _stop_everything(state: _State) -> None:
    state.tree.kill()
    # Reaped before we answer: a killed process with threads (a run host's) is a zombie
    # that cannot be reaped until its last thread has exited, a moment later.
    deadline = time.monotonic() + _REAP_WAIT
    while state.poll() is None and time.monotonic() < deadline:
        time.sleep(_TICK / 10)
    process_tree.kill_descendants()


def _drain_output(output: RunOutput, log: RunLog) -> None:
    """Read what is left of the output; every writer is dead by now, so EOF comes."""
    while True:
        readable, _, _ = select.select([output], [], [], 0.2)
        if not readable:
            return
        data = output.read()
        if not data:
            return
        log.write(data)


def _child(
    request: script_run.Request, sock: socket.socket, out_write: int, stack_file: IO[bytes],
    close: list[int], num_threads: int,
) -> None:
    """The forked child: its own session, the run, then ``os._exit`` (no parent teardown)."""
    try:
        os.setsid()
        process_tree.die_with_parent()
        for fd in close:
            with contextlib.suppress(OSError):
                os.close(fd)
        run_here(request, sock, out_write, stack_file, num_threads)
    finally:
        os._exit(0)


def run_here(
    request: script_run.Request, sock: socket.socket, out_write: int, stack_file: IO[bytes],
    num_threads: int,
) -> None:
    """The run in this process (a forked child, or a run host): stack dumps to
    ``stack_file`` (on a crash, or when asked before a kill), output to ``out_write``."""
    faulthandler.enable(file=stack_file, all_threads=False)
    if hasattr(signal, "SIGUSR1"):  # not on Windows: a timeout there names no line
        faulthandler.register(signal.SIGUSR1, file=stack_file, all_threads=False)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    script_run.prepare_process(request, out_write, num_threads)
    script_run.run(request, Channel(sock))
    sys.stdout.flush()
    sys.stderr.flush()
