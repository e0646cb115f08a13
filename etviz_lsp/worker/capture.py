"""Catch every program a script makes, whatever name it imported the functions under.

The warm worker wraps the export and lowering entry points once, at their definition sites
*and* wherever another module already bound them (``from executorch.exir import to_edge``
copies the function into the importer). Modules not imported yet are wrapped by an import
hook right after they execute. The script runs later in a forked child, so the modules it
imports bind the wrapped functions too. A wrapper does nothing unless a
:class:`Recorder` is active (inside a run). It records the outermost call of each chain,
whoever made it (the script, a helper package, ExecuTorch's ``LLMEdgeManager``, an example
compiler in site-packages), and leaves out what the call chain says is not a user program:
calls inside another captured call (lowering calls ``to_backend`` internally) and calls
made by quantizer internals (``prepare_pt2e`` exports pattern graphs).

Each captured program is converted at once and handed to ``on_graphs`` (the run child
sends it to the caller then): the graph shows the program as it was at that stage, even if
a later step changes it in place, and an editor can show it before the run ends.
"""

from __future__ import annotations

import functools
import importlib.abc
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import FrameType
from typing import Any

from etviz_lsp.graph import convert
from etviz_lsp.graph.core import model
from etviz_lsp.graph.overlays import correspondence
from etviz_lsp.worker import not_delegated
from etviz_lsp.worker.numeric_overlay import Stage
from etviz_lsp.worker.user_code import Site, UserCode, assigned_name


@dataclass(frozen=True, slots=True)
class Target:
    """One entry point: ``owner`` is a module, or ``module:Class`` for a method."""

    owner: str
    attr: str
    progress: str  # the stage a user sees while it runs


TARGETS = (
    Target("torch.export", "export", "exporting"),
    Target("executorch.exir.program._program", "to_edge", "lowering"),
    Target("executorch.exir.program._program", "to_edge_transform_and_lower", "lowering"),
    Target("executorch.exir.backend.backend_api", "to_backend", "lowering"),
    Target("executorch.exir.program._program:EdgeProgramManager", "to_backend", "lowering"),
    Target("executorch.exir.program._program:EdgeProgramManager", "to_executorch", "lowering"),
    # Make no program (a GraphModule), but say what the run is doing; and what they export
    # inside (pattern graphs) is nested, never captured.
    Target("torchao.quantization.pt2e.quantize_pt2e", "prepare_pt2e", "quantizing"),
    Target("torchao.quantization.pt2e.quantize_pt2e", "prepare_qat_pt2e", "quantizing"),
    Target("torchao.quantization.pt2e.quantize_pt2e", "convert_pt2e", "quantizing"),
)

_active: Recorder | None = None


