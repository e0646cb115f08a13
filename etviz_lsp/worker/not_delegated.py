"""In a run's child: why each op stayed on the CPU, in each partitioner's own words (issue 26).

A captured lowering call (``to_edge_transform_and_lower``, ``to_backend``: ``capture.py``)
is watched: each partitioner among its arguments gets its ``partition`` replaced on the
instance for the length of the call. During a partition call, the methods its backend
speaks through (``graph/backends/partitioner_reasons.py``: ExecuTorch's ``WhyNoPartition``
and ``WhyNoPartitionReporter`` for every partitioner, a backend's own ones in its module)
are wrapped at their class: each call's node and reason are heard, then the method runs as
before (what it logs is logged as before; nothing is printed). When the partition call
returns, each op node it did not tag is one it left on the CPU: its words for that node,
else its support check's "no", else what it answers when asked, else "gave no reason".
Never a reason of ours.

The reasons go with the program the lowering made (by object) to its ``to_executorch``;
an ETRecord of that program saved by the script gets them beside it
(``readers/not_delegated_file.py``), for its ``.pte``.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from etviz_lsp import atomic_file
from etviz_lsp.errors import EtvizError
from etviz_lsp.graph.backends import registry
from etviz_lsp.graph.backends.partitioner_reasons import (
    SHARED,
    Check,
    ReasonSource,
    Said,
    source_for,
)
from etviz_lsp.graph.core import model, not_delegated
from etviz_lsp.graph.readers import not_delegated_file

LOWERING = ("to_edge_transform_and_lower", "to_backend")
PLUMBING = ("getitem", "executorch_call_delegate")  # untagged, but no op a backend runs
UNSUPPORTED = "not supported by its operator support"
LEFT_OUT = "its operator support accepts it, but no partition it made holds it"
SILENT = not_delegated.SILENT


@dataclass(slots=True)
class Reasons:
    """One lowering call's: FX node name -> (op name, one line per partitioner that left
    it out), and the node's debug handle (the ETRecord's key)."""

    ops: dict[str, tuple[str, list[str]]] = field(default_factory=dict)
    handles: dict[str, int] = field(default_factory=dict)

    def add(self, name: str, op: str, handle: object, line: str) -> None:
        _, lines = self.ops.setdefault(name, (op, []))
        if line not in lines:
            lines.append(line)
        if isinstance(handle, int):
            self.handles[name] = handle

    def by_handle(self) -> list[dict[str, Any]]:
        return [
            {"handle": self.handles[name], "node": name, "op": op, "reasons": lines}
            for name, (op, lines) in self.ops.items() if name in self.handles
        ]  # fmt: skip


class RunReasons:
    """A run's reasons, by the program each lowering made; what the run's answer carries."""

    def __init__(self) -> None:
        # id -> (the program a call made, its reasons, made by the lowering itself: its
        # graphs are the summary's; a to_executorch's repeat them)
        self._by_object: dict[int, tuple[object, Reasons, bool]] = {}
        self._etrecords: dict[int, tuple[object, Reasons]] = {}
        self._saves_heard: set[type] = set()
        self.summary: list[dict[str, Any]] = []  # per lowering: its graph, its CPU ops
        self.notes: list[str] = []

    @contextlib.contextmanager
    def watching(
        self, function: str, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Iterator[Reasons | None]:
        """Around one captured call: the reasons what it makes gets (pass them to
        ``made``): those heard (a lowering), those of the program it was called on
        (``to_executorch``), or None."""
        if function == "to_executorch":
            yield self.of(args[0]) if args else None
            return
        if function not in LOWERING:
            yield None
            return
        reasons = Reasons()
        undo = [_watch(p, reasons, self.notes) for p in _partitioners(args, kwargs)]
        try:
            yield reasons
        finally:
            for step in undo:
                step()

    def made(self, function: str, result: Any, reasons: Reasons | None) -> None:
        if reasons is None:
            return
        self._by_object[id(result)] = (result, reasons, function in LOWERING)
        etrecord = getattr(result, "_etrecord", None)  # to_executorch's, or the lowering's
        if etrecord is not None:
            self._etrecords[id(etrecord)] = (etrecord, reasons)
            self._hear_saves(type(etrecord))

    def of(self, obj: object) -> Reasons | None:
        kept = self._by_object.get(id(obj))
        return kept[1] if kept is not None and kept[0] is obj else None

    def annotate(self, obj: object, graph: model.Graph) -> None:
        """The reasons on ``graph`` (a stage of ``obj``, one per method); a lowering's own
        graphs are the summary's entries."""
        kept = self._by_object.get(id(obj))
        if kept is None or kept[0] is not obj or not kept[1].ops:
            return
        found = not_delegated.annotate(graph, kept[1].ops)
        if found and kept[2]:
            self.summary.append({"graph": graph.id, "ops": found})

    def _hear_saves(self, etrecord_class: type) -> None:
        """``ETRecord.save`` writes the reasons beside the file it saved (this child only:
        it exits after the run)."""
        if etrecord_class in self._saves_heard:
            return
        self._saves_heard.add(etrecord_class)
        original = etrecord_class.save  # type: ignore[attr-defined]
        run = self

        def save(record: Any, path: Any, *args: Any, **kwargs: Any) -> Any:
            done = original(record, path, *args, **kwargs)
            kept = run._etrecords.get(id(record))
            if kept is not None and kept[0] is record and isinstance(path, (str, os.PathLike)):
                run._write_beside(Path(os.fspath(path)), kept[1])
            return done

        etrecord_class.save = save  # type: ignore[attr-defined]

    def _write_beside(self, etrecord: Path, reasons: Reasons) -> None:
        target = not_delegated_file.path_for(etrecord)
        try:
            target.parent.mkdir(exist_ok=True)
            data = not_delegated_file.content(etrecord, reasons.by_handle())
            atomic_file.write_bytes(target, json.dumps(data).encode())
        except (OSError, EtvizError) as exc:
            self.notes.append(f"{etrecord.name}: why-not-delegated reasons not kept: {exc}")


