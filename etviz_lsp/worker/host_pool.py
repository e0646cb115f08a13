"""The portable mode's run hosts, seen from the warm worker: no process forked after torch.

macOS's frameworks refuse to go on in a process forked after they loaded, and Windows has
no fork; so instead of forking itself per run, the warm worker (light: it imports no torch
in this mode) keeps one *run host* ready: a fresh process started with the user's
interpreter (``bootstrap.command``) that pays the imports and the warm-up, says ``ready``,
and waits for one run (``run_host.py``). A run is handed to it and supervised exactly as a
forked child (``supervisor.py``: relay, timeout, cancel, stack dump, kill everything);
the host never serves a second run, so a run sees no module state of the one before.

The next host is started when a run ends, not when it starts: on two cores a host
importing torch beside a running export slows that export down, and a save rarely follows
the previous one within the few seconds a host takes. A run that arrives before its host
is ready waits for it (and can be cancelled meanwhile). Only the first host runs the
warm-up (a tiny export, quantization and lowering: first-call costs): a later host would
be ready ~10 s later with it (twice that on a loaded machine), and a save that came
meanwhile would wait for it; without it a run pays its own first calls. A lean worker's
hosts (one CLI run) import torch ahead, not ExecuTorch.

Nothing is handed down by descriptor (Windows has no ``pass_fds``): the host's channel is a
loopback connection it opens with a one-time token (``handoff.py``), its output the pipe
``Popen`` gives it (relayed to a socket: ``run_streams.RelayedOutput``), its stack file
named by path. It starts in a process group of its own (``process_tree.own_group``).
"""

from __future__ import annotations

import contextlib
import select
import subprocess
import sys
from dataclasses import dataclass
from typing import Literal

from etviz_lsp.worker import bootstrap, handoff, process_tree
from etviz_lsp.worker.channel import Channel, ChannelClosed, Message
from etviz_lsp.worker.run_streams import RelayedOutput, StackFile


class HostFailed(Exception):
    """A run host ended or refused before its run (its words are in the worker log)."""


@dataclass
class Host:
    process: subprocess.Popen[bytes]
    channel: Channel  # ready, then the run's progress, stages and result
    output: RelayedOutput  # the run's stdout and stderr
    stack_file: StackFile  # where its faulthandler writes
    ready: Message | None = None

    @property
    def pid(self) -> int:
        return self.process.pid


class HostPool:
    """At most one host waiting; ``flags``: the hosts' ``--lean``, ``--lend``."""

    def __init__(self, flags: list[str]) -> None:
        self._flags = flags
        self._next: Host | None = None

    def prepare(self) -> None:
        """Start the next host unless one is waiting."""
        if self._next is None:
            self._next = _start(self._flags)

    def first_ready(self, flags: list[str]) -> Message:
        """At the worker's start: the first host (started with ``flags``: it may warm up,
        the later ones do not) and its ``ready`` (or ``fatal``) message."""
        try:
            if self._next is None:
                self._next = _start(flags)
        except OSError as exc:
            return {"event": "fatal", "message": f"cannot start a run host: {exc}"}
        host = self._next
        try:
            while host.ready is None:
                message = host.channel.recv(None)
                if message is not None and message.get("event") in ("ready", "fatal"):
                    host.ready = message
        except ChannelClosed:
            self.close()
            return {"event": "fatal", "message": _gone(host)}
        if host.ready.get("event") == "fatal":
            self.close()
        return host.ready

    def take(self, caller: Channel, run_id: object) -> Host | Literal["cancelled", "shutdown"]:
        """The ready host for run ``run_id`` (waiting for it while reading the caller),
        or why there is none: the run was cancelled, or the caller shut down."""
        if self._next is None:
            self._next = _start(self._flags)
        host = self._next
        while host.ready is None:
            readable, _, _ = select.select([caller.sock, host.channel.sock], [], [])
            if caller.sock in readable and (why := _interrupted(caller)) is not None:
                return why
            if host.channel.sock in readable:
                _read_ready(self, host)
        self._next = None
        return host

    def close(self) -> None:
        """End the waiting host (the worker is stopping, or it failed)."""
        host, self._next = self._next, None
        if host is not None:
            _end(host)


def _start(flags: list[str]) -> Host:
    stack_file = StackFile()
    command = bootstrap.command(sys.executable, [bootstrap.HOST_FLAG, stack_file.path, *flags])
    try:
        process, sock = handoff.start_connected(lambda environment: subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, env=environment,
            **process_tree.own_group(),  # one killpg ends the run and what stayed in its group
        ))
    except OSError:
        stack_file.close()
        raise
    assert process.stdout is not None  # stdout=PIPE
    return Host(process, Channel(sock), RelayedOutput(process.stdout), stack_file)


def _interrupted(caller: Channel) -> Literal["cancelled", "shutdown"] | None:
    try:
        caller.read_available()
    except ChannelClosed:
        return "shutdown"
    why: Literal["cancelled", "shutdown"] | None = None
    while (message := caller.pop()) is not None:
        if message.get("op") == "shutdown":
            return "shutdown"
        if message.get("op") == "cancel":
            why = "cancelled"
    return why


def _read_ready(pool: HostPool, host: Host) -> None:
    try:
        host.channel.read_available()
    except ChannelClosed:
        pool.close()
        raise HostFailed(_gone(host)) from None
    while (message := host.channel.pop()) is not None:
        if message.get("event") == "fatal":
            pool.close()
            raise HostFailed(str(message.get("message")))
        if message.get("event") == "ready":
            host.ready = message


def _gone(host: Host) -> str:
    with contextlib.suppress(subprocess.TimeoutExpired):
        host.process.wait(timeout=5)
    return (f"the run host (pid {host.pid}) exited while starting (status "
            f"{host.process.returncode}); see the worker log")


def _end(host: Host) -> None:
    process_tree.kill_run(host.pid)
    with contextlib.suppress(subprocess.TimeoutExpired):
        host.process.wait(timeout=5)
    host.channel.close()
    host.output.close()
    host.stack_file.close()
