"""The caller's side of the worker room: start the warm worker, run scripts, cancel, close.

This module never imports torch: the language server and the CLI use it to drive a worker
process started with the user's interpreter. The worker (``zygote``) does the imports; each
``run`` forks a fresh child there. Everything crosses a private socket (``channel``); the
script's own stdout/stderr go to a log file and, in part, to the ``log`` callback.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import itertools
import logging
import math
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from etviz_lsp import graph_files
from etviz_lsp.errors import EtvizError
from etviz_lsp.graph import inputs
from etviz_lsp.graph_files import GraphInfo
from etviz_lsp.worker import (
    bootstrap,
    handoff,
    lent_libraries,
    partial_stages,
    process_tree,
)
from etviz_lsp.worker.channel import Channel, ChannelClosed, Message
from etviz_lsp.worker.run_target import RunTarget
from etviz_lsp.worker.script_error import Kind, ScriptError, ScriptFailed

START_TIMEOUT = 600.0  # imports + warm-up on a loaded 2-core machine take well under this
WORKER_LOG_LIMIT = 8 * 1024 * 1024
_GRACE = 30.0  # how long past its own deadline we trust the worker to answer
_POLL = 0.2
MODES = ("fork", "portable")
MODE_VARIABLE = "ETVIZ_WORKER_MODE"

log = logging.getLogger(__name__)

@dataclass(frozen=True, slots=True)
class RunResult:
    output: Path
    graphs: list[GraphInfo]
    elapsed: float
    log_path: Path | None
    warnings: list[str] = field(default_factory=list)
    # .py files the run imported that are not stdlib, site-packages or etviz_lsp (the
    # caller filters by workspace roots), the script or -m module's file included.
    imported_files: list[Path] = field(default_factory=list)
    # .pte / .pt2 / .etrecord files the run wrote.
    artifacts: list[Path] = field(default_factory=list)
    # The numeric overlay (numeric_overlay.Overlay.summary): worst ops, notes, seconds
    numeric: dict[str, Any] = field(default_factory=dict)
    # Profile on this machine (issue 17, profile_run.Profiled.to_json), or why it failed.
    profile: dict[str, object] | None = None
    profile_error: str = ""
    # The memory plan (memory_overlay.write): summary lines (the timeline is in the manifest)
    memory: dict[str, Any] = field(default_factory=dict)
    # The files beside the graph JSON, as the child listed them last (graph_files)
    manifest: graph_files.Manifest | None = None
    # Why ops stayed on the CPU (not_delegated.RunReasons.summary): per lowering its graph
    # and its CPU ops, each with one line per partitioner that left it out
    not_delegated: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class StageUpdate:
    """The stages captured so far, written to ``path`` while the run goes on."""

    path: Path
    graphs: list[GraphInfo]
    elapsed: float  # seconds since the run started
    # seconds from the newest stage's call (torch.export.export...) returning in the
    # script to this update reaching the caller: conversion + write + relay
    latency: float = 0.0


def default_mode() -> str:
    """``$ETVIZ_WORKER_MODE`` when it names a mode; else fork on Linux, where a fork of the
    warm worker is safe and fastest, and the portable mode elsewhere: macOS's frameworks
    refuse to go on in a process forked after they loaded, Windows has no fork."""
    chosen = os.environ.get(MODE_VARIABLE, "").strip().lower()
    if chosen in MODES:
        return chosen
    if chosen:
        log.warning("%s=%s is not one of %s: ignored", MODE_VARIABLE, chosen, ", ".join(MODES))
    return "fork" if sys.platform.startswith("linux") else "portable"


def default_log_dir() -> Path:
    """``logs`` in the user cache folder (Linux ``~/.cache/etviz-lsp``, macOS
    ``~/Library/Caches/etviz-lsp``, Windows ``%LOCALAPPDATA%\\etviz-lsp\\Cache``)."""
    import platformdirs  # here: the worker process imports this module, and lacks it

    return Path(platformdirs.user_cache_dir("etviz-lsp", appauthor=False)) / "logs"


class WarmWorker:
    """A pre-imported worker process; ``run`` is blocking, ``cancel`` works from any thread.

    ``preload`` imports ExecuTorch (and its XNNPACK and quantization modules) at start;
    ``warm_up`` also runs a tiny export + quantize + lower once. Both pay off from the
    second run on (a language server); a single CLI run turns both off. ``mode``: "fork"
    (each run a fork of the warm worker) or "portable" (each run in a run host, a fresh
    process warmed before the run arrives: no fork); None: :func:`default_mode`.
    """

    def __init__(
        self,
        python: str | None = None,
        log: Callable[[str], None] | None = None,
        *,
        log_dir: Path | None = None,
        warm_up: bool = True,
        preload: bool = True,
        start_timeout: float = START_TIMEOUT,
        mode: str | None = None,
    ) -> None:
        self.python = python or sys.executable
        self.mode = mode or default_mode()
        if self.mode not in MODES:
            raise ValueError(f"worker mode {self.mode!r} is not one of {', '.join(MODES)}")
        self._log = log or (lambda _text: None)
        self.log_dir = log_dir or default_log_dir()
        self._warm_up = warm_up
        self._preload = preload
        self._start_timeout = start_timeout
        self._proc: subprocess.Popen[bytes] | None = None
        self._channel: Channel | None = None
        self._worker_log: IO[bytes] | None = None
        self.ready_info: Message | None = None
        self._run_lock = threading.Lock()
        # Held by whoever reads the worker's start-up messages: a run, or a pre-start
        # waiting in its own thread (``wait_until_ready``); the channel has one reader.
        self._ready_lock = threading.Lock()
        self._start_lock = threading.Lock()  # an early start and a run's may race
        self._closing = threading.Event()  # ends an early start's wait (a run's cancel does not)
        self._cancel = threading.Event()
        self._running: int | None = None
        self._child_pid: int | None = None
        self._ids = itertools.count(1)

    # -- life cycle -------------------------------------------------------------------

    def start(self) -> None:
        """Start the worker process (it imports in the background); no-op when running.
        Any thread: the first caller starts it, the others find it running."""
        with self._start_lock:
            self._start()

    def _start(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            return
        self._reset()
        self.log_dir.mkdir(parents=True, exist_ok=True)
        flags = ["--portable"] if self.mode == "portable" else []
        if self._warm_up:
            flags.append("--warm-up")
        if not self._preload:
            flags.append("--lean")
        flags += lent_libraries.argument()  # the user's interpreter may lack msgspec, psutil
        self._worker_log = _open_worker_log(self.log_dir / "worker.log")
        try:
            sock = self._launch_portable(flags) if self.mode == "portable" else self._launch(flags)
        except OSError as exc:
            raise ScriptFailed(ScriptError(
                "bad-input", self.python, message=f"cannot start the worker: {exc}"
            )) from exc
        self._channel = Channel(sock)
        self._closing.clear()

    def _popen(self, command: list[str], **extra: Any) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=self._worker_log, stderr=self._worker_log,
            cwd=self.log_dir,
            **process_tree.own_group(),  # the editor's Ctrl-C / job control never reaches it
            **extra,
        )

    def _launch(self, flags: list[str]) -> socket.socket:
        """The fork mode's worker (Linux): one end of a socket pair handed down by descriptor."""
        ours, theirs = socket.socketpair()
        try:
            command = bootstrap.command(self.python, [str(theirs.fileno()), *flags])
            self._proc = self._popen(command, pass_fds=[theirs.fileno()])
        except OSError:
            ours.close()
            raise
        finally:
            theirs.close()
        return ours

    def _launch_portable(self, flags: list[str]) -> socket.socket:
        """The portable mode's worker: no descriptor handed down (Windows has no pass_fds);
        it connects back to a loopback port with a one-time token (``handoff.py``)."""
        command = bootstrap.command(self.python, [handoff.ARGUMENT, *flags])
        self._proc, sock = handoff.start_connected(
            lambda environment: self._popen(command, env=environment))
        return sock


    @property
    def pid(self) -> int | None:
        """The worker process's id while it runs (its runs are its descendants)."""
        return self._proc.pid if self._proc is not None and self._proc.poll() is None else None

    @property
    def ready(self) -> bool:
        return self.ready_info is not None and self._proc is not None and self._proc.poll() is None

    def close(self) -> None:
        """Stop the worker and everything it started."""
        self._closing.set()
        self.cancel()
        proc, channel = self._proc, self._channel
        if channel is not None:
            with contextlib.suppress(ChannelClosed):
                channel.send({"op": "shutdown"})
        if proc is not None:
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process_tree.kill_run(proc.pid)
                proc.wait()
        self._reset()

    def __enter__(self) -> WarmWorker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def cancel(self) -> None:
        """Stop the current run (its whole process tree); its ``run`` raises cancelled."""
        self._cancel.set()
        self._send_cancel()

    def stop_soon(self) -> None:
        """:meth:`cancel` for a signal handler: only sets a flag; the thread in ``run``
        sends the cancel within a poll (a handler writing to the channel could cut
        through a message that thread is writing)."""
        self._cancel.set()

    def _send_cancel(self) -> None:
        channel, running = self._channel, self._running
        if channel is not None and running is not None:
            with contextlib.suppress(ChannelClosed):
                channel.send({"op": "cancel", "id": running})

    # -- runs -------------------------------------------------------------------------

    def run(
        self,
        source: Path | RunTarget,
        output: Path,
        *,
        timeout: float | None,
        cwd: Path | None = None,
        allow_pickle: bool = False,
        on_progress: Callable[[str], None] | None = None,
        on_stage: Callable[[StageUpdate], None] | None = None,
        partial_output: Path | None = None,
        numeric: bool = True,
        keep_program: bool = False,
        profile_iterations: int = 0,
        etdump: Path | None = None,
        numeric_gap: bool = False,
    ) -> RunResult:
        """Run a script or module (or read a file ``graph.inputs`` knows); graphs to ``output``.

        A plain path is a script run with no arguments (or a file to read). With ``on_stage``,
        each captured stage is written to ``partial_output`` (all stages so far) and
        announced as soon as it is converted; ``output`` is written only on success. A run
        that fails after writing stages raises :class:`ScriptFailed` with ``partial``: that
        file, marked partial (``partial_stages``). ``timeout`` None: no time limit.
        Callbacks run on this thread. ``keep_program`` keeps the run's ExecuTorch program
        beside ``output`` for :meth:`profile_kept`; ``profile_iterations`` > 0 also profiles
        it right after the run (``worker/profile_run.py``); ``etdump``, a run of the program
        elsewhere, is attributed instead (its latency on the program and lowered stages);
        ``numeric_gap`` keeps the program's ETRecord too, so its profiles record the runtime
        numeric gap.
        """
        if on_stage is not None and partial_output is None:
            raise ValueError("on_stage needs a partial_output to write the stages to")
        output = Path(output).absolute()
        partial = Path(partial_output).absolute() if partial_output is not None else None
        request, subject = _request(source, output, cwd, partial)
        request |= {
            "keep_program": keep_program, "profile_iterations": profile_iterations,
            "numeric": numeric, "etdump": str(Path(etdump).absolute()) if etdump else None,
            "numeric_gap": numeric_gap,
        }
        return self._send_run(request, subject, output, timeout, allow_pickle, on_progress,
                              on_stage, partial)

    def profile_kept(
        self, graph_json: Path, *, iterations: int, timeout: float | None,
        on_progress: Callable[[str], None] | None = None,
    ) -> RunResult:
        """Profile the program a run kept beside ``graph_json`` in a fresh child (the run's
        own child is gone); the same timeout, cancel and clean-up as a run."""
        output = Path(graph_json).absolute()
        request = _where(None, output, output.parent, None) | {
            "profile_kept": True, "profile_iterations": iterations,
        }
        return self._send_run(request, output, output, timeout, False, on_progress, None, None)

    def _send_run(
        self, request: Message, subject: Path, output: Path, timeout: float | None,
        allow_pickle: bool, on_progress: Callable[[str], None] | None,
        on_stage: Callable[[StageUpdate], None] | None, partial: Path | None,
    ) -> RunResult:
        with self._run_lock:
            self._cancel.clear()
            started = time.monotonic()
            channel = self._wait_ready(subject)
            run_id = next(self._ids)
            log_path = self.log_dir / _log_name(subject)
            before = partial_stages.Snapshot(partial)
            channel.send({
                **request, "op": "run", "id": run_id,
                "timeout": None if timeout is None else float(timeout),
                "allow_pickle": allow_pickle, "log": str(log_path),
            })
            self._running = run_id
            stages = _StageRelay(partial, on_stage, started)
            # No time limit: no deadline for the worker's answer either (Ctrl+C stops it).
            span = math.inf if timeout is None else timeout + _GRACE
            try:
                answer = self._await(channel, run_id, subject, span,
                                     on_progress or (lambda _stage: None), stages)
            except ScriptFailed as lost:  # the worker itself failed: the stages stay
                lost.partial = _mark_partial(before, lost.error)
                raise
            finally:
                self._running = None
                self._child_pid = None
        if answer.get("event") != "done":
            failed = ScriptFailed(ScriptError.from_json(answer.get("error") or {}))
            failed.imported_files = _paths(answer.get("imported_files"))
            failed.partial = _mark_partial(before, failed.error)
            raise failed
        return RunResult(
            output=output,
            graphs=_graph_infos(answer["graphs"]),
            elapsed=time.monotonic() - started,
            log_path=log_path,
            warnings=[str(w) for w in answer.get("warnings", [])],
            imported_files=_paths(answer.get("imported_files")),
            artifacts=_paths(answer.get("artifacts")),
            numeric=dict(answer.get("numeric") or {}),
            profile=answer.get("profile") if isinstance(answer.get("profile"), dict) else None,
            profile_error=str(answer.get("profile_error") or ""),
            memory=dict(answer.get("memory") or {}),
            manifest=_manifest(output, answer.get("manifest")),
            not_delegated=_dicts(answer.get("not_delegated")),
        )

    def wait_until_ready(self) -> Message | None:
        """Blocking: wait for a started worker to finish its imports and warm-up (an early
        start, in a thread of its own); starts nothing. Its ``ready`` message, or None when
        no worker runs or :meth:`close` ended the wait (a run's cancel does not).
        Raises :class:`ScriptFailed` when the worker could not start (it is then stopped:
        the next run starts a new one)."""
        with self._ready_lock:
            channel = self._channel
            if channel is None or self.pid is None:
                return None
            try:
                self._read_until_ready(channel, Path(self.python), self._closing)
            except ScriptFailed as failed:
                if failed.error.kind == "cancelled":
                    return None
                raise
            return self.ready_info

    def _wait_ready(self, source: Path) -> Channel:
        # An early start may be reading the start-up messages: wait for it, cancellable.
        while not self._ready_lock.acquire(timeout=_POLL):
            if self._cancel.is_set():
                raise _failed("cancelled", source, "cancelled while the worker was starting")
        try:
            self.start()
            channel = self._channel
            assert channel is not None
            self._read_until_ready(channel, source, self._cancel)
            return channel
        finally:
            self._ready_lock.release()

    def _read_until_ready(self, channel: Channel, source: Path, stop: threading.Event) -> None:
        deadline = time.monotonic() + self._start_timeout
        while self.ready_info is None:
            if stop.is_set():
                raise _failed("cancelled", source, "cancelled while the worker was starting")
            if time.monotonic() > deadline:
                self._kill()
                raise _failed("crash", source, "the worker did not start in time")
            try:
                message = channel.recv(_POLL)
            except ChannelClosed:
                raise _failed("crash", source, self._death_note("while starting")) from None
            if message is None:
                continue
            if message.get("event") == "fatal":
                self._kill()
                raise _failed("bad-input", source, str(message.get("message")))
            if message.get("event") == "ready":
                self.ready_info = message

    def _await(
        self, channel: Channel, run_id: int, source: Path, span: float,
        on_progress: Callable[[str], None], stages: _StageRelay,
    ) -> Message:
        """The run's answer; ``span``: how long to trust the worker, counted again from
        the run's ``started`` (a run host may still have been importing until then)."""
        deadline = time.monotonic() + span
        cancel_sent = False
        while True:
            if self._cancel.is_set() and not cancel_sent:
                cancel_sent = True
                with contextlib.suppress(ChannelClosed):
                    channel.send({"op": "cancel", "id": run_id})
            if time.monotonic() > deadline:  # the worker itself is stuck: drop it
                self._kill()
                raise _failed("timeout", source, "the worker stopped answering; restarted it")
            try:
                message = channel.recv(_POLL)
            except ChannelClosed:
                if self._cancel.is_set():  # closed while running: that is a cancel
                    self._kill()
                    raise _failed("cancelled", source, "cancelled (worker closed)") from None
                raise _failed("crash", source, self._death_note("during the run")) from None
            if message is None or message.get("id") != run_id:
                continue
            event = message.get("event")
            if event == "started":
                self._child_pid = int(message["pid"])
                deadline = time.monotonic() + span
            elif event == "progress":
                on_progress(str(message.get("stage")))
            elif event == "stage":
                stages.relay(message)
            elif event == "log":
                self._log(str(message.get("text", "")))
            elif event in ("done", "failed"):
                return message

    # -- failures of the worker itself ------------------------------------------------

    def _death_note(self, when: str) -> str:
        code = None
        if self._proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                code = self._proc.wait(timeout=5)
        self._kill()
        return (f"the worker process ({self.python}) exited {when} (status {code}); "
                f"see {self.log_dir / 'worker.log'}")

    def _kill(self) -> None:
        """Hard stop: the worker's group and the current run's group."""
        if self._child_pid is not None:
            process_tree.kill_run(self._child_pid)
        if self._proc is not None:
            process_tree.kill_run(self._proc.pid)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._proc.wait(timeout=5)
        self._reset()

    def _reset(self) -> None:
        if self._channel is not None:
            self._channel.close()
        if self._worker_log is not None:
            self._worker_log.close()
        self._proc = None
        self._channel = None
        self._worker_log = None
        self.ready_info = None


