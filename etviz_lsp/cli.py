"""Command line: ``etviz-lsp --once FILE`` converts one file; with no FILE (or ``--stdio``)
it is the language server over stdio."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

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
        help="convert FILE (.pt2, or an export script .py: runs it) and exit",
    )
    parser.add_argument(
        "-o", "--output", type=Path, help="graph JSON to write (default: FILE's folder/.etviz/)"
    )
    parser.add_argument(
        "--timeout", type=float, default=None, metavar="S",
        help="stop an export script after S seconds (default: 600)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log details to stderr")
    # No --once: the language server over stdio. Editors append --stdio (and some a pid).
    parser.add_argument("--stdio", action="store_true", help="run the language server (default)")
    parser.add_argument("--clientProcessId", type=int, help=argparse.SUPPRESS)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        stream=sys.stderr,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    if args.once is None:
        from etviz_lsp.lsp.server import run_stdio

        return run_stdio(verbose=args.verbose, client_pid=args.clientProcessId)
    return _once(args.once, args.output, args.timeout, args.verbose)


def _once(source: Path, output: Path | None, timeout: float | None, verbose: bool) -> int:
    from etviz_lsp.once import DEFAULT_TIMEOUT, run_once

    # The script's own output goes to its log file; -v also shows it here.
    log = (lambda text: print(text, end="", file=sys.stderr)) if verbose else None
    try:
        result = run_once(source, output, timeout=timeout or DEFAULT_TIMEOUT, log=log)
    except EtvizError as error:
        print(f"etviz-lsp: error: {error}", file=sys.stderr)
        return 1
    print(f"wrote {result.output} ({result.bytes_written:,} bytes) in {result.seconds:.2f} s")
    print(f"  {result.summary}")
    return 0
