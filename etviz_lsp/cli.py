"""Command line: ``etviz-lsp --once FILE [--serve]`` converts one file (and shows it in the
shared Model Explorer server); ``--stop-server`` stops that server; with no FILE (or with
``--stdio``) it is the language server over stdio."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import NoReturn

from etviz_lsp import __version__
from etviz_lsp.errors import EtvizError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="etviz-lsp",
        description="Show torch.export / ExecuTorch programs as Model Explorer graphs.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument(
        "--once", metavar="FILE", type=Path,
        help="convert FILE (.pt2, .pte, .etrecord, or an export script .py: runs it) and exit",
    )
    parser.add_argument(
        "--etrecord", metavar="FILE", type=Path,
        help="with --once on a .pte: the ETRecord that links its instructions to the edge ops "
        "(default: the .etrecord of the same name beside it, if there is one)",
    )
    parser.add_argument(
        "-o", "--output", type=Path, help="graph JSON to write (default: FILE's folder/.etviz/)"
    )
    parser.add_argument(
        "--timeout", type=float, default=None, metavar="S",
        help="stop an export script after S seconds (default: 600)",
    )
    parser.add_argument(
        "--serve", action="store_true", help="with --once: show the graph in the shared server"
    )
    parser.add_argument(
        "--no-browser", action="store_true", help="with --serve: only print the URL"
    )
    parser.add_argument("--port", type=int, help="port for a newly started server (default: free)")
    parser.add_argument(
        "--stop-server", action="store_true", help="stop the shared Model Explorer server"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log details to stderr")
    # No --once: the language server over stdio. Editors append --stdio (and some a pid).
    parser.add_argument("--stdio", action="store_true", help="run the language server (default)")
    parser.add_argument("--clientProcessId", type=int, help=argparse.SUPPRESS)
    return parser


def run() -> NoReturn:
    """The ``etviz-lsp`` program (and ``python -m etviz_lsp``): :func:`main`, then exit.

    After ``--once`` on a ``.pt2`` nothing is left to clean up (the JSON is written and
    on disk; no child process, thread or temp file), yet the interpreter's own exit would
    still collect and free every module and cache, ~50 ms after a 20k-node graph: a
    fifteenth of the whole run. So that one job ends the process at once, output flushed.
    """
    argv = sys.argv[1:]
    code = main(argv)
    if _converts_a_pt2(build_parser().parse_args(argv)):
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


def _converts_a_pt2(args: argparse.Namespace) -> bool:
    from etviz_lsp.graph import inputs

    kind = inputs.kind_of(args.once) if args.once is not None else None
    return kind is not None and not kind.runs_script and not args.serve


def main(argv: list[str] | None = None) -> int:
    """The command line, in this process; returns the exit code (tests call this)."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        stream=sys.stderr,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    if args.stop_server:
        return _stop_server()
    if args.once is None:
        from etviz_lsp.lsp.server import run_stdio

        return run_stdio(verbose=args.verbose, client_pid=args.clientProcessId)
    code = _once(args.once, args.output, args.timeout, args.verbose, args.etrecord)
    if code == 0 and args.serve:
        output = args.output if args.output is not None else _default_output(args.once)
        return _serve(output, open_browser=not args.no_browser, port=args.port)
    return code


def _once(
    source: Path, output: Path | None, timeout: float | None, verbose: bool,
    etrecord: Path | None = None,
) -> int:
    from etviz_lsp.once import DEFAULT_TIMEOUT, run_once

    # The script's own output goes to its log file; -v also shows it here.
    log = (lambda text: print(text, end="", file=sys.stderr)) if verbose else None
    try:
        result = run_once(
            source, output, timeout=timeout or DEFAULT_TIMEOUT, log=log, etrecord=etrecord
        )
    except EtvizError as error:
        print(f"etviz-lsp: error: {error}", file=sys.stderr)
        return 1
    print(f"wrote {result.output} ({result.bytes_written:,} bytes) in {result.seconds:.2f} s")
    print(f"  {result.summary}")
    return 0


def _default_output(source: Path) -> Path:
    from etviz_lsp.once import default_output

    return default_output(source)


def _serve(graph: Path, *, open_browser: bool, port: int | None) -> int:
    from etviz_lsp.explorer.show import show

    try:
        shown = show(graph, open_browser=open_browser, port=port, timeout=60.0)
    except EtvizError as error:
        print(f"etviz-lsp: error: {error}", file=sys.stderr)
        return 1
    server = shown.server
    print(f"Model Explorer (pid {server.pid}, port {server.port}): {shown.url}")
    return 0


def _stop_server() -> int:
    from etviz_lsp.explorer import stop_server

    print(
        "stopped the Model Explorer server"
        if stop_server()
        else "no Model Explorer server was running"
    )
    return 0