class _StageRelay:
    """Turns the child's ``stage`` messages into the caller's :class:`StageUpdate` calls."""

    def __init__(
        self, path: Path | None, on_stage: Callable[[StageUpdate], None] | None, started: float
    ) -> None:
        self._path = path
        self._on_stage = on_stage
        self._started = started

    def relay(self, message: Message) -> None:
        if self._on_stage is None or self._path is None:
            return
        returned_at = message.get("returned_at")
        latency = time.time() - returned_at if isinstance(returned_at, (int, float)) else 0.0
        self._on_stage(StageUpdate(
            self._path, _graph_infos(message.get("graphs") or []),
            time.monotonic() - self._started, max(0.0, latency),
        ))


def _mark_partial(
    before: partial_stages.Snapshot, error: ScriptError
) -> partial_stages.PartialStages | None:
    """The stages this run wrote before it failed, marked partial; None when it wrote none
    (a file left by an earlier run is not this run's) or they cannot be marked."""
    if before.path is None or not before.written():
        return None
    try:
        return partial_stages.mark(before.path, error)
    except EtvizError as exc:
        log.warning("%s", exc)
        return None


def _manifest(output: Path, data: object) -> graph_files.Manifest | None:
    """The child's manifest; a damaged one costs what it lists (logged), not the run."""
    if data is None:
        return None
    try:
        return graph_files.Manifest.from_json(output, data)
    except EtvizError as exc:
        log.warning("%s", exc)
        return None


