"""Where a ``.pte`` method's planned memory goes: lifetimes, the peak, who holds it.

ExecuTorch plans each non-constant tensor at lowering time: its EValue carries
``allocation_info`` (a memory id: one of the method's ``non_const_buffer_sizes``, and a byte
offset in it, low and high 32 bits). The lifetimes the planner used are not stored; they are
read back here from the instructions: a tensor lives from the first instruction that names
it to the last one (a method input from the start, a method output to the end), as
ExecuTorch's planner sees it (it extends a view's base over the view's readers). Mutable
state (a buffer updated in place: planned, brought by no input, written by no out, no view)
lives across calls: from the start to the end.

Views share their base's memory: a planned tensor no instruction writes whose place starts
where an earlier tensor's does, or an out written there by an instruction that reads that
tensor (``et_view``), is an alias: its readers extend the base's lifetime, it adds no bytes.
Any other two tensors alive at the same instruction whose bytes overlap are a plan that does
not hold, noted on the graph; so are a memory id the method does not plan, bytes past the
end of their buffer and sizes that give no byte count. Nothing here raises on a damaged plan.

Sizes are the tensor's bytes (sizes x dtype), not the planner's aligned slots: the gap
between the planned buffer and the peak is alignment plus fragmentation.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

from etviz_lsp.graph.binary import flatbuf
from etviz_lsp.graph.core import ir, model

# Bytes per element, by the dtype names the reader gives (torch's spelling).
ELEMENT_BYTES = {
    "uint8": 1, "int8": 1, "int16": 2, "int32": 4, "int64": 8, "float16": 2,
    "float32": 4, "float64": 8, "bool": 1, "qint8": 1, "quint8": 1, "qint32": 4,
    "bfloat16": 2, "quint4x2": 1, "quint2x4": 1, "bits16": 2, "float8_e5m2": 1,
    "float8_e4m3fn": 1, "float8_e5m2fnuz": 1, "float8_e4m3fnuz": 1, "uint16": 2,
    "uint32": 4, "uint64": 8,
}  # fmt: skip
MAX_BYTES = 1 << 62  # a size past this is a damaged field, not a tensor
MAX_NOTES = 5  # per kind of problem, then a count
MAX_OVERLAP_CHECKS = 2_000_000
TOP_AT_PEAK = 10  # tensors listed on the graph per buffer
# Node data colours: pale for nodes running with little memory alive, dark blue for the most.
GRADIENT = [{"stop": 0, "bgColor": "#f7fbff"}, {"stop": 0.5, "bgColor": "#6baed6"},
            {"stop": 1, "bgColor": "#08306b"}]  # fmt: skip
METRICS = ("out", "live")  # node-data files: memory-out, then memory-live (shown last)
EXTRAS_KEY = "memory plans"  # where the reader leaves them on the collection

# value -> (node id that made it, its output index there, instruction or -1 when none)
Makers = dict[int, tuple[str, int, int]]


@dataclass(slots=True)
class Method:
    """What the ``.pte`` reader knows of one method, as the memory plan needs it."""

    graph_id: str
    buffer_sizes: list[int]
    tensors: dict[int, flatbuf.Table]  # value index -> its Tensor table
    value_info: Callable[[int], ir.ValueInfo]
    inputs: list[int]
    outputs: list[int]
    uses: list[list[int]]  # per instruction: the tensors its arguments name
    makers: Makers = field(default_factory=dict)


@dataclass(slots=True)
class Tensor:
    value: int  # EValue index
    mem_id: int
    offset: int
    size: int  # bytes: sizes x dtype
    text: str  # float32[1, 8, 8, 8]
    first: int  # instructions
    last: int
    maker: str = ""  # node id: an instruction, an input, a state's constant node; "" none
    maker_out: int = 0
    role: str = ""  # input, output, state, or ""
    written_at: int = -1  # the instruction that wrote it as an out
    made_by: str = ""  # `` from instruction_3 (aten::cumsum, model.py:20)`` (``annotate``)
    kind: str = ""  # what made it: input, state, delegate, kernel (``annotate``)
    op: str = ""  # the label of the node that made it (``annotate``, if not set before)
    noun: str = "value"  # a .pte's EValue; a live program's planned ``tensor``
    views: list[int] = field(default_factory=list)  # values sharing its memory

    @property
    def end(self) -> int:
        return self.offset + self.size


@dataclass(slots=True)
class BufferPeak:
    mem_id: int
    planned: int  # the method's non_const_buffer_sizes entry
    peak: int = 0  # bytes alive at once, at most
    at: int = 0  # the first instruction where they are
    alive: list[Tensor] = field(default_factory=list)  # at the peak, largest first
    high: int = 0  # the highest end offset any tensor reaches
    series: list[int] = field(default_factory=list)  # bytes alive at each instruction


@dataclass(slots=True)
class MemoryPlan:
    graph_id: str
    instructions: int  # steps: a .pte's instructions, or the ops of a live program
    tensors: list[Tensor] = field(default_factory=list)  # one per storage (views folded in)
    buffers: dict[int, BufferPeak] = field(default_factory=dict)
    live: list[int] = field(default_factory=list)  # per instruction: bytes alive
    out: list[int] = field(default_factory=list)  # per instruction: bytes it writes
    notes: list[str] = field(default_factory=list)
    views: int = 0
    unit: str = "instruction"  # what a step is, in the texts
    step_ids: list[list[str]] = field(default_factory=list)  # per step its node ids, if not
    # ``instruction_<i>`` (a delegate call drawn as the ops inside it: all of those)

    def ids(self, step: int) -> list[str]:
        return self.step_ids[step] if self.step_ids else [f"instruction_{step}"]


def plans_of(collection: model.GraphCollection) -> list[MemoryPlan]:
    """The memory plans a reader left on the collection (a ``.pte``'s; none otherwise)."""
    found = collection.extras.get(EXTRAS_KEY, [])
    return [plan for plan in found if isinstance(plan, MemoryPlan)]


def analyse(method: Method) -> MemoryPlan:
    """The method's planned tensors, their lifetimes and each buffer's peak."""
    plan = MemoryPlan(method.graph_id, len(method.uses))
    if plan.instructions == 0:
        plan.notes.append("no instructions: nothing runs, no lifetimes")
        return plan
    found = Notes()
    tensors = _planned(method, found)
    _lifetimes(method, tensors, found)
    plan.tensors = _fold_views(tensors, method.uses)
    _state(plan.tensors, plan.instructions - 1)
    finish(plan, method.buffer_sizes, found)
    return plan


def finish(plan: MemoryPlan, buffer_sizes: list[int], notes: Notes) -> None:
    """With ``plan.tensors`` placed in time: overlaps checked, the figures, the notes."""
    plan.views = sum(len(t.views) for t in plan.tensors)
    _check_overlaps(plan.tensors, notes)
    _peaks(plan, buffer_sizes)
    plan.notes = notes.lines()


class Notes:
    """What does not hold in the plan: a few examples of each kind, then a count."""

    def __init__(self) -> None:
        self.kinds: dict[str, list[str]] = defaultdict(list)
        self.counts: dict[str, int] = defaultdict(int)

    def add(self, kind: str, text: str) -> None:
        self.counts[kind] += 1
        if len(self.kinds[kind]) < MAX_NOTES:
            self.kinds[kind].append(text)

    def lines(self) -> list[str]:
        out = []
        for kind, examples in self.kinds.items():
            more = self.counts[kind] - len(examples)
            out.append(f"{kind}: {'; '.join(examples)}" + (f" (and {more} more)" if more else ""))
        return out


def _planned(method: Method, notes: Notes) -> dict[int, Tensor]:
    buffers = method.buffer_sizes
    out: dict[int, Tensor] = {}
    for index, table in method.tensors.items():
        alloc = table.get("allocation_info")
        if alloc is None:
            continue
        mem_id = alloc.get("memory_id")
        offset = alloc.get("memory_offset_low") | (alloc.get("memory_offset_high") << 32)
        info = method.value_info(index)
        text = f"{info.dtype}[{', '.join(info.shape or ())}]"
        size = _bytes(info)
        if size is None:
            notes.add("sizes that give no byte count", f"value {index} {text}")
            continue
        if not 0 < mem_id < len(buffers):
            notes.add("memory ids the method does not plan",
                      f"value {index} in memory {mem_id} of {len(buffers)}")
            continue
        if offset + size > buffers[mem_id]:
            notes.add("tensors past the end of their buffer",
                      f"value {index} ({size:,} bytes at {offset:,}) in buffer {mem_id} of "
                      f"{buffers[mem_id]:,} bytes")
        role = "state" if table.get("data_buffer_idx") > 0 else ""
        out[index] = Tensor(index, mem_id, offset, size, text, -1, -1, role=role)
    return out


def _bytes(info: ir.ValueInfo) -> int | None:
    element = ELEMENT_BYTES.get(info.dtype)
    if element is None or info.shape is None:
        return None
    total = element
    for dim in info.shape:
        if not dim.isdigit():
            return None
        total *= int(dim)
        if total > MAX_BYTES:
            return None
    return total


def _lifetimes(method: Method, tensors: dict[int, Tensor], notes: Notes) -> None:
    last = len(method.uses) - 1
    for instruction, named in enumerate(method.uses):
        for index in named:
            tensor = tensors.get(index)
            if tensor is not None:
                tensor.first = instruction if tensor.first < 0 else tensor.first
                tensor.last = instruction
    for index, role, first, end in (
        *((i, "input", 0, None) for i in method.inputs),
        *((i, "output", None, last) for i in method.outputs),
        *((i, "state", 0, last) for i, t in tensors.items() if t.role == "state"),
    ):
        tensor = tensors.get(index)
        if tensor is None:
            continue
        tensor.role = tensor.role or role
        tensor.first = first if first is not None else max(tensor.first, 0)
        tensor.last = end if end is not None else max(tensor.last, tensor.first)
    for index, tensor in tensors.items():
        node, out, written_at = method.makers.get(index, ("", 0, -1))
        tensor.maker, tensor.maker_out, tensor.written_at = node, out, written_at
        if written_at > tensor.first and tensor.role == "":
            notes.add("tensors read before they are written",
                      f"value {index} at instruction {tensor.first}, written at {written_at}")
    unused = [i for i, t in tensors.items() if t.first < 0]
    for index in unused:
        notes.add("planned tensors no instruction uses", f"value {index}")
        del tensors[index]


def _fold_views(tensors: dict[int, Tensor], uses: list[list[int]]) -> list[Tensor]:
    """One tensor per storage: a view joins the tensor whose memory it reads (module doc)."""
    roots: list[Tensor] = []
    # (mem id, offset) -> the tensors placed there and their first instructions, in order
    by_place: dict[tuple[int, int], tuple[list[int], list[Tensor]]] = defaultdict(
        lambda: ([], [])
    )
    for tensor in sorted(tensors.values(), key=lambda t: (t.first, t.written_at < 0, t.value)):
        firsts, placed = by_place[(tensor.mem_id, tensor.offset)]
        base = _base_of(tensor, firsts, placed, uses)
        if base is None:
            roots.append(tensor)
            firsts.append(tensor.first)
            placed.append(tensor)
            continue
        base.last = max(base.last, tensor.last)
        base.views.append(tensor.value)
    return roots


def _base_of(
    tensor: Tensor, firsts: list[int], placed: list[Tensor], uses: list[list[int]]
) -> Tensor | None:
    """The latest tensor placed where ``tensor`` is before it starts, if it is its base:
    ``tensor`` is never written (a view elided by the emitter), or the instruction writing
    it reads that tensor (``et_view``, an in-place kernel)."""
    if tensor.role in ("input", "state") or tensor.size == 0:  # no bytes: placed anywhere
        return None
    position = bisect.bisect_left(firsts, tensor.first) - 1
    if position < 0:
        return None
    base = placed[position]
    if tensor.size > base.size:
        return None
    if tensor.written_at < 0:
        return base
    named = uses[tensor.written_at]
    return base if any(v in named for v in (base.value, *base.views)) else None


def _state(tensors: list[Tensor], last: int) -> None:
    """A planned tensor no input brings, no out writes and no base holds is the method's
    state (a mutable buffer, updated in place): it lives across calls, so from start to end."""
    for tensor in tensors:
        if tensor.role == "" and tensor.written_at < 0:
            tensor.role, tensor.first, tensor.last = "state", 0, last


def _check_overlaps(tensors: list[Tensor], notes: Notes) -> None:
    """Two tensors alive at once whose bytes overlap: a plan that does not hold."""
    checks = 0
    by_buffer: dict[int, list[Tensor]] = defaultdict(list)
    for tensor in tensors:
        by_buffer[tensor.mem_id].append(tensor)
    for mem_id, members in by_buffer.items():
        active: list[Tensor] = []  # alive at the current start, with bytes
        for tensor in sorted(members, key=lambda t: (t.first, t.value)):
            active = [a for a in active if a.last >= tensor.first]
            if tensor.size == 0:  # no bytes: placed anywhere
                continue
            for other in active:
                checks += 1
                if other.offset < tensor.end and tensor.offset < other.end:
                    notes.add("tensors alive at once in the same bytes",
                              f"values {other.value} and {tensor.value} in buffer {mem_id} at "
                              f"instruction {tensor.first}")
            active.append(tensor)
            if checks > MAX_OVERLAP_CHECKS:
                notes.add("overlap check", f"stopped after {checks:,} comparisons")
                return


def _peaks(plan: MemoryPlan, buffer_sizes: list[int]) -> None:
    count = plan.instructions
    per_buffer: dict[int, list[int]] = {}
    plan.out = [0] * count
    for tensor in plan.tensors:
        diff = per_buffer.setdefault(tensor.mem_id, [0] * (count + 1))
        diff[tensor.first] += tensor.size
        diff[tensor.last + 1] -= tensor.size
        if 0 <= tensor.written_at < count:
            plan.out[tensor.written_at] += tensor.size
    plan.live = [0] * count
    for mem_id in sorted(per_buffer):
        running, alive = 0, []
        for delta in per_buffer[mem_id][:count]:
            running += delta
            alive.append(running)
        plan.live = [a + b for a, b in zip(plan.live, alive, strict=True)]
        peak = max(alive)
        at = alive.index(peak)
        members = [t for t in plan.tensors if t.mem_id == mem_id]
        plan.buffers[mem_id] = BufferPeak(
            mem_id, buffer_sizes[mem_id], peak, at,
            sorted((t for t in members if t.first <= at <= t.last),
                   key=lambda t: (-t.size, t.value)),
            max(t.end for t in members), alive,
        )


# ---- on the graph -----------------------------------------------------------------------


def annotate(graph: model.Graph, plan: MemoryPlan) -> None:
    """Node attributes (bytes alive and written, each output's lifetime), delegate nodes'
    own memory, and the peaks on the graph's info."""
    nodes = {node["id"]: node for node in graph.nodes}
    for step, (live, out) in enumerate(zip(plan.live, plan.out, strict=True)):
        for running in (nodes[i] for i in plan.ids(step) if i in nodes):
            _set(running, "memory live", f"{live:,} bytes")
            _set(running, "memory out", f"{out:,} bytes")
    for tensor in plan.tensors:
        maker = nodes.get(tensor.maker)
        tensor.kind = tensor.kind or _maker_kind(tensor, maker)
        tensor.op = tensor.op or ("mutable state" if tensor.role == "state" else
                                  maker["label"] if maker else "")
        tensor.made_by = maker_text(tensor, maker)
        if maker is not None:
            views = f", views: values {', '.join(map(str, tensor.views))}" if tensor.views else ""
            _set(maker, f"out {tensor.maker_out} lifetime",
                 f"{plan.unit}s {tensor.first}–{tensor.last}, {tensor.size:,} bytes{views}")
    for node in graph.nodes:
        if model.node_attr(node, "backend") is not None:
            _set(node, "memory", delegate_memory(node))
    graph.group_attrs.setdefault("", {}).update(graph_info(plan, nodes))


def _maker_kind(tensor: Tensor, node: model.Node | None) -> str:
    if tensor.role in ("input", "state"):
        return tensor.role
    if node is None or tensor.written_at < 0:
        return "other"
    return "delegate" if model.node_attr(node, "backend") is not None else "kernel"


def delegate_memory(node: model.Node) -> str:
    """A delegate's own memory is not in the plan: what the program holds of it."""
    held = f"blob {model.node_attr(node, 'blob size') or '?'}"
    constants = model.node_attr(node, "constants")
    held += f", constants {constants}" if constants else ""
    return (f"its own: {model.node_attr(node, 'backend')} allocates its working memory at "
            f"run time, outside this plan; the program holds its {held}")


def graph_info(plan: MemoryPlan, nodes: dict[str, model.Node]) -> dict[str, str]:
    info: dict[str, str] = {}
    peaks, fits, at_peak = [], [], []
    for peak in plan.buffers.values():
        maker = next((nodes[i] for i in plan.ids(peak.at) if i in nodes), None)
        label = f" ({maker['label']})" if maker is not None else ""
        peaks.append(f"buffer {peak.mem_id}: {peak.peak:,} bytes at {plan.unit} {peak.at}{label}")
        fits.append(planned_vs_peak(peak))
        listed = "; ".join(tensor_line(t) for t in peak.alive[:TOP_AT_PEAK])
        more = len(peak.alive) - TOP_AT_PEAK
        at_peak.append(f"buffer {peak.mem_id}: {listed}" + (f"; and {more} more" if more > 0
                                                               else ""))
    views = f" ({views_text(plan.views)})" if plan.views else ""
    info["planned tensors"] = f"{len(plan.tensors) + plan.views}{views}"
    if peaks:
        info["memory peak"] = "; ".join(peaks)
        info["memory planned vs peak"] = "; ".join(fits)
        info["memory at peak"] = " | ".join(at_peak)
    if plan.notes:
        info["memory notes"] = " | ".join(plan.notes)
    return info


def views_text(count: int) -> str:
    return f"{count} view{' shares' if count == 1 else 's share'} their base's memory"


def planned_vs_peak(peak: BufferPeak) -> str:
    unused = peak.planned - peak.peak
    share = f" ({unused / peak.planned:.1%})" if peak.planned > 0 else ""
    return (f"buffer {peak.mem_id}: {peak.planned:,} planned, {peak.peak:,} at the peak, "
            f"{unused:,} never used at once{share}")


def tensor_line(tensor: Tensor) -> str:
    return f"{tensor.noun} {tensor.value} {tensor.text} {tensor.size:,} bytes{tensor.made_by}"


def maker_text(tensor: Tensor, node: model.Node | None) -> str:
    """`` from instruction_3 (aten::cumsum, model.py:20)``: who made it, and where."""
    if tensor.role == "state":
        return " (mutable state)"
    if node is None:
        return f" ({tensor.role})" if tensor.role else ""
    source = model.node_attr(node, "source")
    what = ", ".join(part for part in (tensor.op, source) if part)
    return f" from {tensor.maker} ({what})"


def _set(node: model.Node, key: str, value: str) -> None:
    for item in node["attrs"]:
        if item["key"] == key:
            item["value"] = value
            return
    node["attrs"].append({"key": key, "value": value})


# ---- node data and the command line ----------------------------------------------------


def node_data(plans: list[MemoryPlan]) -> dict[str, model.Json]:
    """Model Explorer node data per metric: ``out`` (bytes an instruction writes) and
    ``live`` (bytes alive while it runs), keyed by graph id."""
    data: dict[str, model.Json] = {metric: {} for metric in METRICS}
    for plan in plans:
        for metric, values in (("out", plan.out), ("live", plan.live)):
            results = {node: {"value": v} for i, v in enumerate(values) for node in plan.ids(i)}
            data[metric][plan.graph_id] = {"results": results, "gradient": GRADIENT}
    return data


def summary_lines(plans: list[MemoryPlan], top: int = 3) -> list[str]:
    """Per buffer: the peak, where, of what was planned, and the ``top`` tensors alive."""
    lines = []
    for plan in plans:
        for peak in plan.buffers.values():
            largest = ", ".join(tensor_line(t) for t in peak.alive[:top])
            lines.append(f"{plan.graph_id} buffer {peak.mem_id}: peak {peak.peak:,} of "
                         f"{peak.planned:,} planned bytes at {plan.unit} {peak.at}; "
                         f"largest alive: {largest or '(none)'}")
        lines.extend(f"{plan.graph_id}: {note}" for note in plan.notes)
    return lines
