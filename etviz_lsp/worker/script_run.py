"""Inside the forked child: run the script or module as ``__main__``, collect its programs.

The child is a fresh copy of the warm worker (torch and ExecuTorch already imported). It
runs the target the way ``python script.py ARGS`` / ``python -m module ARGS`` would
(``argv``, ``sys.path[0]``, ``cwd``, ``__main__``, the package for relative imports, extra
environment variables), reports progress, each stage once converted (written to the
partial output) and the result over its private channel, and leaves with ``os._exit`` so
nothing of the warm parent's teardown runs here.
"""

from __future__ import annotations

import builtins
import importlib.util
import io
import os
import sys
import traceback
import types
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from etviz_lsp.errors import EtvizError
from etviz_lsp.graph import convert, inputs
from etviz_lsp.graph.core import model
from etviz_lsp.graph.core.writer import write_json_atomic
from etviz_lsp.graph.memory import memory_plan
from etviz_lsp.graph.overlays import correspondence
from etviz_lsp.graph_files import GraphFiles, Manifest, kept_folder
from etviz_lsp.worker import capture, memory_overlay, numeric_overlay, profile_run
from etviz_lsp.worker.channel import Channel
from etviz_lsp.worker.run_footprint import Footprint
from etviz_lsp.worker.run_target import RunTarget
from etviz_lsp.worker.script_error import ScriptError
from etviz_lsp.worker.user_code import UserCode

NO_PROGRAM_HINT = (
    "call torch.export.export / to_edge / to_edge_transform_and_lower, "
    "or keep an ExportedProgram in a global variable"
)


@dataclass(frozen=True, slots=True)
class Request:
    output: Path
    cwd: Path
    allow_pickle: bool  # a .pt2 the direct reader cannot read may go to torch.export.load
    source: Path | None = None  # a .pt2 to convert, or the script of ``target``
    target: RunTarget | None = None  # a script or module to run
    partial_output: Path | None = None  # the stages so far, rewritten after each one
    numeric: bool = True  # the numeric overlay of quantized stages (numeric_overlay)
    # Profile on this machine (issue 17, profile_run): keep the run's ExecuTorch program
    # beside the output; > 0: also profile it that many times right after the run;
    # ``profile_kept``: no run, profile the program an earlier run kept beside ``output``.
    keep_program: bool = False
    profile_iterations: int = 0
    profile_kept: bool = False
    etdump: Path | None = None  # a run of this program elsewhere: attributed, not profiled
    numeric_gap: bool = False  # keep the ETRecord too: a profile records the runtime gap

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Request:
        target = RunTarget.from_json(data["target"]) if data.get("target") else None
        source = data.get("source")
        partial = data.get("partial_output")
        return cls(
            output=Path(data["output"]),
            cwd=Path(data["cwd"]),
            allow_pickle=data.get("allow_pickle") is True,
            source=Path(source) if source else (target.script if target else None),
            target=target,
            partial_output=Path(partial) if partial else None,
            numeric=data.get("numeric") is not False,
            keep_program=data.get("keep_program") is True,
            profile_iterations=int(data.get("profile_iterations") or 0),
            profile_kept=data.get("profile_kept") is True,
            etdump=Path(data["etdump"]) if data.get("etdump") else None,
            numeric_gap=data.get("numeric_gap") is True,
        )

    @property
    def label(self) -> str:
        if self.target is not None and self.target.module is not None:
            return self.target.module
        return self.source.name if self.source is not None else "run"


class Outcome(Exception):
    """Ends the child's work early with a structured error."""

    def __init__(self, error: ScriptError) -> None:
        super().__init__(str(error))
        self.error = error


@dataclass
class _Run:
    """One run's state in the child: its channel, its footprint, what ``__main__`` is."""

    request: Request
    channel: Channel
    footprint: Footprint
    main_file: Path | None = None
    # Stage to stage (issue 18), written beside the final graph JSON.
    correspondence: correspondence.RunCorrespondence | None = None
    stages: list[numeric_overlay.Stage] = field(default_factory=list)
    recorder: capture.Recorder | None = None  # the run's programs (profile_run keeps one)
    memory: list[memory_plan.MemoryPlan] = field(default_factory=list)  # an opened .pte's
    measured: profile_run.Measured | None = None  # a profile in the run, not yet written

    def progress(self, stage: str) -> None:
        self.channel.send({"event": "progress", "stage": stage})

    def found_main(self, file: Path) -> None:
        """The file run as ``__main__`` (a module's is known only here): for stack dumps."""
        self.main_file = file
        self.channel.send({"event": "main", "file": str(file)})

    def touched(self) -> dict[str, list[str]]:
        roots = [self.request.cwd] + ([self.main_file.parent] if self.main_file else [])
        ours = str(kept_folder(self.request.output))  # the program we kept
        return {
            "imported_files": self.footprint.imported_files(self.main_file),
            "artifacts": [a for a in self.footprint.artifacts(roots) if not a.startswith(ours)],
        }