def _graph_infos(graphs: list[Message]) -> list[GraphInfo]:
    return [
        GraphInfo(g["id"], int(g["node_count"]), int(g.get("op_nodes", 0)), int(g.get("layers", 0)))
        for g in graphs
    ]


def _paths(values: object) -> list[Path]:
    return [Path(str(v)) for v in values] if isinstance(values, list) else []


def _dicts(values: object) -> list[dict[str, Any]]:
    return [v for v in values if isinstance(v, dict)] if isinstance(values, list) else []


def _request(
    source: Path | RunTarget, output: Path, cwd: Path | None, partial: Path | None
) -> tuple[Message, Path]:
    """The run message's what/where part, after the checks; and the path messages name."""
    if isinstance(source, RunTarget):
        target = source
    else:
        path = Path(source).absolute()
        _check_input(path, output)
        if not inputs.is_script(path):  # a file to read (.pt2, .pte, ...), not to run
            return _where(None, output, cwd, partial) | {"source": str(path)}, path
        target = RunTarget(script=path)
    if target.script is not None:
        script = Path(target.script).absolute()
        _check_input(script, output)
        if not inputs.is_script(script):
            raise _failed("bad-input", script, "a script to run must be a .py file")
        target, subject = dataclasses.replace(target, script=script), script
    else:
        subject = Path(str(target.module))
    run_cwd = target.cwd if target.cwd is not None else cwd
    if run_cwd is not None and not Path(run_cwd).is_dir():
        raise _failed("bad-input", str(run_cwd), "working folder does not exist")
    if not output.parent.is_dir():
        raise _failed("bad-input", output, f"output folder {output.parent} does not exist")
    return _where(target, output, run_cwd, partial), subject


