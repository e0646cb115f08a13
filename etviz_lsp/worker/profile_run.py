"""Profile on this machine (issue 17): the run's ExecuTorch program executed with ETDump on,
its events attributed to the program's graphs, latency node data beside the graph JSON.

Runs in a run's child, the user's Python (never the language server's process): the same
interpreter, ExecuTorch runtime and CPU the user ships with. Two ways in:

- in the run (``--profile``, ``etviz.profile: onSave``): before the run's graph JSON is
  written, the program the run made is executed ``iterations`` times, so its ``program``
  stage is in the graph the run writes (once), the latency node data after it;
- later (the "Profile on This Machine" command): every run that may be profiled *keeps*
  what a profile needs beside its graph JSON, in ``<graph>.profile/``: the program
  (``ExecutorchProgramManager.buffer``), the example inputs the script gave
  ``torch.export.export`` (``ExportedProgram.example_inputs``; the ExecuTorch manager keeps
  none) as a NumPy ``.npz`` read back with ``allow_pickle=False`` (never unpickled), and
  the graph names. A fresh child forked from the warm worker profiles that, because the
  run's own child is gone. A run that makes no ExecuTorch program removes an older
  folder, so a profile never runs an earlier run's program against a newer graph.

Where the latency shows: the ``.pte``'s own graphs are added to the collection as a
``program`` stage (``et @ export.py:20 (program)``, with one nested graph per XNNPACK
delegate), and the node data is keyed on them. That is the program that really ran, so
every value sits on the node that took it: CPU kernels by instruction, each XNNPACK kernel
on its XNN node inside the delegate (``graph/latency.py``). From there the time moves on
to the run's ``lowered`` and ``executorch`` stages, where the modules, partitions and source
lines are (``graph/overlays/stage_latency.py``, issue 28): an XNN node's time onto the edge
ops of its own debug handle (the delegate map the program was kept with, ``meta.json``),
a CPU kernel onto the op of its kind in order (the stages' top-level handles are numbered
again after lowering); what no op ran (runtime-inserted kernels, the call's overhead) stays
on the delegate's partition layer. The ``program`` stage is added only when profiled, so
plain runs keep their graphs, and a re-run (which rewrites the JSON without it) drops the
overlay with it (``graph_files``: the manifest of the re-run no longer lists it). An ETDump
of the program run elsewhere (``--once export.py --etdump run.etdp``) is attributed the
same way instead of running it here.

Time is bounded by the run's timeout (the supervisor kills the child's whole process group
on timeout or cancel); iterations are capped at :data:`MAX_ITERATIONS`.
"""

from __future__ import annotations

import io
import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from etviz_lsp import atomic_file, graph_files
from etviz_lsp.errors import EtvizError
from etviz_lsp.graph import convert
from etviz_lsp.graph.core import model
from etviz_lsp.graph.core.writer import write_json_atomic
from etviz_lsp.graph_files import GraphFiles

MAX_ITERATIONS = 10_000
DEFAULT_ITERATIONS = 20
NOTHING_TO_PROFILE = "the last run made no ExecuTorch program (call .to_executorch() in the script)"
PROGRAM = "program.pte"
INPUTS = "inputs.npz"
META = "meta.json"
ETDUMP = "run.etdp"
ETRECORD = "etrecord.bin"  # kept when the runtime numeric gap is asked for
DEBUG_BUFFER = "debug.bin"
# The runtime logs each logged output (a delegate's, each CPU kernel's) into this buffer
# (allocated once per profile); a program whose outputs overflow it gets a one-line note.
DEBUG_BUFFER_BYTES = 64 << 20
NO_ETRECORD = ("no ETRecord: pass generate_etrecord=True to to_edge_transform_and_lower "
               "(the numeric gap compares the runtime with its reference)")
STAGE = "program"  # the stage name of the profiled .pte's graphs
METRICS = ("p50", "min", "max", "avg")  # node-data files, written in this order
LATENCY_STAGES = ("(lowered)", "(executorch)")  # the run's stages the time moves on to


class ProfileError(EtvizError):
    """Nothing to profile, or the runtime failed: one line, the run's graph is still fine."""


@dataclass(frozen=True, slots=True)
class Kept:
    """A run's program, ready to profile: where it is and what its graphs will be named."""

    folder: Path
    label: str  # the executorch stage's call site: ``et_program @ export.py:20``

    @property
    def pte(self) -> Path:
        return self.folder / PROGRAM


# -- end of a run: keep the program ---------------------------------------------------


