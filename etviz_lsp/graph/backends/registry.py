"""The backends etviz knows, each registered by its own module in this room.

A backend module (``xnnpack.py``, ``vulkan.py`` ...) calls :func:`register` with what the
rest of etviz asks of that backend: its id as a ``.pte`` names it (``XnnpackBackend``), a
label, its colour (a hue: the partition colours of ``palette``), its payload reader, how
its kernel events line up with its ops in an ETDump, and (issue 26, item 1) how its
partitioner's reasons for ops it left on the CPU are collected. The ``.pte`` reader and
the latency overlay ask :func:`get` and never name a backend. ``backends/__init__.py``
imports every module of the room, so adding a backend is one module (and its test).

A payload reader gets the delegate's bytes and returns a :class:`Payload`: the ops inside
as a record (a nested graph), or none (the call stays one node), and facts for the call's
node. It raises :class:`Unreadable` (or ``flatbuf.Damaged``) for bytes it cannot read;
:func:`open_payload` turns that into a fact on the node, never an error for the program.
"""

from __future__ import annotations

import struct
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from etviz_lsp.graph.backends import partitioner_reasons
from etviz_lsp.graph.binary import flatbuf
from etviz_lsp.graph.core import ir, naming, palette

PAYLOAD = "payload"  # the call node's fact saying what the payload is, or why it is not shown
# An op inside a delegate that has no debug handle of its own names its key in the ETRecord's
# delegate map (``delegate_map``: key -> the debug handles of the edge ops it runs) here.
DELEGATE_DEBUG_ID = "delegate debug id"


class Unreadable(Exception):
    """A payload that is not what its backend writes (one line: what is wrong)."""


@dataclass(slots=True)
class Payload:
    """What a backend's reader found in one delegate's payload."""

    graph: ir.ProgramRecord | None = None  # the ops inside; None: the call stays opaque
    facts: dict[str, str] = field(default_factory=dict)  # on the call node and its graph


Reader = Callable[[memoryview, str], Payload]  # (payload bytes, the graph's name)
KernelMatch = Callable[[str, str], bool]  # (ETDump kernel event name, op node label)


@dataclass(frozen=True, slots=True)
class Backend:
    backend_id: str  # as the .pte's delegate names it: ``VulkanBackend``
    label: str  # as people say it: ``Vulkan``
    hue: int  # HSL hue of its partitions (``palette``): one shade per partition
    read: Reader | None = None  # None: the payload stays one node, ``opaque`` says why
    opaque: str = ""  # one line: what of the payload cannot be read, and why
    # Kernel events in an ETDump (no debug handles) -> the op nodes of its nested graph, in
    # order; None: its kernel events stay on the delegate call's node.
    kernel_match: KernelMatch | None = None
    # How its partitioner's reasons for the ops it left on the CPU are heard (issue 26).
    reasons: partitioner_reasons.ReasonSource | None = None


_BACKENDS: dict[str, Backend] = {}


def partitioner_reasons_by_class() -> dict[str, partitioner_reasons.ReasonSource]:
    """Partitioner class name -> how its reasons are heard, for every backend that says."""
    return {b.reasons.partitioner: b.reasons for b in _BACKENDS.values() if b.reasons}


def register(backend: Backend) -> Backend:
    """Called once by each backend module at import; its hue becomes its partitions' hue."""
    _BACKENDS[backend.backend_id] = backend
    palette.set_backend_hue(backend.backend_id, backend.hue)
    return backend


def register_unread(entries: tuple[tuple[str, str, int], ...], why: str) -> tuple[Backend, ...]:
    """Backends known by name only: (id, label, hue) each; ``why`` formatted with the label."""
    return tuple(
        register(Backend(backend_id, label, hue, opaque=why.format(label)))
        for backend_id, label, hue in entries
    )


def get(backend_id: str) -> Backend:
    """The registered backend, or one etviz knows nothing of: opaque, a hue from its name."""
    found = _BACKENDS.get(backend_id)
    if found is not None:
        return found
    return Backend(
        backend_id, backend_id, palette.backend_hue(backend_id),
        opaque=f"not read: etviz has no reader for {backend_id or 'this backend'}'s payload",
    )  # fmt: skip


def registered() -> list[Backend]:
    return list(_BACKENDS.values())


def open_payload(backend_id: str, blob: memoryview, name: str) -> Payload:
    """The backend's reading of ``blob``; a payload it cannot read is one fact, never raised."""
    backend = get(backend_id)
    if backend.read is None:
        return Payload(facts={PAYLOAD: backend.opaque})
    try:
        return backend.read(blob, name)
    except Unreadable as exc:
        return Payload(facts={PAYLOAD: f"not shown: {_line(exc)}"})
    except (flatbuf.Damaged, KeyError, IndexError, ValueError, TypeError, struct.error,
            UnicodeError, RecursionError, OverflowError) as exc:
        cause = f"damaged {backend.label} payload ({_line(exc)})"
        return Payload(facts={PAYLOAD: f"not shown: {cause}"})


def _line(exc: Exception) -> str:
    return str(exc).splitlines()[0] if str(exc).strip() else type(exc).__name__


def op_summary(record: ir.ProgramRecord) -> str:
    """``XNNConv2d ×1, XNNConvert ×2``: what a delegate runs, most frequent first."""
    counts = Counter(naming.short_label(rec.target) for rec in record.nodes if rec.kind == ir.OP)
    return ", ".join(f"{target} ×{n}" for target, n in counts.most_common())


def constants_fact(inline: int, named: int) -> str:
    """A delegate's constant bytes (weights): in its payload, and named (in the program's
    named data, outside the payload). Never read, only counted."""
    return f"{inline + named:,} bytes ({named:,} in the program's named data)"