def _partitioners(args: tuple[Any, ...], kwargs: dict[str, Any]) -> list[Any]:
    """The partitioner instances among a lowering's arguments (alone, in a list, in a dict
    of method -> list)."""
    utils = sys.modules.get("executorch.exir.backend.partitioner")
    base = getattr(utils, "Partitioner", None)
    if base is None:
        return []
    found: list[Any] = []

    def visit(value: Any, depth: int) -> None:
        if isinstance(value, base):
            if not any(value is seen for seen in found):
                found.append(value)
        elif depth < 2 and isinstance(value, (list, tuple)):
            for item in value:
                visit(item, depth + 1)
        elif depth < 2 and isinstance(value, dict):
            for item in value.values():
                visit(item, depth + 1)

    for value in (*args, *kwargs.values()):
        visit(value, 0)
    return found


def _watch(partitioner: Any, reasons: Reasons, notes: list[str]) -> Callable[[], None]:
    """Replace ``partitioner.partition`` on the instance; returns what puts it back."""
    original = partitioner.partition
    source = source_for(type(partitioner), registry.partitioner_reasons_by_class())
    name = type(partitioner).__name__

    def partition(program: Any) -> Any:
        with _listening(source) as heard:
            result = original(program)
        try:
            _note(reasons, name, source, heard, partitioner, result)
        except Exception as exc:  # costs the reasons, never the lowering
            notes.append(f"{name}: why-not-delegated reasons not read: {type(exc).__name__}: {exc}")
        return result

    had = "partition" in getattr(partitioner, "__dict__", {})
    try:
        partitioner.partition = partition
    except (AttributeError, TypeError):  # __slots__, a frozen class: not watched
        return lambda: None

    def undo() -> None:
        if had:
            partitioner.partition = original
        else:
            with contextlib.suppress(AttributeError):
                del partitioner.partition

    return undo


class _Heard:
    """What a partitioner said during one partition call, by node."""

    def __init__(self) -> None:
        # by node, and by name for a partitioner that tags a copy of what it looked at
        self.words: dict[int | str, list[str]] = {}
        self.checked: dict[int | str, bool] = {}
        self.looking: list[Any] = []  # the nodes its support check is looking at
        self._keep: list[Any] = []  # ids stay theirs while heard

    def said(self, node: Any, reason: Any) -> None:
        if node is not None and reason is not None:
            for key in (id(node), str(getattr(node, "name", ""))):
                self.words.setdefault(key, []).append(str(reason).strip())
            self._keep.append(node)

    def answered(self, node: Any, supported: bool) -> None:
        self.checked[id(node)] = self.checked[str(getattr(node, "name", ""))] = supported
        self._keep.append(node)

    def words_for(self, node: Any) -> list[str]:
        return self.words.get(id(node)) or self.words.get(node.name) or []

    def answer_for(self, node: Any) -> bool | None:
        answer = self.checked.get(id(node))
        return answer if answer is not None else self.checked.get(node.name)