def keep(
    program: tuple[str, Any] | None, example_inputs: Any, files: GraphFiles,
    numeric_gap: bool = False,
) -> Kept:
    """Save the run's ExecuTorch program (``(label, manager)``) and inputs beside its graph
    (``files.kept_folder``, listed in the manifest); ``numeric_gap``: its ETRecord too,
    with the inputs as its representative ones (:func:`_keep_etrecord`).

    Raises :class:`ProfileError` when there is nothing to keep (and removes an earlier
    run's folder first: it belongs to a graph that is gone)."""
    folder = files.kept_folder
    shutil.rmtree(folder, ignore_errors=True)
    if program is None:
        raise ProfileError(str(files.graph_json), NOTHING_TO_PROFILE)
    label, manager = program
    if example_inputs is None:
        raise ProfileError(label, "no example inputs: the ExecuTorch program was not made "
                           "from a torch.export.export call of this run")
    inputs = _inputs_npz(label, example_inputs)
    folder.mkdir(mode=0o700, exist_ok=True)
    atomic_file.write_bytes(folder / PROGRAM, bytes(manager.buffer))
    atomic_file.write_bytes(folder / INPUTS, inputs)
    maps = {"label": label, "debug_handle_map": getattr(manager, "debug_handle_map", None),
            "delegate_map": getattr(manager, "delegate_map", None)}  # the stages' handles
    if numeric_gap:
        maps["numeric_gap_error"] = _keep_etrecord(folder, manager, example_inputs)
    atomic_file.write_bytes(folder / META, json.dumps(maps, default=str).encode())
    files.record(graph_files.KEPT_PROGRAM, folder)
    return Kept(folder, label)


def _keep_etrecord(folder: Path, manager: Any, example_inputs: Any) -> str:
    """The ETRecord the lowering made (``generate_etrecord=True``: its reference graph and
    debug handles are the program's, so the Inspector can compare), with the kept inputs
    as the representative inputs its reference runs on; why not, in one line, or ""."""
    from torch.utils import _pytree

    try:
        record = manager.get_etrecord()
    except Exception:  # ExecuTorch raises a bare RuntimeError when there is none
        return NO_ETRECORD
    try:
        record.update_representative_inputs([list(_pytree.tree_leaves(example_inputs))])
        record.save(str(folder / ETRECORD))
    except Exception as exc:  # ExecuTorch's serializer: costs the gap only
        text = str(exc).strip().splitlines()
        return f"cannot save the ETRecord ({type(exc).__name__}: {text[0] if text else ''})"
    return ""


def _inputs_npz(label: str, example_inputs: Any) -> bytes:
    """The flat inputs (``(args, kwargs)`` in the program's order) as a NumPy ``.npz``.

    Key ``<i>`` holds a tensor NumPy can hold, ``<i>:<torch dtype>`` one it cannot (the
    bits as an integer array of the same width), ``<i>:int|float|bool`` a Python scalar.
    """
    import numpy as np
    import torch
    from torch.utils import _pytree

    arrays: dict[str, Any] = {}
    for i, leaf in enumerate(_pytree.tree_leaves(example_inputs)):
        if isinstance(leaf, torch.Tensor):
            tensor = leaf.detach().cpu().contiguous()
            try:
                arrays[str(i)] = tensor.numpy()
            except TypeError:  # bfloat16 and friends: NumPy has no such dtype
                same_width = {1: torch.uint8, 2: torch.int16, 4: torch.int32, 8: torch.int64}
                bits = tensor.view(same_width[tensor.element_size()]).numpy()
                arrays[f"{i}:{str(tensor.dtype).removeprefix('torch.')}"] = bits
        elif isinstance(leaf, (bool, int, float)):
            arrays[f"{i}:{type(leaf).__name__}"] = np.array(leaf)
        else:
            raise ProfileError(label, f"example input {i} is a {type(leaf).__name__}: only "
                               "tensors and numbers can be fed to the runtime")
    out = io.BytesIO()
    np.savez(out, **arrays)
    return out.getvalue()


def load_inputs(path: Path) -> list[Any]:
    """The inputs :func:`keep` saved, in order; never unpickles (``allow_pickle=False``)."""
    import numpy as np
    import torch

    try:
        with np.load(path, allow_pickle=False) as saved:
            items = {key: saved[key] for key in saved.files}
    except (OSError, ValueError) as exc:
        raise ProfileError(str(path), f"cannot read the saved inputs: {exc}") from exc
    by_index: dict[int, Any] = {}
    for key, array in items.items():
        index, _, kind = key.partition(":")
        if kind in ("int", "float", "bool"):
            by_index[int(index)] = {"int": int, "float": float, "bool": bool}[kind](array.item())
        elif kind:
            by_index[int(index)] = torch.from_numpy(array.copy()).view(getattr(torch, kind))
        else:
            by_index[int(index)] = torch.from_numpy(array.copy())
    return [by_index[i] for i in sorted(by_index)]