def run(request: Request, channel: Channel) -> None:
    """Do one run and report it; never raises (the caller exits right after)."""
    own_pid = os.getpid()
    state = _Run(request, channel, Footprint())
    answer = _answer(state, own_pid)
    if os.getpid() == own_pid:
        if request.target is not None:
            answer.update(state.touched())
        channel.send(answer)


def _answer(state: _Run, own_pid: int) -> dict[str, Any]:
    request = state.request
    profiled: dict[str, Any] = {}
    memory_files: dict[str, Any] = {}
    try:
        if request.profile_kept:
            return _profile_kept(state)
        graphs, warnings = _graphs(state)
        if os.getpid() != own_pid:  # a process the script forked ran off its end: not ours
            return {}
        files = GraphFiles(request.output)
        numeric = _numeric(state)  # annotates the quantized graphs: before the write
        memory = memory_overlay.compute(state.stages, state.memory, warnings)  # likewise
        profiled = _keep_and_profile(state, graphs, files)  # its program stage joins graphs
        _write(request, request.output, graphs)  # once, then the files beside it
        files.wrote_graph(request.label, convert.manifest_graphs(graphs))
        _write_correspondence(state, files)
        profiled = profiled or _write_profile(state.measured, files)
        _write_numeric(numeric, files)
        memory_files = memory_overlay.write(memory, files, request.label, warnings)
        manifest = _finish(files)
    except Outcome as outcome:
        return {"event": "failed", "error": outcome.error.to_json()}
    except BaseException as exc:  # a bug of ours: still report, never hang the parent
        trace = traceback.format_exc()
        print(trace, file=sys.stderr)
        error = ScriptError(
            "crash", str(state.main_file or request.label), message=f"internal error: {exc!r}",
            traceback=trace,
        )
        return {"event": "failed", "error": error.to_json()}
    return {
        "event": "done",
        "graphs": [_graph_info(g) for g in graphs],
        "warnings": warnings,
        **_not_delegated(state),
        **({"numeric": numeric.summary()} if numeric is not None else {}),
        **profiled,
        **memory_files,
        "manifest": manifest.to_json(),
    }


def _keep_and_profile(state: _Run, graphs: list[model.Graph], files: GraphFiles) -> dict[str, Any]:
    """Before the graph JSON: keep the program for a later profile, profile it now if asked
    (its ``program`` stage is appended to ``graphs``, so the graph is written once; the
    node data waits in ``state.measured`` until it is).

    A profile that cannot run costs the profile, never the run's graphs: its error is
    answered as ``profile_error``."""
    request, recorder = state.request, state.recorder
    measure = request.profile_iterations > 0 or request.etdump is not None
    if recorder is None or not (request.keep_program or measure):
        return {}
    try:
        kept = profile_run.keep(
            recorder.executorch, recorder.example_inputs, files, request.numeric_gap)
        if not measure:
            return {}
        state.measured = profile_run.measure(
            kept, request.profile_iterations, state.progress, graphs, request.etdump
        )
    except EtvizError as exc:
        return {"profile_error": str(exc)} if measure else {}
    graphs.extend(state.measured.graphs)
    return {}


def _write_profile(measured: profile_run.Measured | None, files: GraphFiles) -> dict[str, Any]:
    """After the graph JSON: a profile's latency node data, and its summary."""
    if measured is None:
        return {}
    try:
        return {"profile": profile_run.write_node_data(measured, files).to_json()}
    except (EtvizError, OSError) as exc:
        return {"profile_error": str(exc)}


def _profile_kept(state: _Run) -> dict[str, Any]:
    """No run: profile the program an earlier run kept beside the output."""
    request = state.request
    state.progress("profiling")
    try:
        summary, graphs, manifest = profile_run.profile_kept(
            request.output, request.profile_iterations, state.progress
        )
    except EtvizError as exc:
        nothing = exc.cause == profile_run.NOTHING_TO_PROFILE
        error = ScriptError("no-program" if nothing else "exception", exc.path, message=exc.cause)
        return {"event": "failed", "error": error.to_json()}
    return {
        "event": "done", "graphs": [_graph_info(g) for g in graphs], "warnings": [],
        "profile": summary.to_json(), "manifest": manifest.to_json(),
    }


def _not_delegated(state: _Run) -> dict[str, Any]:
    """Why the run's ops stayed on the CPU (worker/not_delegated.py), for the answer."""
    if state.recorder is None or not state.recorder.not_delegated.summary:
        return {}
    return {"not_delegated": state.recorder.not_delegated.summary}


