"""A run host (the portable mode): a fresh process, warm before its one run arrives.

Started by the warm worker (``host_pool.py``) as ``python -c BOOTSTRAP PKG --host STACK
[--warm-up] [--lean] [--lend DIR]...`` with ``$ETVIZ_HANDOFF`` set: it connects back first
(``handoff.connect``: loopback, one-time token; no descriptor is handed down, Windows has no
``pass_fds``), pays the same imports and warm-up as the fork mode's warm worker
(``zygote.boot``), says ``ready``, waits for one run message and runs it in this very process
(``supervisor.run_here``: output to the stdout pipe the warm worker reads, stack dumps into
the file ``STACK``), then exits. Until the run, what it prints goes to its stderr (the worker
log), not into the run's output. Nothing is forked after torch is imported. Its parent, the
warm worker, supervises it as it would a forked child; the host ends itself if that parent
goes away (``parent_watch``; on Linux also ``PR_SET_PDEATHSIG``).
"""

from __future__ import annotations

import os
import sys
from typing import Any

from etviz_lsp.worker import handoff, lent_libraries, parent_watch, process_tree
from etviz_lsp.worker.channel import Channel, ChannelClosed


def main(argv: list[str]) -> int:
    if not argv:
        print("usage: ... --host STACK [--warm-up] [--lean]", file=sys.stderr)
        return 2
    supervisor_end = Channel(handoff.connect())
    stack_path, flags = argv[0], argv[1:]
    output = os.dup(1)  # the run's; until then stdout goes where stderr goes
    os.dup2(2, 1)
    process_tree.die_with_parent()
    parent_watch.start()
    lent_libraries.borrow(argv)
    from etviz_lsp.worker import zygote

    try:
        zygote.boot(supervisor_end, warm_up="--warm-up" in flags, lean="--lean" in flags,
                    forks=False)
        message: Any = supervisor_end.recv(None)
    except ChannelClosed:
        return 0
    if not isinstance(message, dict) or message.get("op") != "run":
        return 0
    _run(message, supervisor_end, output, stack_path)
    return 0


def _run(message: dict[str, Any], supervisor_end: Channel, output: int, stack_path: str) -> None:
    from etviz_lsp.worker import script_run, supervisor

    try:
        request = script_run.Request.from_json(message)
        stack_file = open(stack_path, "w+b")  # noqa: SIM115 (lives as long as the process)
        supervisor.run_here(request, supervisor_end.sock, output, stack_file, 0)
    finally:
        os._exit(0)  # as a forked child: no teardown of what the script left
