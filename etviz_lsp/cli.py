"""Command line: ``etviz-lsp --once FILE [--serve] [-- ARGS]`` converts one file or runs an
export script (``--once -m MODULE [-- ARGS]`` a module, as ``python -m`` would), and shows it
in the shared Model Explorer server with ``--serve``; ``--stop-server`` stops that server;
with no FILE (or with ``--stdio``) it is the language server over stdio."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from etviz_lsp import __version__
from etviz_lsp.errors import EtvizError

if TYPE_CHECKING:
    from etviz_lsp.graph_files import NodeData
    from etviz_lsp.once import OnceResult
    from etviz_lsp.worker.run_target import RunTarget

# What `--once -m MODULE` (no FILE) leaves in args.once.
_NO_FILE = Path("")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="etviz-lsp",
        description="Show torch.export / ExecuTorch programs as Model Explorer graphs.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    _add_once_options(parser.add_argument_group("one file, or one run of a script or module"))
    _add_pte_options(parser.add_argument_group("a .pte's companion files (--once on a .pte)"))
    _add_script_options(parser.add_argument_group("overlays of a script run (--once on a script)"))
    _add_server_options(parser.add_argument_group("the shared Model Explorer server"))
    parser.add_argument("-v", "--verbose", action="store_true", help="log details to stderr")
    # No --once: the language server over stdio. Editors append --stdio (and some a pid).
    parser.add_argument("--stdio", action="store_true", help="run the language server (default)")
    parser.add_argument("--clientProcessId", type=int, help=argparse.SUPPRESS)
    return parser


def _add_once_options(group: argparse._ArgumentGroup) -> None:
    group.add_argument(
        "--once", metavar="FILE", type=Path, nargs="?", const=_NO_FILE,
        help="convert FILE (.pt2, .pte, .etrecord, or an export script .py: runs it) and exit",
    )
    group.add_argument(
        "-m", dest="module", metavar="MODULE",
        help="with --once: run MODULE as `python -m MODULE` would (arguments after --)",
    )
    group.add_argument(
        "--cwd", type=Path, metavar="DIR",
        help="with --once: run the script or module in DIR (default: this folder)",
    )
    group.add_argument(
        "--env", action="append", default=[], metavar="KEY=VALUE",
        help="with --once: set an environment variable for the run (repeatable)",
    )
    group.add_argument(
        "-o", "--output", type=Path, help="graph JSON to write (default: FILE's folder/.etviz/)"
    )
    group.add_argument(
        "--timeout", type=float, default=None, metavar="S",
        help="stop an export script after S seconds (default: no limit; Ctrl+C stops it)",
    )
    group.add_argument(
        "--allow-pickle", action="store_true",
        help="with --once: if the direct reader cannot read a .pt2, let torch.export.load "
        "open it (it unpickles the file, which can run code: only for files you trust)",
    )


# The companion files --once takes beside a program: each one a path with its own help.
_PTE_OPTIONS: tuple[tuple[str, str, str], ...] = (
    (
        "--etrecord", "FILE",
        "with --once on a .pte: the ETRecord that links its instructions to the edge ops "
        "(default: the .etrecord of the same name beside it, if there is one); on a .pt2 "
        "with --etdump: the ETRecord written when that program was lowered",
    ),
    (
        "--etdump", "RUN.etdp",
        "with --once on a .pte (or .etrecord, .pt2 with --etrecord, export script): an "
        "ETDump of a run of it; writes latency node data "
        "(average, p50, min, max) beside the output, shown with --serve",
    ),
    (
        "--debug-buffer", "BIN",
        "with --etdump: the debug buffer that run wrote; writes the numeric gap per "
        "instruction (runtime vs the ETRecord's reference, SNR dB) beside the output "
        "(needs the ETRecord and --allow-pickle: ExecuTorch's Inspector opens it)",
    ),
    (
        "--memory-svg", "SVG",
        "with --once on a .pte: where to write its memory timeline (default: beside the "
        "output, <output>.memory.svg, as for a script's executorch stages)",
    ),
)


def _add_pte_options(group: argparse._ArgumentGroup) -> None:
    for flag, metavar, text in _PTE_OPTIONS:
        group.add_argument(flag, metavar=metavar, type=Path, help=text)


def _add_script_options(group: argparse._ArgumentGroup) -> None:
    group.add_argument(
        "--no-numeric", action="store_true",
        help="with --once on a script: do not compare its quantized stages with the float "
        "one (the numeric overlay: per-op SQNR and max abs error, on by default)",
    )
    group.add_argument(
        "--profile", action="store_true",
        help="with --once on a script: run the ExecuTorch program it made on this machine "
        "with ETDump on (its example inputs) and write latency node data beside the output",
    )
    group.add_argument(
        "--profile-iterations", type=int, default=None, metavar="N",
        help="with --profile: how many times to run the program (default: 20)",
    )


def _add_server_options(group: argparse._ArgumentGroup) -> None:
    group.add_argument(
        "--serve", action="store_true", help="with --once: show the graph in the shared server"
    )
    group.add_argument(
        "--no-browser", action="store_true", help="with --serve: only print the URL"
    )
    group.add_argument("--port", type=int, help="port for a newly started server (default: free)")
    group.add_argument(
        "--stop-server", action="store_true", help="stop the shared Model Explorer server"
    )


def run() -> NoReturn:
    """The ``etviz-lsp`` program (and ``python -m etviz_lsp``): :func:`main`, then exit.

    After ``--once`` on a ``.pt2`` nothing is left to clean up (the JSON is written and
    on disk; no child process, thread or temp file), yet the interpreter's own exit would
    still collect and free every module and cache, ~50 ms after a 20k-node graph: a
    fifteenth of the whole run. So that one job ends the process at once, output flushed.
    """
    argv = sys.argv[1:]
    code = main(argv)
    if _converts_a_pt2(parse(argv)[0]):
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


def _converts_a_pt2(args: argparse.Namespace) -> bool:
    from etviz_lsp.graph import inputs

    kind = inputs.kind_of(args.once) if args.once is not None else None
    return kind is not None and not kind.runs_script and not args.serve


def parse(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    """Our options, and the script's arguments (everything after the first ``--``)."""
    split = argv.index("--") if "--" in argv else len(argv)
    args = build_parser().parse_args(argv[:split])
    if args.module is not None and args.once is None:
        args.once = _NO_FILE  # -m is a run: --once is implied
    return args, argv[split + 1:]