def _graph_info(graph: model.Graph) -> dict[str, object]:
    counts = convert.summarize_graph(graph)
    return {
        "id": graph.id, "node_count": len(graph.nodes),
        "op_nodes": counts.op_nodes, "layers": counts.layers,
    }


def _graphs(state: _Run) -> tuple[list[model.Graph], list[str]]:
    request = state.request
    if request.target is None:
        assert request.source is not None
        state.progress("converting")
        try:
            # The direct readers never unpickle; torch.export.load only with the opt-in.
            kind = inputs.known_kind(request.source)
            collection = kind.read(request.source, allow_pickle=request.allow_pickle)
        except EtvizError as exc:
            raise Outcome(ScriptError("bad-input", str(request.source), message=exc.cause)) from exc
        state.memory = memory_plan.plans_of(collection)
        return collection.graphs, []
    state.progress("running script")
    return _run_target(state, request.target)


def _run_target(state: _Run, target: RunTarget) -> tuple[list[model.Graph], list[str]]:
    request = state.request
    if target.module is not None:
        main_file, code, spec = _module_code(target.module)
        user = UserCode(main_file, root=request.cwd)
    else:
        assert target.script is not None
        main_file, code, spec = target.script.resolve(), _compile(target.script), None
        user = UserCode(main_file)
    state.found_main(main_file)
    sys.argv[0] = str(main_file)
    with capture.Recorder(user, state.progress, _stage_sender(state)) as recorder:
        module = _fresh_main(main_file, spec)
        exit_site = _execute(code, module, user)
        state.progress("converting")
        for var, value in _user_globals(module, user):
            recorder.record_global(value, var)
    if not recorder.graphs:
        raise Outcome(_nothing_captured(state, recorder, user, exit_site))
    state.correspondence = recorder.correspondence
    state.stages = recorder.stages
    state.recorder = recorder
    return recorder.graphs, [*recorder.warnings, *recorder.not_delegated.notes]


def _stage_sender(state: _Run) -> Callable[[list[model.Graph], float], None] | None:
    """After each captured stage: the stages so far to the partial output, then a message."""
    partial = state.request.partial_output
    if partial is None:
        return None

    def send(graphs: list[model.Graph], returned_at: float) -> None:
        try:
            _write(state.request, partial, graphs)
        except Outcome as outcome:  # a partial view that cannot be written costs only itself
            print(f"etviz: {outcome.error}", file=sys.stderr)
            return
        state.channel.send({
            "event": "stage", "graphs": [_graph_info(g) for g in graphs],
            "returned_at": returned_at,
        })

    return send


def _nothing_captured(
    state: _Run, recorder: capture.Recorder, user: UserCode, exit_site: Any
) -> ScriptError:
    artifacts = state.footprint.artifacts([state.request.cwd, user.script.parent])
    wrote = ""
    if artifacts:
        names = ", ".join(_short(path, state.request.cwd) for path in artifacts[:5])
        more = f" and {len(artifacts) - 5} more" if len(artifacts) > 5 else ""
        wrote = f" and wrote {names}{more}"
    made = "made no program" if not wrote else "made no program etviz could capture"
    if exit_site is not None:
        return ScriptError(
            "no-program", exit_site[0], exit_site[1],
            message=f"the script exited (sys.exit(0)){wrote} before making a program; "
            f"{NO_PROGRAM_HINT}",
        )
    but = "but" if not wrote else ", but"
    message = f"the script ran to its end{wrote}{but} {made}; {NO_PROGRAM_HINT}"
    if artifacts:
        message += " (a .pt2 it wrote can be opened directly)"
    if recorder.warnings:
        message = f"no program could be converted: {recorder.warnings[0]}"
    return ScriptError("no-program", str(user.script), message=message)


def _short(path: str, cwd: Path) -> str:
    try:
        return str(Path(path).relative_to(cwd.resolve()))
    except ValueError:
        return path


def _module_code(name: str) -> tuple[Path, types.CodeType, Any]:
    """What ``python -m name`` runs: the module's (or package's ``__main__``) code."""
    try:
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.submodule_search_locations is not None:
            name = f"{name}.__main__"  # a package runs its __main__, as python -m does
            spec = importlib.util.find_spec(name)
    except Exception as exc:
        raise Outcome(_find_error(name, exc)) from exc
    if spec is None or spec.loader is None or spec.origin is None:
        raise Outcome(ScriptError("bad-input", name, message=f"no module named {name!r}"))
    file = Path(spec.origin).resolve()
    if not inputs.is_script(file):
        raise Outcome(ScriptError("bad-input", str(file), message="not a Python source module"))
    return file, _compile(file), spec


