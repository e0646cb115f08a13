"""The memory plan as a picture: one timeline per method and planned buffer (SVG).

Instructions run left to right, the buffer's offsets go up from 0; each planned tensor is a
bar from the instruction that makes it to the last one that reads it, at its offset, as tall
as its bytes. A step line shows the bytes alive at each instruction, and the peak is marked
(a band over its instruction, the figure beside it). Each bar is a ``rect`` of class
``tensor`` carrying the node that made it (``data-node-id``, ``data-graph-id``) and a
``<title>`` (the tooltip a browser shows), so a viewer can select that node in Model
Explorer. Plain text, no script: safe to open anywhere.
"""

from __future__ import annotations

from html import escape

from etviz_lsp.graph.memory.memory_plan import BufferPeak, MemoryPlan, Tensor, views_text

WIDTH = 960
LEFT, RIGHT = 84, 24  # room for the offset labels
PLOT_HEIGHT = 260
HEADER, FOOTER, GAP = 44, 30, 18
MAX_BARS = 20_000  # per picture: the largest are drawn, the rest counted
FILLS = {"kernel": "#9ecae1", "delegate": "#fdae6b", "input": "#a1d99b",
         "state": "#bcbddc", "other": "#d9d9d9"}  # fmt: skip
# A bar under the pointer stands out; marks over the bars let the pointer through.
STYLE = ("<style>rect.tensor:hover{stroke:#000;stroke-width:3px}"
         ".peak,.alive,.op{pointer-events:none}</style>")
LEGEND = (("kernel", "made by a CPU kernel"), ("delegate", "made by a delegate"),
          ("input", "method input"), ("state", "mutable state"), ("other", "other"))  # fmt: skip


def render(plans: list[MemoryPlan], title: str) -> str:
    """The whole picture: a title, a legend, one panel per method and buffer."""
    panels = [(plan, peak) for plan in plans for peak in plan.buffers.values()]
    drawn = _drawn(panels)
    parts: list[str] = []
    y = 64
    for plan, peak in panels:
        parts.append(_panel(plan, peak, y, drawn))
        y += HEADER + PLOT_HEIGHT + FOOTER + GAP
    notes = [f"{plan.graph_id}: {note}" for plan in plans for note in plan.notes]
    skipped = sum(len(plan.tensors) for plan in plans) - len(drawn)
    if skipped > 0:
        notes.append(f"{skipped:,} smallest tensors not drawn (over {MAX_BARS:,} bars)")
    if not panels:
        notes.append("no planned memory: nothing here is placed by ExecuTorch's memory plan")
    for note in notes:
        parts.append(_text(LEFT, y + 12, note, size=12, fill="#a50f15"))
        y += 18
    height = y + 12
    head = (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
        f'viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" class="memory-timeline">'
        f"<title>{escape(title)}</title>{STYLE}"
        f'<rect width="{WIDTH}" height="{height}" fill="#ffffff"/>'
    )
    heading = _text(LEFT, 24, title, size=16, weight="bold")
    return head + heading + _legend() + "".join(parts) + "</svg>\n"


def _drawn(panels: list[tuple[MemoryPlan, BufferPeak]]) -> set[int]:
    """ids of the tensors drawn: all, or the ``MAX_BARS`` largest."""
    every = [t for plan, _ in panels for t in plan.tensors]
    if len(every) > MAX_BARS:
        every = sorted(every, key=lambda t: -t.size)[:MAX_BARS]
    return {id(t) for t in every}


def _legend() -> str:
    x, out = LEFT, []
    for kind, label in LEGEND:
        out.append(f'<rect x="{x}" y="36" width="12" height="12" fill="{FILLS[kind]}" '
                   'stroke="#555"/>')
        out.append(_text(x + 16, 46, label, size=12))
        x += 30 + 7 * len(label)
    return "".join(out)


