"""Read an ExecuTorch ETDump (``.etdp``) without torch: the profile events of each run.

An ETDump is a size-prefixed FlatBuffer (``devtools/etdump/etdump_schema_flatcc.fbs``,
shipped in the executorch wheel and read through :mod:`flatbuf`, identifier ``ED00``):
``run_data`` blocks, one per ``Method::execute`` (plus ``Default`` for loading), each a
list of events. A profile event has a name (``native_call_cumsum.out``, ``DELEGATE_CALL``,
``Method::execute``) or, when a delegate logged it, a delegate debug id
(``Convolution (NHWC, QS8) IGEMM #1`` for XNNPACK), the instruction it ran in, and start
and end times in the runtime's ticks (nanoseconds on Linux; Inspector assumes the same).

ExecuTorch's own ``Inspector`` reads the file by shelling out to ``flatc`` and imports
torch; this reader needs neither, so the overlay is made in the CLI's process in
milliseconds. Debug events (intermediate outputs) are counted, not read: the latency
overlay does not use them.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path

from etviz_lsp.errors import EtvizError
from etviz_lsp.graph.binary import executorch_files, flatbuf, limits

IDENTIFIER = b"ED00"
MAX_ETDUMP_BYTES = 512 * 1024 * 1024  # a run of a big model logs ~100 bytes per event
MAX_RUNS = 100_000
MAX_EVENTS = 2_000_000  # in all runs together (as many as a program's nodes may be)
NS_PER_MS = 1_000_000.0


def schema() -> flatbuf.Schema:
    return executorch_files.schema("devtools/etdump/etdump_schema_flatcc.fbs")


@dataclass(frozen=True, slots=True)
class ProfileEvent:
    """One timed event of one run."""

    name: str  # the event's name, else its delegate debug id (text or number)
    instruction: int  # the instruction it ran in; -1 for method-level events (chain -1)
    delegated: bool  # logged by a delegate (a backend's kernel), not by the runtime
    ms: float


@dataclass(slots=True)
class Run:
    name: str  # "Execute" for a method run, "Default" for loading
    events: list[ProfileEvent] = field(default_factory=list)
    debug_events: int = 0


@dataclass(slots=True)
class ETDump:
    source: str  # the file's name, shown on the graph
    version: int
    runs: list[Run]

    def executions(self) -> list[Run]:
        """The method runs (each ``Method::execute`` logs one block), not the loading block."""
        return [run for run in self.runs if any(e.instruction >= 0 for e in run.events)]


def read_etdump(path: Path) -> ETDump:
    """The events of ``path``; a damaged file is one :class:`EtvizError` line."""
    if not path.is_file():
        raise EtvizError(str(path), "no such file" if not path.exists() else "not a file")
    size = path.stat().st_size
    if size > MAX_ETDUMP_BYTES:
        raise limits.LimitExceeded(
            str(path), f"ETDump of {size:,} bytes, over this reader's limit of "
            f"{MAX_ETDUMP_BYTES:,}: refused unread",
        )
    try:
        buf = path.read_bytes()
    except OSError as exc:
        raise EtvizError(str(path), f"cannot read: {exc.strerror or exc}") from exc
    try:
        return _read(path, memoryview(buf))
    except flatbuf.Damaged as exc:
        raise EtvizError(str(path), f"damaged ETDump ({exc})") from None
    except (KeyError, IndexError, ValueError, UnicodeError, struct.error, RecursionError) as exc:
        cause = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise EtvizError(str(path), f"damaged ETDump ({cause})") from None


def _read(path: Path, buf: memoryview) -> ETDump:
    # flatcc writes the ETDump size-prefixed: a uint32 length, then the FlatBuffer.
    if len(buf) < 12 or bytes(buf[8:12]) != IDENTIFIER:
        raise EtvizError(
            str(path), f"not an ETDump (no '{IDENTIFIER.decode()}' identifier)"
        )
    (length,) = struct.unpack_from("<I", buf, 0)
    if length + 4 > len(buf):
        raise EtvizError(
            str(path), f"truncated ETDump: it says {length + 4:,} bytes, the file has {len(buf):,}"
        )
    root = flatbuf.Table.root(buf[4 : 4 + length], schema())
    budget = limits.current().budget(str(path))
    budget.count("ETDump runs", root.vector_len("run_data"), MAX_RUNS)
    runs: list[Run] = []
    total = 0
    for block in root.vector("run_data"):
        total += block.vector_len("events")
        budget.count("ETDump events", total, MAX_EVENTS)
        runs.append(_run(block))
    return ETDump(source=path.name, version=root.get("version"), runs=runs)


def _run(block: flatbuf.Table) -> Run:
    run = Run(name=block.get("name") or "")
    for event in block.vector("events"):
        profile = event.get("profile_event")
        if profile is None:
            run.debug_events += event.get("debug_event") is not None
            continue
        name = profile.get("name")
        delegate_id = profile.get("delegate_debug_id_str")
        if delegate_id is None and profile.get("delegate_debug_id_int") >= 0:
            delegate_id = str(profile.get("delegate_debug_id_int"))
        start, end = profile.get("start_time"), profile.get("end_time")
        run.events.append(ProfileEvent(
            name=name or delegate_id or "?",
            # Method-level events (Method::init, Method::execute) have chain -1 and may
            # still say instruction 0.
            instruction=profile.get("instruction_id") if profile.get("chain_index") >= 0 else -1,
            delegated=name is None and delegate_id is not None,
            ms=max(end - start, 0) / NS_PER_MS,
        ))  # fmt: skip
    return run