def kept(graph_json: Path) -> Kept:
    """The program kept beside ``graph_json``; :class:`ProfileError` when there is none."""
    folder = graph_files.kept_folder(graph_json)
    try:
        meta = json.loads((folder / META).read_text())
    except (OSError, ValueError):
        raise ProfileError(str(graph_json), NOTHING_TO_PROFILE) from None
    if not (folder / PROGRAM).is_file() or not (folder / INPUTS).is_file():
        raise ProfileError(str(graph_json), NOTHING_TO_PROFILE)
    return Kept(folder, str(meta.get("label") or "program"))


# -- the profile ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Profiled:
    """What a profile found; ``to_json`` crosses the process boundary."""

    runs: int
    attributed: int
    unattributed: int
    slowest: str  # "XNNConv2d (xnode_2 in et (program)/XnnpackBackend #0) 0.0041 ms"
    files: tuple[str, ...]  # the node-data files, average first
    seconds: float
    numeric_gap: dict[str, Any] | None = None  # GapSummary.to_json, when asked for

    def to_json(self) -> dict[str, Any]:
        return {
            "runs": self.runs, "attributed": self.attributed, "unattributed": self.unattributed,
            "slowest": self.slowest, "files": list(self.files), "seconds": self.seconds,
            **({"numeric_gap": self.numeric_gap} if self.numeric_gap is not None else {}),
        }


@dataclass(frozen=True, slots=True)
class GapSummary:
    """The runtime numeric gap of a profile: node data, the worst rows at the user's ops
    (``stage_gap.StageGap.worst``), its line or why there is none."""

    node_data: dict[str, model.Json]
    worst: list[dict[str, object]]
    line: str

    def to_json(self) -> dict[str, Any]:
        return {"worst": self.worst, "line": self.line}



def summary_line(profile: dict[str, object] | None) -> str:
    """A profile's one line (from :meth:`Profiled.to_json`): runs, events attributed or
    not, the slowest op."""
    if not profile:
        return "no profile"
    gap = profile.get("numeric_gap")
    said = f"; numeric gap: {gap.get('line')}" if isinstance(gap, dict) else ""
    return (
        f"{profile.get('runs')} runs on this machine, {profile.get('attributed')} events "
        f"attributed, {profile.get('unattributed')} not attributed; slowest op "
        f"{profile.get('slowest') or '(none)'}{said}"
    )


@dataclass(frozen=True, slots=True)
class Measured:
    """A profile before anything is written: the ``program`` stage's graphs (ids as in the
    collection) and their latency node data per metric."""

    graphs: list[model.Graph]
    node_data: dict[str, dict[str, model.Json]]
    runs: int
    attributed: int
    unattributed: int
    slowest: str
    seconds: float
    gap: GapSummary | None = None


def measure(
    what: Kept, iterations: int, progress: Callable[[str], None], stages: list[model.Graph],
    etdump_path: Path | None = None,
) -> Measured:
    """Run the kept program (or read ``etdump_path``, a run of it elsewhere), attribute its
    events to its graphs, named as the ``program`` stage of a collection of ``stages``;
    the time moves on to the ``lowered`` and ``executorch`` stages among them by debug
    handle (``graph/overlays/stage_latency.py``: annotated in place, node data returned).
    Writes nothing beside the graph."""
    from etviz_lsp.graph.overlays import latency
    from etviz_lsp.graph.readers import etdump
    from etviz_lsp.graph.readers.pte_reader import read_pte

    started = time.monotonic()
    iterations = max(1, min(int(iterations), MAX_ITERATIONS))
    executed = etdump_path is None  # only a run here records the debug buffer
    etdump_path = etdump_path or _execute(what, iterations, progress)
    progress("attributing")
    program = read_pte(what.pte)
    found = latency.attribute(program, etdump.read_etdump(etdump_path))
    on_stages = _onto_stages(what, program, found.node_data, stages)
    gap = _numeric_gap(what, program, stages) if executed else None
    renamed = _rename(program.graphs, what.label, {g.id for g in stages})
    node_data = {
        metric: {**{renamed[g]: v for g, v in found.node_data.get(metric, {}).items()},
                 **on_stages.get(metric, {})}
        for metric in METRICS
    }
    slowest = _slowest(program.graphs, found.node_data.get("avg", {}), renamed)
    if gap is not None:
        gap = GapSummary({renamed.get(g, g): v for g, v in gap.node_data.items()},
                         gap.worst, gap.line)
    return Measured(program.graphs, node_data, found.runs, found.attributed,
                    found.unattributed, slowest, time.monotonic() - started, gap)