@contextlib.contextmanager
def _listening(source: ReasonSource) -> Iterator[_Heard]:
    heard = _Heard()
    undo: list[Callable[[], None]] = []
    try:
        for said in (*SHARED, *source.said):
            undo.append(_wrap(said.module, said.owner, said.method, _speaker(heard, said)))
        if source.check is not None:
            check = source.check
            undo.append(_wrap(check.module, check.owner, check.method, _checker(heard, check)))
        yield heard
    finally:
        for step in reversed(undo):
            step()


Wrapper = Callable[[Callable[..., Any]], Callable[..., Any]]


def _wrap(module: str, owner: str, method: str, make: Wrapper) -> Callable[[], None]:
    """``make(original)`` in place of ``module.owner.method`` (when that module is loaded:
    a partitioner's own module is, while it runs); returns what puts it back."""
    klass = getattr(sys.modules.get(module), owner, None)
    original = getattr(klass, method, None) if klass is not None else None
    if klass is None or original is None or hasattr(original, "__etviz_heard__"):
        return lambda: None
    own = method in vars(klass)
    wrapper = make(original)
    wrapper.__etviz_heard__ = True  # type: ignore[attr-defined]
    setattr(klass, method, wrapper)

    def undo() -> None:
        if own:
            setattr(klass, method, original)
        else:
            delattr(klass, method)

    return undo


def _speaker(heard: _Heard, said: Said) -> Wrapper:
    def make(original: Callable[..., Any]) -> Callable[..., Any]:
        signature = inspect.signature(original)

        def speaking(*args: Any, **kwargs: Any) -> Any:
            with contextlib.suppress(TypeError):  # a call it would refuse too
                bound = signature.bind(*args, **kwargs).arguments
                node = bound.get(said.node) if said.node else None
                if said.node is None and heard.looking:
                    node = heard.looking[-1]
                heard.said(node, bound.get(said.reason))
            return original(*args, **kwargs)

        return speaking

    return make


def _checker(heard: _Heard, check: Check) -> Wrapper:
    def make(original: Callable[..., Any]) -> Callable[..., Any]:
        signature = inspect.signature(original)

        def checking(*args: Any, **kwargs: Any) -> Any:
            try:
                node = signature.bind(*args, **kwargs).arguments.get(check.node)
            except TypeError:
                return original(*args, **kwargs)
            heard.looking.append(node)
            try:
                answer = original(*args, **kwargs)
            finally:
                heard.looking.pop()
            heard.answered(node, bool(answer))
            return answer

        return checking

    return make


def _note(
    reasons: Reasons, name: str, source: ReasonSource, heard: _Heard, partitioner: Any,
    result: Any,
) -> None:
    """Each op node the partition call left untagged, with this partitioner's line."""
    program = getattr(result, "tagged_exported_program", None)
    graph = getattr(getattr(program, "graph_module", None), "graph", None)
    for node in getattr(graph, "nodes", ()):
        target = getattr(node.target, "__name__", str(node.target))
        if node.op != "call_function" or node.meta.get("delegation_tag") or target in PLUMBING:
            continue
        line = f"{name}: {_reason(source, heard, partitioner, node)}"
        reasons.add(node.name, not_delegated.op_name(target), node.meta.get("debug_handle"), line)


def _reason(source: ReasonSource, heard: _Heard, partitioner: Any, node: Any) -> str:
    words = heard.words_for(node)
    if words:
        return "; ".join(dict.fromkeys(w.rstrip(".") for w in words if w))
    checked = heard.answer_for(node)
    if checked is False:
        return UNSUPPORTED
    answer = source.ask(partitioner, node) if source.ask is not None else None
    if answer:
        return answer
    return LEFT_OUT if checked else SILENT

