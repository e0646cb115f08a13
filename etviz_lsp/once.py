"""The one-shot job behind ``etviz-lsp --once``: convert one file, write its graph JSON.

A file ``graph.inputs`` reads (``.pt2``, ``.pte``, ``.etrecord``) is converted here; an
export script (``.py``, or ``-m module``, with arguments) runs in the worker room's child
process (naming it on the command line is the user's consent to run it), with no time limit
unless one is given; Ctrl+C stops it. A run that fails, times out or is stopped after making
stages leaves them beside the output, marked partial (``worker.partial_stages``), and its
error names that file; the output itself is written only by a run that succeeds. The files
beside the output are ``graph_files``'s, listed in its manifest (written last).
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from etviz_lsp import graph_files
from etviz_lsp.errors import EtvizError
from etviz_lsp.graph import convert, inputs
from etviz_lsp.graph.core import model, not_delegated
from etviz_lsp.graph.core.writer import write_json_atomic
from etviz_lsp.graph.memory import memory_files
from etviz_lsp.graph_files import GraphFiles, Manifest

if TYPE_CHECKING:  # the worker room is imported only when a script runs
    from etviz_lsp.graph.overlays import latency
    from etviz_lsp.graph.readers.etdump import ETDump
    from etviz_lsp.worker import GraphInfo, RunTarget, WarmWorker

OUTPUT_FOLDER = ".etviz"


def default_output(source: Path) -> Path:
    """``<folder>/.etviz/<name>.json``: a folder of our own, so no user file is clobbered."""
    return source.parent / OUTPUT_FOLDER / f"{source.name}.json"


@dataclass(frozen=True, slots=True)
class ScriptGraphs:
    """What a script run made: each graph by name, with its counts; files it wrote."""

    graphs: list[GraphInfo]
    artifacts: tuple[Path, ...] = ()

    def __str__(self) -> str:
        total = convert.Summary(
            graphs=len(self.graphs),
            op_nodes=sum(g.op_nodes for g in self.graphs),
            layers=sum(g.layers for g in self.graphs),
        )
        lines = [f"{total}:"]
        lines += [
            f"    {g.id}: {g.op_nodes} operator calls, {g.layers} module layers"
            for g in self.graphs
        ]
        lines += [f"  the run wrote {path}" for path in self.artifacts]
        return "\n".join(lines)


@dataclass(frozen=True, slots=True)
class OnceResult:
    output: Path
    summary: convert.Summary | ScriptGraphs
    seconds: float
    bytes_written: int
    # With --etdump: the latency node-data files beside the output, by metric
    node_data: dict[str, Path] = field(default_factory=dict)
    overlay: str = ""  # what the attribution found, one line
    # A script run's numeric overlay: worst op per quantized graph, notes (one line each)
    numeric: tuple[str, ...] = ()
    # A script run's ops left on the CPU, per lowering, with the partitioners' first reasons
    not_delegated: tuple[str, ...] = ()
    # With --profile (a script): what the profile found, one line, or why it failed
    profile: str = ""
    profile_error: str = ""
    # A .pte's memory plan: peak per buffer with the largest tensors there; its timeline
    memory: tuple[str, ...] = ()
    memory_svg: Path | None = None
    # The files beside the output, as listed last (graph_files): what --serve loads
    manifest: Manifest | None = None


def run_once(
    source: Path,
    output: Path | None,
    *,
    timeout: float | None = None,
    log: Callable[[str], None] | None = None,
    allow_pickle: bool = False,
    progress: Callable[[str], None] | None = None,
    etrecord: Path | None = None,
    etdump: Path | None = None,
    debug_buffer: Path | None = None,
    memory_svg: Path | None = None,
) -> OnceResult:
    """Convert ``source``; ``allow_pickle`` allows the unpickling fallback for odd archives.

    Naming a ``.pt2`` is no consent to unpickle it: only ``--allow-pickle`` is. With
    ``etdump`` (a ``.pte``'s run), the latency overlay's node-data files go beside the output.
    A ``.pte``'s memory plan goes beside it too (``memory_files``; the SVG to ``memory_svg``).
    """
    started = time.perf_counter()
    _check_readable(source)
    if output is None:
        output = default_output(source)
        _make_own_folder(output.parent)
    elif not output.parent.is_dir():  # fail before the (slow) conversion, not after it
        raise EtvizError(str(output), f"output folder {output.parent} does not exist")
    kind = inputs.known_kind(source)
    inputs.check_options(kind, {"--etrecord": etrecord, "--etdump": etdump,
                                "--debug-buffer": debug_buffer, "--memory-svg": memory_svg})
    if memory_svg is not None and not memory_svg.parent.is_dir():
        raise EtvizError(str(memory_svg), f"folder {memory_svg.parent} does not exist")
    if kind.latency_by_etrecord:  # checked before the conversion
        _check_by_etrecord(source, etrecord, etdump, kind)
    gap_record = None
    if debug_buffer is not None:  # checked before the conversion
        gap_record = _gap_etrecord(source, etrecord, etdump, debug_buffer, allow_pickle)
    if kind.runs_script:
        from etviz_lsp.worker import RunTarget

        return _run_script(RunTarget(script=source), output, timeout, log, progress, started,
                           etdump=etdump)
    if not source.exists():
        raise EtvizError(str(source), "no such file")
    gap = (gap_record, etdump, debug_buffer) if gap_record and etdump and debug_buffer else None
    return _convert_file(kind, source, output, started, allow_pickle=allow_pickle,
                         etrecord=etrecord, etdump=etdump, gap=gap, memory_svg=memory_svg)


def _convert_file(
    kind: inputs.InputKind, source: Path, output: Path, started: float, *, allow_pickle: bool,
    etrecord: Path | None, etdump: Path | None, gap: tuple[Path, Path, Path] | None,
    memory_svg: Path | None,
) -> OnceResult:
    """A file ``graph.inputs`` reads, converted here: the graph JSON, then the files beside
    it (``graph_files``: the latency overlay, a memory plan, the numeric gap), the manifest
    last."""
    files = GraphFiles(output)
    with convert.paused_gc():
        collection = kind.read(source, allow_pickle=allow_pickle, etrecord=etrecord)
        found, on_stages = (
            _attribute(kind, source, collection, etdump, etrecord) if etdump else (None, ""))
        written = write_json_atomic(output, collection.to_json())
        files.wrote_graph(collection.label, convert.manifest_graphs(collection.graphs))
        node_data, overlay = _write_latency(found, etdump, files) if found and etdump else ({}, "")
        overlay += on_stages
        memory = memory_files.write(collection, files, memory_svg)
        node_data = {**memory.node_data, **node_data}  # latency (if any) coloured last
        if gap is not None:
            node_data["gap"], gap_line = _gap(*gap, files)
            overlay = f"{overlay}\n  numeric gap: {gap_line}"
        summary = convert.summarize(collection)
        cpu = [{"graph": g.id, "ops": not_delegated.ops_of(g)} for g in collection.graphs]
        # Freed before the collector resumes: it would first scan the whole graph (half a
        # million objects at 20k nodes) for cycles that are not there.
        del collection
    manifest = files.finish()  # an earlier run's files it does not list (a script's) go
    return OnceResult(
        output, summary, time.perf_counter() - started, written, node_data, overlay,
        memory=memory.summary, memory_svg=memory.svg, manifest=manifest,
        not_delegated=tuple(not_delegated.summary_lines([e for e in cpu if e["ops"]])),
    )


def _attribute(
    kind: inputs.InputKind, source: Path, collection: model.GraphCollection, etdump_path: Path,
    etrecord: Path | None = None,
) -> tuple[latency.Overlay, str]:
    """The ETDump's events on the graphs (node attributes) and its node data, per metric;
    for an ETRecord, on its stages through the ``.pte`` beside it; for a ``.pt2``, through
    the ETRecord of its lowering (what it placed, a line)."""
    from etviz_lsp.graph.overlays import latency, stage_latency
    from etviz_lsp.graph.readers import etdump

    dump = etdump.read_etdump(etdump_path)
    if kind.latency_by_etrecord:
        return _attribute_by_etrecord(source, collection, dump, etrecord)
    if not kind.latency_on_stages:
        return latency.attribute(collection, dump), ""
    program = inputs.companion(source)
    if program is None or not program.is_file():
        raise EtvizError(
            str(program or source), "--etdump on an ETRecord needs the program it was written "
            "with beside it: its delegates' kernels are matched to ops through their payloads",
        )
    found, placed = stage_latency.from_etrecord(collection, source, program, dump)
    found.node_data = placed.node_data
    return found, f" ({program.name}, {placed.line()})"


def _check_by_etrecord(
    source: Path, etrecord: Path | None, etdump: Path | None, kind: inputs.InputKind
) -> None:
    """A ``.pt2``'s ``--etdump`` and ``--etrecord`` go together (one line if not)."""
    if etrecord is not None and etdump is None:
        raise EtvizError("--etrecord", f"with {kind.what} goes with --etdump (the ETRecord "
                         "of its lowering places that run's latency on it)")
    if etdump is not None and etrecord is None:
        raise EtvizError(str(source), "--etdump on a .pt2 needs --etrecord, the ETRecord "
                         "written when this program was lowered (a .pt2 has no debug handles)")


def _attribute_by_etrecord(
    source: Path, collection: model.GraphCollection, dump: ETDump,
    etrecord: Path | None,
) -> tuple[latency.Overlay, str]:
    """A ``.pt2``'s latency: the ETDump placed on the ETRecord's stages, then back onto the
    program it recorded, which this ``.pt2`` must be (``stage_latency.from_exported``)."""
    from etviz_lsp.graph.overlays import stage_latency

    assert etrecord is not None  # _check_by_etrecord
    program = inputs.companion(etrecord)
    if program is None or not program.is_file():
        raise EtvizError(str(etrecord), "--etdump on a .pt2 needs the .pte the ETRecord was "
                         "written with beside it")
    found, placed = stage_latency.from_exported(collection, source, etrecord, program, dump)
    found.node_data = placed.node_data
    return found, f" ({etrecord.name}, {program.name}, {placed.line()})"


def _write_latency(
    found: latency.Overlay, etdump_path: Path, files: GraphFiles
) -> tuple[dict[str, Path], str]:
    """One node-data file per metric beside the output; what the attribution found."""
    paths: dict[str, Path] = {}
    for metric, data in found.node_data.items():
        paths[metric] = files.write_overlay("latency", metric, data)
    line = (
        f"{etdump_path.name}: {found.runs} runs, {found.attributed} events attributed, "
        f"{found.method_level} method-level, {found.unattributed} not attributed"
    )
    return paths, line


def _gap_etrecord(
    source: Path, etrecord: Path | None, etdump: Path | None, debug_buffer: Path,
    allow_pickle: bool,
) -> Path:
    """The ETRecord the runtime gap needs, checked before any work."""
    if etdump is None:
        raise EtvizError("--debug-buffer", "goes with --etdump (the run that wrote it)")
    if not debug_buffer.is_file():
        raise EtvizError(str(debug_buffer), "no such file" if not debug_buffer.exists()
                         else "not a file")
    record = etrecord or inputs.companion(source)
    if record is None or not record.is_file():
        raise EtvizError(str(record or source),
                         "the numeric gap needs the program's ETRecord (--etrecord)")
    if not allow_pickle:
        raise EtvizError(
            str(record), "the numeric gap opens the ETRecord with ExecuTorch's Inspector, "
            "which may unpickle it: add --allow-pickle for an ETRecord you trust",
        )
    return record


def _gap(
    record: Path, etdump_path: Path, debug_buffer: Path, files: GraphFiles
) -> tuple[Path, str]:
    """Inspector's numeric gap per instruction, as the ``numeric-gap`` node data."""
    from etviz_lsp.graph.overlays.numeric_gap import numeric_gap

    result = numeric_gap(record, etdump_path, debug_buffer)
    path = files.write_overlay("numeric", "gap", result.node_data)
    return path, result.summary(debug_buffer)


def run_target_once(
    target: RunTarget,
    output: Path | None,
    *,
    timeout: float | None = None,
    log: Callable[[str], None] | None = None,
    progress: Callable[[str], None] | None = None,
    numeric: bool = True,
    profile_iterations: int = 0,
    etdump: Path | None = None,
) -> OnceResult:
    """Run a script or ``-m`` module with its arguments; JSON to ``output`` (default: the
    script's ``.etviz/``, for a module the working folder's). ``numeric``: compare each
    quantized stage with its float one (``worker.numeric_overlay``). ``profile_iterations``
    > 0: then run its ExecuTorch program that often with ETDump on (``worker/profile_run.py``);
    ``etdump``: a run of that program elsewhere, its latency on the program and lowered
    stages. ``timeout``: seconds before the run is stopped (None: no limit)."""
    started = time.perf_counter()
    if target.script is not None:
        _check_readable(target.script)
    if output is None:
        output = default_output(target.script) if target.script is not None else (
            (target.cwd or Path.cwd()) / OUTPUT_FOLDER / f"{target.module}.json"
        )
        _make_own_folder(output.parent)
    elif not output.parent.is_dir():
        raise EtvizError(str(output), f"output folder {output.parent} does not exist")
    return _run_script(
        target, output, timeout, log, progress, started, numeric, profile_iterations, etdump
    )


def _run_script(
    target: RunTarget, output: Path, timeout: float | None,
    log: Callable[[str], None] | None, progress: Callable[[str], None] | None, started: float,
    numeric: bool = True, profile_iterations: int = 0, etdump: Path | None = None,
) -> OnceResult:
    from etviz_lsp.worker import ScriptFailed, WarmWorker
    from etviz_lsp.worker.profile_run import summary_line

    if etdump is not None and not etdump.is_file():  # before the (slow) run
        raise EtvizError(str(etdump), "no such file" if not etdump.exists() else "not a file")
    partial = graph_files.partial_path(output)
    try:
        # One run: nothing to pay ahead; the script imports (and warms up) what it uses.
        with WarmWorker(log=log, warm_up=False, preload=False) as worker, _ctrl_c_stops(worker):
            result = worker.run(
                target, output, timeout=timeout, on_progress=progress, numeric=numeric,
                profile_iterations=profile_iterations, partial_output=partial, etdump=etdump,
            )
    except ScriptFailed as failed:
        if failed.partial is None:
            raise
        error = failed.error
        raise EtvizError(error.location, f"{error.headline}; {failed.partial.describe()}") from None
    partial.unlink(missing_ok=True)  # the run finished: no earlier run's stages beside it
    graphs = ScriptGraphs(list(result.graphs), tuple(result.artifacts))
    manifest = result.manifest
    latency = {  # latency-avg -> avg: the profile's node data, as --etdump's
        f.kind.removeprefix("latency-"): f.path for f in (manifest.files if manifest else ())
        if f.role == graph_files.OVERLAY and f.kind.startswith("latency-")
    }
    measured = summary_line(result.profile) if result.profile else ""
    return OnceResult(
        output, graphs, time.perf_counter() - started, output.stat().st_size, latency,
        overlay=f"{etdump.name}: {measured.replace(' on this machine', '')}"
        if etdump and measured else "",
        numeric=_numeric_lines(result.numeric),
        not_delegated=tuple(not_delegated.summary_lines(result.not_delegated)),
        profile="" if etdump else measured,
        profile_error=result.profile_error,
        memory=tuple(str(line) for line in result.memory.get("summary") or ()),
        memory_svg=manifest.file(graph_files.MEMORY_SVG) if manifest else None,
        manifest=manifest,
    )


@contextlib.contextmanager
def _ctrl_c_stops(worker: WarmWorker) -> Iterator[None]:
    """Ctrl+C (SIGINT) stops the run as a cancel does: every process it started is killed
    and its finished stages are kept (partial). A second Ctrl+C interrupts at once."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers belong to the main thread
        return

    def stop(_signum: int, _frame: FrameType | None) -> None:
        signal.signal(signal.SIGINT, signal.default_int_handler)
        worker.stop_soon()

    previous = signal.signal(signal.SIGINT, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous if previous is not None else signal.SIG_DFL)


def _numeric_lines(summary: dict[str, object]) -> tuple[str, ...]:
    from etviz_lsp.worker.numeric_overlay import summary_lines

    return tuple(summary_lines(summary)) if summary else ()


def _check_readable(source: Path) -> None:
    if source.is_file() and not os.access(source, os.R_OK):  # before any process starts
        raise EtvizError(str(source), "permission denied (cannot read the file)")


def _make_own_folder(folder: Path) -> None:
    try:
        folder.mkdir(exist_ok=True)
    except OSError as exc:
        raise EtvizError(str(folder), f"cannot create output folder: {exc.strerror}") from exc
