"""A run host (the portable mode): a fresh process, warm before its one run arrives.

Started by the warm worker (``host_pool.py``) as ``python -c BOOTSTRAP PKG --host SOCK OUT
STACK [--warm-up] [--lean] [--lend DIR]...``: it pays the same imports and warm-up as the
fork mode's warm worker (``zygote.boot``), says ``ready`` on ``SOCK``, waits for one run
message and runs it in this very process (``supervisor.run_here``: output to ``OUT``, stack
dumps to ``STACK``), then exits. Nothing is forked after torch is imported. Its parent, the
warm worker, supervises it as it would a forked child; the host ends itself if that parent
goes away (``parent_watch``; on Linux also ``PR_SET_PDEATHSIG``).
"""

from __future__ import annotations

import os
import socket
import sys
from typing import Any

from etviz_lsp.worker import lent_libraries, parent_watch, process_tree
from etviz_lsp.worker.channel import Channel, ChannelClosed


def main(argv: list[str]) -> int:
    if len(argv) < 3 or not all(part.isdigit() for part in argv[:3]):
        print("usage: ... --host SOCK OUT STACK [--warm-up] [--lean]", file=sys.stderr)
        return 2
    sock, out_fd, stack_fd = (int(part) for part in argv[:3])
    supervisor_end = Channel(socket.socket(fileno=sock))
    process_tree.die_with_parent()
    parent_watch.start()
    lent_libraries.borrow(argv)
    from etviz_lsp.worker import zygote

    try:
        zygote.boot(supervisor_end, warm_up="--warm-up" in argv[3:], lean="--lean" in argv[3:],
                    forks=False)
        message: Any = supervisor_end.recv(None)
    except ChannelClosed:
        return 0
    if not isinstance(message, dict) or message.get("op") != "run":
        return 0
    _run(message, supervisor_end, out_fd, stack_fd)
    return 0


def _run(message: dict[str, Any], supervisor_end: Channel, out_fd: int, stack_fd: int) -> None:
    from etviz_lsp.worker import script_run, supervisor

    try:
        request = script_run.Request.from_json(message)
        stack_file = os.fdopen(stack_fd, "w+b")  # lives as long as the process
        supervisor.run_here(request, supervisor_end.sock, out_fd, stack_file, 0)
    finally:
        os._exit(0)  # as a forked child: no teardown of what the script left
