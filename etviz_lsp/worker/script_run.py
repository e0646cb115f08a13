"""Inside the forked child: run the script as ``__main__``, collect its programs, write JSON.

The child is a fresh copy of the warm worker (torch and ExecuTorch already imported). It
runs the script the way ``python script.py`` would (``argv``, ``sys.path[0]``, ``__main__``),
reports progress and the result over its private channel, and leaves with ``os._exit`` so
nothing of the warm parent's teardown runs here.
"""

from __future__ import annotations

import builtins
import os
import sys
import traceback
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from etviz_lsp.errors import EtvizError
from etviz_lsp.graph import convert, inputs, model
from etviz_lsp.graph.writer import write_json_atomic
from etviz_lsp.worker import capture
from etviz_lsp.worker.channel import Channel
from etviz_lsp.worker.script_error import ScriptError
from etviz_lsp.worker.user_code import UserCode

NO_PROGRAM_HINT = (
    "call torch.export.export / to_edge / to_edge_transform_and_lower, "
    "or keep an ExportedProgram in a global variable"
)


@dataclass(frozen=True, slots=True)
class Request:
    source: Path
    output: Path
    cwd: Path
    trusted: bool

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Request:
        return cls(
            source=Path(data["source"]),
            output=Path(data["output"]),
            cwd=Path(data["cwd"]),
            trusted=bool(data.get("trusted", True)),
        )


class Outcome(Exception):
    """Ends the child's work early with a structured error."""

    def __init__(self, error: ScriptError) -> None:
        super().__init__(str(error))
        self.error = error


def run(request: Request, channel: Channel) -> None:
    """Do one run and report it; never raises (the caller exits right after)."""
    own_pid = os.getpid()
    answer = _answer(request, channel, own_pid)
    if os.getpid() == own_pid:
        channel.send(answer)


def _answer(request: Request, channel: Channel, own_pid: int) -> dict[str, Any]:
    try:
        graphs, warnings = _graphs(request, channel)
        if os.getpid() != own_pid:  # a process the script forked ran off its end: not ours
            return {}
        _write(request, graphs)
    except Outcome as outcome:
        return {"event": "failed", "error": outcome.error.to_json()}
    except BaseException as exc:  # a bug of ours: still report, never hang the parent
        trace = traceback.format_exc()
        print(trace, file=sys.stderr)
        error = ScriptError(
            "crash", str(request.source), message=f"internal error: {exc!r}", traceback=trace
        )
        return {"event": "failed", "error": error.to_json()}
    return {
        "event": "done",
        "graphs": [_graph_info(g) for g in graphs],
        "warnings": warnings,
    }


def _graph_info(graph: model.Graph) -> dict[str, object]:
    counts = convert.summarize_graph(graph)
    return {
        "id": graph.id, "node_count": len(graph.nodes),
        "op_nodes": counts.op_nodes, "layers": counts.layers,
    }


def _graphs(request: Request, channel: Channel) -> tuple[list[model.Graph], list[str]]:
    def progress(stage: str) -> None:
        channel.send({"event": "progress", "stage": stage})

    kind = inputs.kind_of(request.source)
    if kind is not None and not kind.runs_script:
        progress("converting")
        try:
            # The direct readers never unpickle; torch.export.load only for trusted files.
            collection = kind.read(request.source, trusted=request.trusted)
        except EtvizError as exc:
            raise Outcome(ScriptError("bad-input", str(request.source), message=exc.cause)) from exc
        return collection.graphs, []
    progress("running script")
    return run_script(request.source, progress)


def run_script(script: Path, progress: Any) -> tuple[list[model.Graph], list[str]]:
    user = UserCode(script)
    code = _compile(script)
    with capture.Recorder(user, progress) as recorder:
        module = _fresh_main(script)
        exit_site = _execute(code, module, user)
        progress("converting")
        for var, value in _user_globals(module, user):
            recorder.record_global(value, var)
    if not recorder.graphs:
        if exit_site is not None:
            raise Outcome(
                ScriptError(
                    "no-program", exit_site[0], exit_site[1],
                    message=f"the script exited (sys.exit(0)) before making a program; "
                    f"{NO_PROGRAM_HINT}",
                )
            )
        message = f"the script ran to its end but made no program; {NO_PROGRAM_HINT}"
        if recorder.warnings:
            message = f"no program could be converted: {recorder.warnings[0]}"
        raise Outcome(ScriptError("no-program", str(user.script), message=message))
    return recorder.graphs, recorder.warnings


