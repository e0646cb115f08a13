"""The warm worker: imports torch and ExecuTorch once, then forks a fresh child per run
(the fork mode); or, in the portable mode (no fork: macOS, Windows, ``ETVIZ_WORKER_MODE``),
hands each run to a run host that paid the same imports before the run came
(``host_pool.py``, ``run_host.py``).

Started by :class:`etviz_lsp.worker.warm_worker.WarmWorker` with the user's interpreter
(``python -m etviz_lsp.worker FD``), it talks to its caller over the inherited socket ``FD``
(fork mode) or, in the portable mode, a loopback connection it opens (``handoff.py``).
Start-up pays the imports (several seconds) and optionally a warm-up (one tiny export,
quantization and XNNPACK lowering, which fills torch's and ExecuTorch's first-call caches);
every run then forks from this state, so a run pays neither and starts from a clean module
state (nothing a script changes survives its run).

Forking a process that imported torch is safe only while it has no worker threads: the
warm-up runs with one intra-op thread and without tqdm's monitor thread, and the thread
count is checked and reported. Each child gets the original thread count back.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import importlib.util
import os
import sys
import time
import traceback
from typing import Any

from etviz_lsp import processes, run_requirements
from etviz_lsp.worker import handoff, host_pool, lent_libraries, parent_watch, process_tree
from etviz_lsp.worker.channel import Channel, ChannelClosed

REQUIRED = ("torch", "torch.export")
# Modules most export scripts import: paid here once instead of in every run. A lean
# worker (one CLI run) imports none of them, torch included: see `_boot`.
PRELOAD_EXECUTORCH = (
    "executorch.exir",
    "executorch.exir.backend.backend_api",
    "executorch.backends.xnnpack.partition.xnnpack_partitioner",
    "executorch.backends.xnnpack.quantizer.xnnpack_quantizer",
    "torchao.quantization.pt2e.quantize_pt2e",
)
PRELOAD_TORCH = (
    "torch.export._trace",
    "torch.fx.experimental.proxy_tensor",
    "etviz_lsp.graph.readers.fx_reader",
    "etviz_lsp.graph.readers.programs",
    "etviz_lsp.graph.readers.pt2_load",
)
PRELOAD = (  # torch-free: a lean worker has these too
    "etviz_lsp.graph.convert",
    "etviz_lsp.graph.core.writer",
    "etviz_lsp.worker.script_run",
    "etviz_lsp.worker.supervisor",
)


def main(argv: list[str]) -> int:
    if not argv or not (argv[0].isdigit() or argv[0] == handoff.ARGUMENT):
        print(f"usage: python -m etviz_lsp.worker FD|{handoff.ARGUMENT} [--warm-up] [--lean] "
              "[--portable]", file=sys.stderr)
        return 2
    caller = Channel(handoff.channel_socket(argv[0]))
    if sys.path and sys.path[0] in ("", os.getcwd()):
        del sys.path[0]  # `-m` put the start folder first: a workspace file must not shadow torch
    process_tree.become_subreaper()
    lent_libraries.borrow(argv)
    flags = argv[1:]
    hosts = None
    try:
        if "--portable" in flags:
            parent_watch.start()  # no fork in this mode: a thread may watch the caller
            hosts = _start_hosts(caller, flags)
            num_threads = 0
        else:
            num_threads = boot(caller, warm_up="--warm-up" in flags, lean="--lean" in flags)
        _serve(caller, num_threads, hosts)
    except ChannelClosed:
        pass
    finally:
        if hosts is not None:
            hosts.close()
        process_tree.kill_descendants()
        caller.close()
    return 0


def _start_hosts(caller: Channel, flags: list[str]) -> host_pool.HostPool:
    """The portable mode's start: the first run host's imports are this worker's; its
    ``ready`` (or ``fatal``) goes to the caller as ours. This process imports no torch."""
    started = time.monotonic()
    host_flags = [f for f in ("--lean",) if f in flags] + lent_libraries.lent(flags)
    # Only the first host warms up (as a fork-mode worker does, once): a later one that
    # did would be ready ~10 s later, and a save within that waits for it (bench/README.md).
    first = host_flags + (["--warm-up"] if "--warm-up" in flags else [])
    hosts = host_pool.HostPool(host_flags)
    ready = hosts.first_ready(first)
    caller.send({**ready, "seconds": time.monotonic() - started, "mode": "portable"})
    if ready.get("event") != "ready":
        raise ChannelClosed("cannot start")
    return hosts


def boot(caller: Channel, warm_up: bool, lean: bool, forks: bool = True) -> int:
    """Imports, capture hooks, warm-up; returns the thread count runs get back (0: as is).

    A lean worker (one CLI run, nothing to reuse) imports no torch: its one run child
    imports it as ``python -m`` would. Whatever the child touches of memory it shares with
    this process is copied; with torch imported here that was ~150 MB more than the plain
    run of an LLM export (issue 24), for imports the run pays either way. A run host
    (``forks`` False: it runs its one script itself) keeps torch's threads as they are,
    and imports torch even when lean: its run would, and nothing is forked from it."""
    started = time.monotonic()
    lacking = run_requirements.for_runs()  # torch / ExecuTorch are the user's: say which
    if lacking is not None:
        caller.send({"event": "fatal", "message": lacking})
        raise ChannelClosed("cannot start")
    _require(caller, lean and forks)
    preload: tuple[str, ...] = PRELOAD_EXECUTORCH + PRELOAD_TORCH + PRELOAD
    if lean:  # a lean run host imports torch ahead: no fork here, so no pages get copied
        preload = PRELOAD if forks else PRELOAD_TORCH + PRELOAD
    missing = [name for name in preload if not _try_import(name)]
    from etviz_lsp.worker import capture  # wraps what is loaded, hooks the imports of the rest

    wrapped = capture.install()
    num_threads = _single_threaded() if forks and not lean else 0
    warmed = _warm_up() if warm_up else None
    if forks:
        gc.collect()
        gc.freeze()  # forked children then copy fewer pages when the collector runs
    caller.send({
        "event": "ready",
        "python": sys.executable,
        "seconds": time.monotonic() - started,
        "missing": missing,
        "wrapped": wrapped,
        "warm_up": warmed,
        "threads": processes.thread_count(),
        "num_threads": num_threads,
        "mode": "fork" if forks else "portable",
    })
    return num_threads


def _require(caller: Channel, lean: bool) -> None:
    """torch importable (lean: findable, without importing it), else a fatal message."""
    # find_spec of a submodule imports its package: a lean worker asks for packages only.
    for name in [n for n in REQUIRED if "." not in n] if lean else REQUIRED:
        try:
            if not lean:
                importlib.import_module(name)
            elif importlib.util.find_spec(name) is None:
                raise ModuleNotFoundError(f"No module named {name!r}")
        except Exception as exc:
            caller.send({"event": "fatal", "message": f"{sys.executable} cannot import "
                         f"{name}: {type(exc).__name__}: {exc}"})
            raise ChannelClosed("cannot start") from exc


def _try_import(name: str) -> bool:
    try:
        importlib.import_module(name)
    except Exception:  # optional: a user's interpreter may lack ExecuTorch
        print(f"etviz worker: optional import {name} failed:\n{traceback.format_exc()}",
              file=sys.stderr)
        return False
    return True


def _single_threaded() -> int:
    """One intra-op thread and no tqdm monitor here; returns the count runs get back."""
    import torch

    with contextlib.suppress(ImportError):
        import tqdm

        tqdm.tqdm.monitor_interval = 0
    count = torch.get_num_threads()
    torch.set_num_threads(1)
    return count


def _warm_up() -> str:
    """Run each first-call path once on a tiny model; failures only cost the saving."""
    started = time.monotonic()
    try:
        from etviz_lsp.worker import warm_up

        warm_up.exercise()
    except Exception:
        print(f"etviz worker: warm-up failed:\n{traceback.format_exc()}", file=sys.stderr)
        return "failed"
    return f"{time.monotonic() - started:.1f} s"


def _serve(caller: Channel, num_threads: int, hosts: host_pool.HostPool | None) -> None:
    from etviz_lsp.worker import supervisor
    from etviz_lsp.worker.script_error import ScriptError

    while True:
        message: Any = caller.recv(None)
        op = message.get("op") if isinstance(message, dict) else None
        if op == "shutdown":
            return
        if op != "run":
            continue  # a cancel that arrived after its run ended
        try:
            answer = supervisor.supervise(message, caller, num_threads, hosts)
        except (supervisor.CallerGone, ChannelClosed):
            return
        except Exception as exc:  # a bug of ours, or a run host that failed: answer, serve on
            trace = traceback.format_exc()
            print(trace, file=sys.stderr)
            error = ScriptError("crash", str(message.get("source", "")),
                                message=f"worker error: {exc!r}", traceback=trace)
            answer = {"event": "failed", "id": message.get("id"), "error": error.to_json()}
        caller.send(answer)
        if hosts is not None:
            hosts.prepare()  # the next run's host imports now, not during this run