class Recorder:
    """The programs of one run, converted to graphs as they are captured."""

    def __init__(
        self,
        user: UserCode,
        progress: Callable[[str], None],
        on_graphs: Callable[[list[model.Graph], float], None] | None = None,
    ) -> None:
        self.user = user
        self.progress = progress
        # Called with every graph so far and the wall-clock time the program's call
        # returned, once that program's graphs are converted.
        self.on_graphs = on_graphs or (lambda _graphs, _returned_at: None)
        self.depth = 0
        self.graphs: list[model.Graph] = []
        self.warnings: list[str] = []
        self._seen: set[int] = set()
        self._keep: list[object] = []  # keeps ids in _seen from being reused
        self._names: set[str] = set()
        self._made_from: dict[str, str] = {}  # stage name -> what its first call exported
        # Stage to stage, indexed from the live graphs as each stage is captured (issue 18).
        self.correspondence = correspondence.RunCorrespondence()
        # Each stage's live program with its graph: the numeric overlay compares them.
        self.stages: list[Stage] = []
        # Profile on this machine (issue 17, worker/profile_run.py): the ExecuTorch program
        # made last (its call site, the manager) and the example inputs of the newest
        # ExportedProgram that has them (an ExecuTorch manager's programs keep none).
        self.executorch: tuple[str, Any] | None = None
        self.example_inputs: Any = None
        # Why ops stayed on the CPU, heard from the partitioners of each lowering (issue 26).
        self.not_delegated = not_delegated.RunReasons()

    def __enter__(self) -> Recorder:
        global _active
        _active = self
        return self

    def __exit__(self, *exc: object) -> None:
        global _active
        _active = None

    def record_call(
        self, result: Any, function: str, site: Site | None, returned_at: float,
        made_from: str = "",
    ) -> None:
        """``made_from``: the class of the call's first argument (what it exported)."""
        if not _is_program(result) or self.seen(result):
            return
        var = (assigned_name(site.file, site.line) if site else None) or function
        where = f" @ {site.short}" if site else ""
        self._record(result, var, where, returned_at, made_from)

    def record_global(self, value: Any, var: str) -> None:
        if _is_program(value) and not self.seen(value):
            self._record(value, var, "", time.time(), "")

    def skips(self, caller: FrameType) -> bool:
        """Not a call to capture: no run, inside a captured call, or quantizer internals."""
        return self.depth > 0 or self.user.inside_library_internals(caller)

    def seen(self, obj: Any) -> bool:
        return id(obj) in self._seen

    def _record(
        self, obj: Any, var: str, where: str, returned_at: float, made_from: str
    ) -> None:
        self._remember(obj)
        if type(obj).__name__ == "ExecutorchProgramManager":
            self.executorch = (f"{var}{where}", obj)
        if getattr(obj, "example_inputs", None) is not None:
            self.example_inputs = obj.example_inputs
        before = len(self.graphs)
        for method, program in _method_programs(obj):
            self._remember(program)
            label = f"{var}.{method}" if method else var
            kind = stage(obj, program)
            name = self._unique(f"{label}{where} ({kind})", made_from)
            self.progress("converting")
            try:
                collection = convert.from_programs([(name, program)], label=name)
            except Exception as exc:  # a graph we cannot draw must not lose the others
                self.warnings.append(f"{name}: not converted: {type(exc).__name__}: {exc}")
                continue
            self.not_delegated.annotate(obj, collection.graphs[0])
            self._correspond(program, collection.graphs[0], kind)
            self.stages.append(Stage(kind, program, collection.graphs[0]))
            self.graphs.extend(collection.graphs)
        if len(self.graphs) > before:
            self.on_graphs(self.graphs, returned_at)

    def _correspond(self, program: Any, graph: model.Graph, kind: str) -> None:
        try:
            self.correspondence.add_stage(program, graph, kind)
        except Exception as exc:  # costs the compare view, never the graph
            failure = f"{type(exc).__name__}: {exc}"
            self.warnings.append(f"{graph.id}: no stage correspondence: {failure}")

    def _remember(self, obj: object) -> None:
        self._seen.add(id(obj))
        self._keep.append(obj)

    def _unique(self, name: str, made_from: str) -> str:
        """``name``, else what differs from the stage of that name (``export_llm`` exports
        its model, then re-exports the GraphModule: ``... (quantized) from GraphModule``),
        else ``name #2``."""
        candidate, n = name, 1
        first_from = self._made_from.setdefault(name, made_from)
        if candidate in self._names and made_from and made_from != first_from:
            candidate = f"{name} from {made_from}"
        while candidate in self._names:
            n += 1
            candidate = f"{name} #{n}"
        self._names.add(candidate)
        return candidate


def _is_program(value: Any) -> bool:
    # Imported here: `programs` imports torch, and a lean warm worker imports this module
    # without it (the run child imports torch as the script does).
    from etviz_lsp.graph.readers import programs

    return programs.is_program(value)


def _method_programs(obj: Any) -> Iterator[tuple[str, Any]]:
    """``("", program)`` for an ExportedProgram; one per method for program managers."""
    from etviz_lsp.graph.readers import programs

    named = programs.named_programs(obj, "")
    methods = getattr(obj, "methods", None)
    if methods is None or len(named) == 1:
        yield from (("", program) for _, program in named)
        return
    for method in sorted(methods):
        yield str(method), obj.exported_program(method)