def _panel(plan: MemoryPlan, peak: BufferPeak, top: int, drawn: set[int]) -> str:
    count = max(plan.instructions, 1)
    scale_y = max(peak.planned, peak.high, 1)
    plot_top = top + HEADER
    plot = _Plot(count, scale_y, plot_top)
    members = [t for t in plan.tensors if t.mem_id == peak.mem_id]
    folded = sum(len(t.views) for t in members)
    views = f" ({views_text(folded)})" if folded else ""
    head = (f"{plan.graph_id} · buffer {peak.mem_id}: planned {peak.planned:,} bytes, "
            f"peak {peak.peak:,} at {plan.unit} {peak.at}")
    out = [
        f'<g class="buffer" data-graph-id="{escape(plan.graph_id)}" '
        f'data-buffer="{peak.mem_id}" data-planned="{peak.planned}">',
        _text(LEFT, top + 18, head, size=14, weight="bold"),
        _text(LEFT, top + 36, f"{len(members):,} planned tensors{views}, "
              f"{plan.instructions:,} {plan.unit}s; hover a bar for its tensor",
              size=12, fill="#555"),
        f'<rect x="{LEFT}" y="{plot_top}" width="{plot.width}" height="{PLOT_HEIGHT}" '
        'fill="#fafafa" stroke="#bbb"/>',
        _axes(plot, plan.instructions, scale_y, plan.unit),
    ]
    alive = {id(t) for t in peak.alive}
    out.extend(_bar(plot, plan, t, id(t) in alive) for t in members if id(t) in drawn)
    out.append(_live_line(plot, peak))
    out.append(_peak_mark(plot, peak, plan.unit))  # over the bars: always seen
    out.append("</g>")
    return "".join(out)


class _Plot:
    def __init__(self, count: int, scale_y: int, top: int) -> None:
        self.count, self.scale_y, self.top = count, scale_y, top
        self.width = WIDTH - LEFT - RIGHT
        self.dense = self.width / count < 3  # outlines would hide the fills
    def x(self, instruction: float) -> float:
        return LEFT + self.width * instruction / self.count

    def y(self, offset: float) -> float:
        """Offsets go up: 0 at the bottom of the plot."""
        return self.top + PLOT_HEIGHT - PLOT_HEIGHT * offset / self.scale_y


def _bar(plot: _Plot, plan: MemoryPlan, tensor: Tensor, at_peak: bool) -> str:
    x0, x1 = plot.x(tensor.first), plot.x(tensor.last + 1)
    y_top, y_bottom = plot.y(tensor.end), plot.y(tensor.offset)
    height = max(y_bottom - y_top, 1.0)
    node, graph_id = tensor.maker or plan.ids(tensor.first)[0], plan.graph_id
    views = f"; views: values {', '.join(map(str, tensor.views))}" if tensor.views else ""
    tip = (f"{tensor.noun} {tensor.value} {tensor.text}: {tensor.size:,} bytes at offset "
           f"{tensor.offset:,}, {plan.unit}s {tensor.first}–{tensor.last}{tensor.made_by}"
           f"{' (alive at the peak)' if at_peak else ''}{views}")
    stroke = ' stroke="#08306b" stroke-width="1.5"' if at_peak else "" if plot.dense else \
        ' stroke="#636363" stroke-width="0.5"'
    return (
        f'<rect class="tensor" data-node-id="{escape(node)}" data-graph-id="{escape(graph_id)}" '
        f'data-value="{tensor.value}" data-first="{tensor.first}" data-last="{tensor.last}" '
        f'data-offset="{tensor.offset}" data-bytes="{tensor.size}" '
        f'data-at-peak="{str(at_peak).lower()}" x="{x0:.2f}" y="{y_top:.2f}" '
        f'width="{max(x1 - x0, 0.5):.2f}" height="{height:.2f}" '
        f'fill="{FILLS.get(tensor.kind, FILLS["other"])}" fill-opacity="0.85"{stroke}>'
        f"<title>{escape(tip)}</title></rect>"
    ) + _label(x0, x1, y_top, height, tensor.op)


def _label(x0: float, x1: float, y_top: float, height: float, op: str) -> str:
    """The op that made a bar, inside it when it fits (``aten::convolution`` -> its name)."""
    text = op.rsplit("::", 1)[-1]
    room = int((x1 - x0 - 6) / 6.2)  # ~6.2 px a character at 11 px
    if height < 14 or room < 4 or not text:
        return ""
    text = text if len(text) <= room else text[: room - 1] + "…"
    return _text(x0 + 3, y_top + min(height / 2 + 4, 14), text, size=11, fill="#08306b",
                 cls="op")