def _numeric_gap(
    what: Kept, program: model.GraphCollection, stages: list[model.Graph]
) -> GapSummary | None:
    """The runtime numeric gap of the run just made (its debug buffer against the kept
    ETRecord), on the ``.pte``'s graphs and moved onto the run's stages; None when not
    asked for, a note when it cannot be had (the latency stands either way)."""
    from etviz_lsp.graph.overlays import numeric_gap, stage_gap
    from etviz_lsp.graph.readers import etrecord

    meta = _meta(what)
    if "numeric_gap_error" not in meta:
        return None
    if meta["numeric_gap_error"]:
        return GapSummary({}, [], f"no numeric gap: {meta['numeric_gap_error']}")
    record = what.folder / ETRECORD
    try:
        result = numeric_gap.numeric_gap(record, what.folder / ETDUMP, what.folder / DEBUG_BUFFER)
    except EtvizError as exc:
        return GapSummary({}, [], f"no numeric gap: {exc.cause}")
    read = [g for g in stages if "/" not in g.id and g.id.endswith(LATENCY_STAGES)]
    on_stages = stage_gap.onto_stages(result.gaps, program, etrecord.links(record), read)
    line = result.summary(what.folder / DEBUG_BUFFER)
    return GapSummary({**result.node_data, **on_stages.node_data}, on_stages.worst, line)


def _meta(what: Kept) -> dict[str, Any]:
    try:
        meta = json.loads((what.folder / META).read_text())
    except (OSError, ValueError):
        return {}
    return meta if isinstance(meta, dict) else {}


def _onto_stages(
    what: Kept, program: model.GraphCollection, node_data: dict[str, dict[str, model.Json]],
    stages: list[model.Graph],
) -> dict[str, dict[str, model.Json]]:
    """The program's latency on the run's ``lowered`` / ``executorch`` stages (the ones
    users read, with their modules and source lines), through the handles kept with it."""
    from etviz_lsp.graph.overlays import stage_latency
    from etviz_lsp.graph.readers.etrecord import links_from_maps

    meta = _meta(what)
    links = links_from_maps(PROGRAM, meta.get("debug_handle_map"), meta.get("delegate_map"))
    methods = sorted(links.handles)
    if not methods:
        return {}
    method = "forward" if "forward" in methods else methods[0]
    times, calls = stage_latency.program_times(program, node_data, links, method)
    found = stage_latency.StageLatency()
    for graph in stages:
        if "/" not in graph.id and graph.id.endswith(LATENCY_STAGES):
            stage_latency.onto_graph(graph, times, calls, found, live=True)
    return found.node_data


def write_node_data(measured: Measured, files: GraphFiles) -> Profiled:
    """After the graph JSON holding the program stage: the latency node data beside it."""
    gap = measured.gap
    if gap is not None and gap.node_data:  # before the latency: the average loads last
        files.write_overlay("numeric", "gap", gap.node_data)
    paths = [files.write_overlay("latency", m, measured.node_data[m]) for m in METRICS]
    return Profiled(measured.runs, measured.attributed, measured.unattributed,
                    measured.slowest, tuple(str(p) for p in reversed(paths)), measured.seconds,
                    gap.to_json() if gap is not None else None)


def profile_kept(
    graph_json: Path, iterations: int, progress: Callable[[str], None]
) -> tuple[Profiled, list[model.Graph], graph_files.Manifest]:
    """The command: profile the program kept beside ``graph_json``. Its program stage
    replaces an earlier profile's in the collection there (rewritten once; the run's node
    ids stay, so the files its manifest lists stay current), the latency node data goes
    after it, the manifest is amended last. The summary, every graph, the manifest."""
    what = kept(graph_json)
    files = GraphFiles.amend(graph_json)
    data = _read_collection(graph_json)
    data["graphs"] = [g for g in data["graphs"] if not _is_stage_of(g["id"], what.label)]
    # The run's graphs as model graphs sharing their nodes and layer attributes: the
    # stages' latency lands in ``data`` itself.
    measured = measure(what, iterations, progress, graph_infos(data))
    data["graphs"].extend(graph.to_json() for graph in measured.graphs)
    write_json_atomic(graph_json, data)
    graphs = graph_infos(data)
    files.wrote_graph(str(data.get("label") or ""), convert.manifest_graphs(graphs))
    summary = write_node_data(measured, files)
    return summary, graphs, files.finish()