def stage(obj: Any, program: Any) -> str:
    """What a person calls this program: exported, quantized, edge, lowered, executorch."""
    kind = type(obj).__name__
    if kind == "ExecutorchProgramManager":
        return "executorch"
    targets = _call_targets(program)
    if any("executorch_call_delegate" in t for t in targets):
        return "lowered"
    if kind == "EdgeProgramManager" or getattr(program, "dialect", "") == "EDGE":
        return "edge"
    from etviz_lsp.graph.readers import programs  # imports torch: see _is_program

    return "quantized" if programs.is_quantized(targets) else "exported"


def _call_targets(program: Any) -> list[str]:
    try:
        nodes = program.graph_module.graph.nodes
    except AttributeError:
        return []
    return [str(node.target) for node in nodes if node.op == "call_function"]


def _wrap(original: Callable[..., Any], function: str, progress: str) -> Callable[..., Any]:
    @functools.wraps(original)
    def capturing(*args: Any, **kwargs: Any) -> Any:
        recorder = _active
        caller = sys._getframe(1)
        if recorder is None or recorder.skips(caller):
            return original(*args, **kwargs)
        site = recorder.user.caller_site(caller)
        recorder.progress(progress)
        recorder.depth += 1
        try:
            with recorder.not_delegated.watching(function, args, kwargs) as reasons:
                result = original(*args, **kwargs)
        finally:
            recorder.depth -= 1
        recorder.not_delegated.made(function, result, reasons)
        made_from = type(args[0]).__name__ if args else ""
        recorder.record_call(result, function, site, time.time(), made_from)
        recorder.progress("running script")
        return result

    capturing.__etviz_original__ = original  # type: ignore[attr-defined]
    return capturing


def install() -> list[str]:
    """Wrap the targets whose modules are loaded; the others when they get imported.

    Returns what was wrapped now. Modules not loaded yet (a lean worker does not import
    ExecuTorch up front) are patched by an import hook right after they execute, before any
    other module can bind their functions.
    """
    wrapped: list[str] = []
    later: dict[str, list[Target]] = {}
    for target in TARGETS:
        module_name = target.owner.partition(":")[0]
        if module_name in sys.modules:
            if _patch(target):
                wrapped.append(f"{target.owner}.{target.attr}")
        else:
            later.setdefault(module_name, []).append(target)
    if later:
        sys.meta_path.insert(0, _PatchOnImport(later))
    return wrapped


def _patch(target: Target) -> bool:
    module_name, _, class_name = target.owner.partition(":")
    owner: Any = sys.modules.get(module_name)
    if owner is not None and class_name:
        owner = getattr(owner, class_name, None)
    original = getattr(owner, target.attr, None) if owner is not None else None
    if original is None or hasattr(original, "__etviz_original__"):
        return False
    replacement = _wrap(original, target.attr, target.progress)
    setattr(owner, target.attr, replacement)
    if not class_name:
        _rebind(original, replacement)
    return True


class _PatchOnImport(importlib.abc.MetaPathFinder):
    """Patches a target module as soon as it has executed (first import, in a run)."""

    def __init__(self, pending: dict[str, list[Target]]) -> None:
        self.pending = pending

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> Any:
        if fullname not in self.pending:
            return None
        for finder in sys.meta_path:
            find = getattr(finder, "find_spec", None)
            if finder is self or find is None:
                continue
            spec = find(fullname, path, target)
            if spec is not None:
                break
        else:
            return None
        if spec.loader is not None and hasattr(spec.loader, "exec_module"):
            spec.loader = _PatchingLoader(spec.loader, self.pending.pop(fullname))
        return spec


class _PatchingLoader(importlib.abc.Loader):
    def __init__(self, loader: Any, targets: list[Target]) -> None:
        self._loader = loader
        self._targets = targets

    def create_module(self, spec: Any) -> Any:
        return self._loader.create_module(spec)

    def exec_module(self, module: Any) -> None:
        self._loader.exec_module(module)
        for target in self._targets:
            _patch(target)

    def __getattr__(self, name: str) -> Any:  # get_source, is_package, resource readers...
        return getattr(self._loader, name)


def _rebind(original: object, replacement: object) -> None:
    """Replace names other modules already bound to ``original`` (``from x import f``)."""
    for module in list(sys.modules.values()):
        namespace = getattr(module, "__dict__", None)
        if not isinstance(namespace, dict):
            continue
        for name, value in list(namespace.items()):
            if value is original:
                namespace[name] = replacement