def _compile(script: Path) -> types.CodeType:
    try:
        text = script.read_bytes()
    except OSError as exc:
        raise Outcome(
            ScriptError("bad-input", str(script), message=f"cannot read: {exc.strerror}")
        ) from exc
    try:
        # dont_inherit: our own `from __future__` flags must not change the user's code.
        return compile(text, str(script.resolve()), "exec", dont_inherit=True)
    except SyntaxError as exc:
        raise Outcome(_syntax_error(exc, str(script.resolve()))) from exc


def _fresh_main(script: Path) -> types.ModuleType:
    module = types.ModuleType("__main__")
    module.__file__ = str(script.resolve())
    module.__dict__["__builtins__"] = builtins
    module.__dict__["__cached__"] = None
    sys.modules["__main__"] = module
    return module


def _execute(code: types.CodeType, module: types.ModuleType, user: UserCode) -> Any:
    """Run the script; returns the ``sys.exit(0)`` site if it exited early, else None."""
    try:
        exec(code, module.__dict__)
    except SystemExit as exc:
        site = user.failure_site(exc.__traceback__)
        where = (site.file, site.line) if site else (str(user.script), None)
        if exc.code in (None, 0):
            return where
        status = exc.code if isinstance(exc.code, int) else 1
        detail = "" if isinstance(exc.code, int) else f": {exc.code}"
        raise Outcome(
            ScriptError(
                "crash", where[0], where[1],
                message=f"the script exited with status {status} (sys.exit){detail}",
                traceback=_format(exc),
            )
        ) from exc
    except BaseException as exc:
        trace = _format(exc)
        print(trace, file=sys.stderr, end="")
        raise Outcome(_exception_error(exc, user, trace)) from exc
    return None


def _exception_error(exc: BaseException, user: UserCode, trace: str) -> ScriptError:
    message = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    if isinstance(exc, SyntaxError) and exc.filename and user.owns(exc.filename):
        return _syntax_error(exc, exc.filename, trace)
    site = user.failure_site(exc.__traceback__)
    if site is None:
        return ScriptError("exception", str(user.script), message=message, traceback=trace)
    return ScriptError("exception", site.file, site.line, site.column, message, trace)


def _syntax_error(exc: SyntaxError, file: str, trace: str = "") -> ScriptError:
    kind_name = type(exc).__name__
    text = trace or "".join(traceback.format_exception_only(type(exc), exc))
    return ScriptError(
        "syntax", exc.filename or file, exc.lineno, exc.offset,
        f"{kind_name}: {exc.msg}", text,
    )


def _format(exc: BaseException) -> str:
    """The traceback without this module's own frame (the user never wrote it)."""
    tb = exc.__traceback__
    if tb is not None and tb.tb_frame.f_code.co_filename == __file__:
        tb = tb.tb_next
    return "".join(traceback.format_exception(type(exc), exc, tb))


def _user_globals(module: types.ModuleType, user: UserCode) -> list[tuple[str, Any]]:
    """Globals of ``__main__`` and of the user's own modules, for programs left there."""
    found = [(name, value) for name, value in vars(module).items() if not name.startswith("__")]
    for name, other in list(sys.modules.items()):
        file = getattr(other, "__file__", None)
        if other is module or not file or not user.owns(file):
            continue
        found.extend(
            (f"{name}.{var}", value) for var, value in vars(other).items()
            if not var.startswith("__")
        )
    return found


def _write(request: Request, graphs: list[model.Graph]) -> None:
    collection = model.GraphCollection(label=request.source.name, graphs=graphs)
    try:
        write_json_atomic(request.output, collection.to_json())
    except EtvizError as exc:
        raise Outcome(ScriptError("bad-input", exc.path, message=exc.cause)) from exc


def prepare_process(request: Request, output_fd: int, num_threads: int) -> None:
    """Make this forked child look like ``python script.py`` started in ``request.cwd``."""
    os.dup2(output_fd, 1)
    os.dup2(output_fd, 2)
    os.close(output_fd)
    # These streams live as long as the process: no context manager.
    sys.stdout = _text_stream(1)
    sys.stderr = _text_stream(2)
    sys.stdin = open(os.devnull)  # noqa: SIM115
    sys.argv = [str(request.source)]
    if inputs.is_script(request.source):
        sys.path.insert(0, str(request.source.resolve().parent))
    os.chdir(request.cwd)
    _restore_threads(num_threads)


def _text_stream(fd: int) -> Any:
    return open(  # noqa: SIM115
        fd, "w", buffering=1, encoding="utf-8", errors="backslashreplace", closefd=False
    )


def _restore_threads(num_threads: int) -> None:
    """The warm parent ran single-threaded (safe to fork); the run may use every core."""
    torch = sys.modules.get("torch")
    if torch is not None and num_threads > 0:
        torch.set_num_threads(num_threads)