def _peak_mark(plot: _Plot, peak: BufferPeak, unit: str) -> str:
    x0, x1 = plot.x(peak.at), plot.x(peak.at + 1)
    label = f"peak {peak.peak:,} bytes"
    anchor = "end" if x0 > LEFT + plot.width * 0.7 else "start"
    text_x = x0 - 4 if anchor == "end" else x1 + 4
    return (
        f'<g class="peak" data-instruction="{peak.at}" data-bytes="{peak.peak}">'
        f'<rect x="{x0:.2f}" y="{plot.top}" width="{max(x1 - x0, 1):.2f}" '
        f'height="{PLOT_HEIGHT}" fill="none" stroke="#cb181d" stroke-width="2" '
        'stroke-dasharray="6 3"/>'
        f'<line x1="{LEFT}" x2="{LEFT + plot.width}" y1="{plot.y(peak.peak):.2f}" '
        f'y2="{plot.y(peak.peak):.2f}" stroke="#cb181d" stroke-dasharray="5 3"/>'
        + _text(text_x, plot.y(peak.peak) - 4, label, size=12, fill="#cb181d", anchor=anchor)
        + f"<title>{escape(label)} alive at {unit} {peak.at}</title></g>"
    )


def _live_line(plot: _Plot, peak: BufferPeak) -> str:
    """Bytes alive in this buffer at each instruction, as a step line."""
    points = []
    for i, value in enumerate(peak.series):
        y = f"{plot.y(value):.2f}"
        points += [f"{plot.x(i):.2f},{y}", f"{plot.x(i + 1):.2f},{y}"]
    width = "0.75" if plot.dense else "1.5"
    return (f'<polyline class="alive" points="{" ".join(points)}" fill="none" '
            f'stroke="#cb181d" stroke-width="{width}" stroke-opacity="0.8">'
            "<title>bytes alive</title></polyline>")


def _axes(plot: _Plot, instructions: int, scale_y: int, unit: str) -> str:
    out = []
    bottom = plot.top + PLOT_HEIGHT
    for step in range(5):
        offset = scale_y * step / 4
        y = plot.y(offset)
        out.append(f'<line x1="{LEFT - 4}" x2="{LEFT}" y1="{y:.2f}" y2="{y:.2f}" stroke="#555"/>')
        out.append(_text(LEFT - 6, y + 4, human_bytes(int(offset)), size=11, anchor="end"))
    every = range(instructions) if instructions <= 24 else ()
    ticks = sorted(set(every) or {round(instructions * k / 10) for k in range(11)} - {instructions})
    for i in ticks if instructions else []:
        x = (plot.x(i) + plot.x(i + 1)) / 2
        out.append(f'<line x1="{x:.2f}" x2="{x:.2f}" y1="{bottom}" y2="{bottom + 4}" '
                   'stroke="#555"/>')
        out.append(_text(x, bottom + 16, str(i), size=11, anchor="middle"))
    out.append(_text(LEFT + plot.width, bottom + 28, f"{unit} →", size=11, anchor="end"))
    middle = plot.top + PLOT_HEIGHT / 2
    out.append(f'<text x="14" y="{middle:.2f}" font-size="11" fill="#222" text-anchor="middle" '
               f'transform="rotate(-90 14 {middle:.2f})">offset in the buffer →</text>')
    return "".join(out)


def human_bytes(count: int) -> str:
    if count < 10 * 1024:
        return f"{count:,} B"
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if count >= size:
            return f"{count / size:,.1f} {unit}"
    return f"{count:,} B"


def _text(x: float, y: float, text: str, *, size: int, fill: str = "#222",
          weight: str = "normal", anchor: str = "start", cls: str = "") -> str:
    kind = f' class="{cls}"' if cls else ""
    return (f'<text{kind} x="{x:.2f}" y="{y:.2f}" font-size="{size}" fill="{fill}" '
            f'font-weight="{weight}" text-anchor="{anchor}">{escape(text)}</text>')