def main(argv: list[str] | None = None) -> int:
    """The command line, in this process; returns the exit code (tests call this)."""
    args, script_args = parse(sys.argv[1:] if argv is None else list(argv))
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
    try:
        result = _once(args, script_args)
    except EtvizError as error:
        print(f"etviz-lsp: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # a second Ctrl+C, or one outside a script run
        print("etviz-lsp: interrupted", file=sys.stderr)
        return 130
    print(f"wrote {result.output} ({result.bytes_written:,} bytes) in {result.seconds:.2f} s")
    print(f"  {result.summary}")
    for line in result.memory:
        print(f"  memory: {line}")
    if result.memory_svg is not None:
        print(f"  memory timeline: {result.memory_svg}")
    if result.overlay:
        print(f"  latency overlay: {result.overlay}")
        for metric, path in result.node_data.items():
            if not metric.startswith("memory-"):
                print(f"    {metric}: {path}")
    for line in result.numeric:
        print(f"  numeric overlay: {line}")
    for line in result.not_delegated:
        print(f"  not delegated: {line}")
    if result.profile:
        print(f"  profiled: {result.profile}")
    if result.profile_error:
        print(f"etviz-lsp: error: profile: {result.profile_error}", file=sys.stderr)
        return 1
    if args.serve:
        return _serve(
            result.output, open_browser=not args.no_browser, port=args.port,
            # the node data the output's manifest lists, in its loading order
            node_data=result.manifest.node_data if result.manifest is not None else None,
        )
    return 0


def _once(args: argparse.Namespace, script_args: list[str]) -> OnceResult:
    from etviz_lsp.once import run_once, run_target_once

    timeout = args.timeout  # None: no limit (a long export is normal; Ctrl+C stops it)
    if timeout is not None and not timeout > 0:
        raise EtvizError("--timeout", f"must be a positive number of seconds, got {timeout:g}")
    target = _run_target(args, script_args)
    iterations = _profile_iterations(args, target is not None)
    if target is None:  # not a script: a .pt2 is converted in this process
        return run_once(
            args.once, args.output, timeout=timeout, allow_pickle=args.allow_pickle,
            etrecord=args.etrecord, etdump=args.etdump, debug_buffer=args.debug_buffer,
            memory_svg=args.memory_svg,
        )
    if args.memory_svg is not None:
        from etviz_lsp.graph import inputs

        raise EtvizError(str(args.memory_svg), f"{inputs.goes_with('--memory-svg')} "
                         "(a script's timeline is written beside its output)")
    from etviz_lsp.cli_progress import ProgressLine

    with ProgressLine(target.label) as progress:
        # The script's own output goes to its log file; -v also shows it here.
        log = progress.log if args.verbose else None
        return run_target_once(target, args.output, timeout=timeout, log=log, progress=progress,
                               numeric=not args.no_numeric, profile_iterations=iterations,
                               etdump=args.etdump)


def _profile_iterations(args: argparse.Namespace, runs_script: bool) -> int:
    """How often --profile runs the program (0: no profile); bad combinations refused."""
    if args.profile_iterations is not None and not args.profile:
        raise EtvizError("--profile-iterations", "goes with --profile")
    if not args.profile:
        return 0
    if not runs_script:
        raise EtvizError(str(args.once), "--profile runs an export script's program (.py or -m); "
                         "for a .pte use --etdump with an ETDump of a run")
    from etviz_lsp.worker.profile_run import DEFAULT_ITERATIONS, MAX_ITERATIONS

    count = DEFAULT_ITERATIONS if args.profile_iterations is None else args.profile_iterations
    if not 1 <= count <= MAX_ITERATIONS:
        raise EtvizError("--profile-iterations", f"must be 1 to {MAX_ITERATIONS}, got {count}")
    return count


def _run_target(args: argparse.Namespace, script_args: list[str]) -> RunTarget | None:
    """What --once runs: a script or module; None for a file that is not a script."""
    from etviz_lsp.graph import inputs
    from etviz_lsp.worker.run_target import RunTarget, parse_env

    has_file = args.once != _NO_FILE
    if has_file and args.module is not None:
        raise EtvizError(str(args.once), "give a FILE or -m MODULE, not both")
    if not has_file and args.module is None:
        raise EtvizError("--once", "expected a FILE or -m MODULE")
    if args.module is not None:
        return RunTarget(module=args.module, args=tuple(script_args), cwd=args.cwd,
                         env=parse_env(args.env))
    if not inputs.is_script(args.once):
        if script_args or args.cwd or args.env:
            raise EtvizError(str(args.once), "arguments, --cwd and --env are for a script (.py)")
        return None
    return RunTarget(script=args.once, args=tuple(script_args), cwd=args.cwd,
                     env=parse_env(args.env))


def _serve(
    graph: Path, *, open_browser: bool, port: int | None, node_data: NodeData | None = None
) -> int:
    from etviz_lsp.explorer.show import show

    try:
        shown = show(
            graph, open_browser=open_browser, port=port, timeout=60.0, node_data=node_data
        )
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