def _execute(what: Kept, iterations: int, progress: Callable[[str], None]) -> Path:
    """``iterations`` runs of the method with ETDump on; the ETDump's path."""
    try:
        from executorch.runtime import Runtime
    except ImportError as exc:
        raise ProfileError(what.label, f"this Python has no ExecuTorch runtime ({exc})") from exc
    inputs = load_inputs(what.folder / INPUTS)
    progress("loading the program")
    try:
        gap = (what.folder / ETRECORD).is_file()  # a debug buffer only for the numeric gap
        loaded = Runtime.get().load_program(
            what.pte, enable_etdump=True, debug_buffer_size=DEBUG_BUFFER_BYTES if gap else 0)
        names = sorted(loaded.method_names)
        name = "forward" if "forward" in names else names[0]
        method = loaded.load_method(name)
        if method is None:
            raise RuntimeError(f"method {name!r} did not load")
        report = max(1, iterations // 10)
        for i in range(iterations):
            if i % report == 0:
                progress(f"profiling {i + 1}/{iterations}")
            method.execute(inputs)
        etdump_path = what.folder / ETDUMP
        loaded.write_etdump_result_to_file(str(etdump_path), str(what.folder / DEBUG_BUFFER))
    except (RuntimeError, ValueError, TypeError, IndexError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ProfileError(what.label, f"the ExecuTorch runtime failed: {first}") from exc
    return etdump_path


def _read_collection(graph_json: Path) -> model.Json:
    """The graph JSON a run wrote into our own cache (ours: plain JSON, no code in it)."""
    try:
        data = json.loads(graph_json.read_bytes())
    except (OSError, ValueError) as exc:
        raise ProfileError(str(graph_json), f"cannot read the run's graphs: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("graphs"), list):
        raise ProfileError(str(graph_json), "not a graph collection")
    return data


def _stage_id(label: str, method: str, methods: int) -> str:
    return f"{label}.{method} ({STAGE})" if methods > 1 else f"{label} ({STAGE})"


def _is_stage_of(graph_id: str, label: str) -> bool:
    """A graph an earlier profile of the same program added (replaced, not repeated)."""
    head = graph_id.split("/", 1)[0]
    return head.startswith(label) and f"({STAGE})" in head


def _rename(graphs: list[model.Graph], label: str, taken: set[str]) -> dict[str, str]:
    """The ``.pte``'s graph ids (``forward``, ``forward/XnnpackBackend #0``) -> ids of the
    collection's ``program`` stage; returns old -> new, subgraph links rewritten."""
    methods = [g.id for g in graphs if "/" not in g.id]
    taken = {t for t in taken if not _is_stage_of(t, label)}
    renamed: dict[str, str] = {}
    for method in methods:
        base = candidate = _stage_id(label, method, len(methods))
        n = 1
        while candidate in taken:
            n += 1
            candidate = f"{base} #{n}"
        renamed[method] = candidate
    for graph in graphs:
        head, _, rest = graph.id.partition("/")
        new = renamed.get(head, head) + (f"/{rest}" if rest else "")
        renamed[graph.id] = new
    for graph in graphs:
        graph.id = renamed[graph.id]
        for node in graph.nodes:
            if node.get("subgraphIds"):
                node["subgraphIds"] = [renamed.get(s, s) for s in node["subgraphIds"]]
    return renamed


def _slowest(
    graphs: list[model.Graph], averages: dict[str, model.Json], renamed: dict[str, str]
) -> str:
    """The op that took longest: a kernel, not a delegate call (that is its kernels' sum)."""
    best: tuple[float, str] | None = None
    by_id = {g.id: g for g in graphs}
    for old_id, data in averages.items():
        graph = by_id.get(renamed.get(old_id, old_id))
        if graph is None:
            continue
        nodes = {n["id"]: n for n in graph.nodes}
        for node_id, result in data.get("results", {}).items():
            node = nodes.get(node_id)
            if node is None or node.get("subgraphIds"):
                continue
            value = float(result.get("value", 0.0))
            text = f"{node['label']} ({node_id} in {graph.id}) {value:.4f} ms"
            if best is None or value > best[0]:
                best = (value, text)
    return best[1] if best else ""


def graph_infos(collection: model.Json) -> list[model.Graph]:
    """The collection's graphs as :class:`model.Graph` (for the counts a run answers)."""
    return [
        model.Graph(g["id"], g.get("nodes", []), g.get("groupNodeAttributes", {}))
        for g in collection["graphs"]
    ]