def _find_error(name: str, exc: Exception) -> ScriptError:
    """A module (or one of its parent packages) that is not there is bad input; anything
    else failed while a parent package's ``__init__`` ran: the user's error, shown as one."""
    missing = getattr(exc, "name", None)
    if isinstance(exc, ModuleNotFoundError) and missing and (
        name == missing or name.startswith(f"{missing}.")
    ):
        return ScriptError("bad-input", name, message=f"no module named {missing!r}")
    trace = _format(exc)
    print(trace, file=sys.stderr, end="")
    return _exception_error(exc, UserCode(Path(name), root=Path.cwd()), trace)


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


def _fresh_main(file: Path, spec: Any) -> types.ModuleType:
    """A new ``__main__``; for a module, with its spec and package (relative imports)."""
    module = types.ModuleType("__main__")
    module.__file__ = str(file)
    module.__dict__["__builtins__"] = builtins
    module.__dict__["__cached__"] = None
    if spec is not None:
        module.__spec__ = spec
        module.__loader__ = spec.loader
        module.__package__ = spec.name.rpartition(".")[0]
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
        # argparse says what was wrong on stderr just before sys.exit(2): say it too
        detail = f": {exc.code}" if not isinstance(exc.code, int) else _last_error_line()
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


def _write(request: Request, output: Path, graphs: list[model.Graph]) -> None:
    collection = model.GraphCollection(label=request.label, graphs=graphs)
    try:
        write_json_atomic(output, collection.to_json())
    except EtvizError as exc:
        raise Outcome(ScriptError("bad-input", exc.path, message=exc.cause)) from exc


def _write_correspondence(state: _Run, files: GraphFiles) -> None:
    """The stages' correspondence beside the graph (none: an earlier run's is not listed,
    and goes)."""
    if state.correspondence is None or not state.correspondence.stages:
        return
    try:
        files.write_correspondence(state.correspondence.to_json(state.request.label))
    except EtvizError as exc:
        raise Outcome(ScriptError("bad-input", exc.path, message=exc.cause)) from exc


def _finish(files: GraphFiles) -> Manifest:
    """The manifest, last: what the run wrote beside its graph."""
    try:
        return files.finish()
    except EtvizError as exc:
        raise Outcome(ScriptError("bad-input", exc.path, message=exc.cause)) from exc


def _numeric(state: _Run) -> numeric_overlay.Overlay | None:
    """The numeric overlay of the run's quantized stages (None: off, or none to compare)."""
    if not state.request.numeric or not numeric_overlay.pairs(state.stages):
        return None
    state.progress("comparing quantized with float")
    return numeric_overlay.compute(state.stages)


def _write_numeric(overlay: numeric_overlay.Overlay | None, files: GraphFiles) -> None:
    """After the graph JSON: a node-data file that cannot be written costs only itself."""
    if overlay is None:
        return
    try:
        numeric_overlay.write(overlay, files)
    except (EtvizError, OSError) as exc:
        overlay.notes.append(f"numeric overlay not written: {exc}")


def prepare_process(request: Request, output_fd: int, num_threads: int) -> None:
    """Make this forked child look like ``python script.py ARGS`` / ``python -m module ARGS``
    started in ``request.cwd`` (``argv[0]`` becomes the module's file once it is found)."""
    os.dup2(output_fd, 1)
    os.dup2(output_fd, 2)
    os.close(output_fd)
    # These streams live as long as the process: no context manager.
    sys.stdout = _text_stream(1)
    sys.stderr = _text_stream(2)
    sys.stdin = open(os.devnull)  # noqa: SIM115
    target = request.target
    sys.argv = [str(request.source or "-m"), *(target.args if target else ())]
    if target is not None and target.script is not None:
        sys.path.insert(0, str(target.script.resolve().parent))
    elif target is not None:
        sys.path.insert(0, str(request.cwd))  # python -m: the start folder comes first
    if target is not None:
        os.environ.update(dict(target.env))
    os.chdir(request.cwd)
    _restore_threads(num_threads)


def _text_stream(fd: int) -> Any:
    return _TailedText(
        io.BufferedWriter(io.FileIO(fd, "w", closefd=False)),
        encoding="utf-8", errors="backslashreplace", line_buffering=True,
    )


class _TailedText(io.TextIOWrapper):
    """A line-buffered text stream that remembers the end of what was written to it."""

    TAIL = 2048
    tail = ""

    def write(self, text: str) -> int:
        self.tail = (self.tail + text[-self.TAIL:])[-self.TAIL:]
        return super().write(text)


def _last_error_line() -> str:
    """``": <last line the script wrote to stderr>"``, or "" when there is none."""
    tail = getattr(sys.stderr, "tail", "")
    lines = [line.strip() for line in tail.splitlines() if line.strip()] if tail else []
    return f": {lines[-1]}" if lines else ""


def _restore_threads(num_threads: int) -> None:
    """The warm parent ran single-threaded (safe to fork); the run may use every core."""
    torch = sys.modules.get("torch")
    if torch is not None and num_threads > 0:
        torch.set_num_threads(num_threads)