def _where(
    target: RunTarget | None, output: Path, cwd: Path | None, partial: Path | None
) -> Message:
    if partial is not None and partial == output:
        raise _failed("bad-input", partial, "the partial output must differ from the output")
    return {
        "target": target.to_json() if target is not None else None,
        "output": str(output),
        "cwd": str(Path(cwd or Path.cwd()).absolute()),
        "partial_output": str(partial) if partial is not None else None,
    }


def _open_worker_log(path: Path) -> IO[bytes]:
    """The worker's own stderr (import noise, our errors); restarted when it grows large."""
    mode = "wb" if path.exists() and path.stat().st_size > WORKER_LOG_LIMIT else "ab"
    return open(path, mode)  # noqa: SIM115 (closed in _reset)


def _check_input(source: Path, output: Path) -> None:
    if not source.exists():
        raise _failed("bad-input", source, "no such file")
    if not source.is_file():
        raise _failed("bad-input", source, "not a file")
    if inputs.kind_of(source) is None:
        raise _failed("bad-input", source, inputs.unsupported(source))
    if not output.parent.is_dir():
        raise _failed("bad-input", output, f"output folder {output.parent} does not exist")
    if output.resolve() == source.resolve():
        raise _failed("bad-input", output, "the output would overwrite the source")


def _failed(kind: Kind, file: Path | str, message: str) -> ScriptFailed:
    return ScriptFailed(ScriptError(kind, str(file), message=message))


def _log_name(source: Path) -> str:
    digest = hashlib.sha1(str(source).encode()).hexdigest()[:8]
    return f"{source.name}-{digest}.log"
