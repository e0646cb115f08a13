"""Why an op stayed on the CPU, on the graph: the partitioners' own words (issue 26).

Each CPU op a partitioner looked at and left out gets the node attribute ``not delegated``,
one line per partitioner (``XnnpackPartitioner: mean.dim only supports keepdim=True``); the
graph info says how many ops stayed on the CPU (``on CPU``: the stage correspondence's
count when there is one, else the ops with reasons) and each one's first reason.
The reasons come from a script run (``worker/not_delegated.py``) or, for a ``.pte``, from
the file that run left beside its ETRecord (``readers/not_delegated_file.py``); this module
only puts them on graphs.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence

from etviz_lsp.graph.core import model

KEY = "not delegated"
INFO = "on CPU"
MAX_LISTED = 20  # ops named in the graph info; an LLM may leave hundreds on the CPU
LINE_LISTED = 5  # kinds of op (op and first reason) named on a summary line
SILENT = "gave no reason"


def op_name(target: str) -> str:
    """``cumsum`` for ``aten.cumsum.default`` / ``aten.cumsum.out`` / ``aten::cumsum``."""
    parts = target.replace("::", ".").split(".")
    return parts[-2] if len(parts) >= 3 else parts[-1]


def annotate(
    graph: model.Graph, reasons: Mapping[str, tuple[str, Sequence[str]]]
) -> list[dict[str, object]]:
    """``reasons``: FX node name -> (op name, one line per partitioner). A node of that id
    running that op (its ``target``) gets them; a name another op holds is left alone (two
    methods' programs may reuse a name). Returns the ops annotated, in graph order."""
    found: list[dict[str, object]] = []
    for node in graph.nodes:
        said = reasons.get(node["id"])
        target = model.node_attr(node, "target")
        if said is None or target is None or op_name(target) != said[0]:
            continue
        set_reasons(node, said[1])
        found.append({"node": node["id"], "op": said[0], "reasons": list(said[1])})
    describe(graph)
    return found


def ops_of(graph: model.Graph) -> list[dict[str, object]]:
    """The ops of a graph that carry reasons (a ``.pte``'s kernels), as ``annotate`` lists
    them."""
    found: list[dict[str, object]] = []
    for node in graph.nodes:
        text = model.node_attr(node, KEY)
        if text:
            found.append({"node": node["id"], "op": node["label"], "reasons": text.split("\n")})
    return found


def summary_lines(summary: Sequence[Mapping[str, object]]) -> list[str]:
    """One line per graph (``{"graph", "ops"}``): ``xnnpack @ m.py:34 (lowered): 2 ops on
    the CPU: mean (XnnpackPartitioner: ...), cumsum (...)``, with each op's first reason."""
    lines = []
    for entry in summary:
        listed = entry.get("ops")
        ops = [op for op in listed if isinstance(op, dict)] if isinstance(listed, list) else []
        # an LLM leaves hundreds of the same op for the same reason: each kind once, counted
        kinds = Counter(f"{op.get('op')} ({_first(op)})" for op in ops)
        named = [k if n == 1 else f"{k} x{n}" for k, n in list(kinds.items())[:LINE_LISTED]]
        rest = len(kinds) - LINE_LISTED
        more = f", and {rest} more kinds" if rest > 0 else ""
        count = f"{len(ops)} op{'s' if len(ops) != 1 else ''}"
        lines.append(f"{entry.get('graph')}: {count} on the CPU: {', '.join(named)}{more}")
    return lines


def _first(op: Mapping[str, object]) -> str:
    reasons = op.get("reasons")
    return str(reasons[0]) if isinstance(reasons, list) and reasons else SILENT


def set_reasons(node: model.Node, lines: Sequence[str]) -> None:
    node["attrs"] = [a for a in node["attrs"] if a["key"] != KEY]
    node["attrs"].append({"key": KEY, "value": "\n".join(lines)})


def describe(graph: model.Graph) -> None:
    """The graph info from the nodes' reasons: ``on CPU: 2 ops``, each with its first."""
    said = [(node, model.node_attr(node, KEY)) for node in graph.nodes]
    listed = [(node, text) for node, text in said if text]
    if not listed:
        return
    info = graph.group_attrs.setdefault("", {})
    count = len(listed)
    # The stage correspondence counts every op on the CPU under the same key, as a number.
    info.setdefault(INFO, str(count))
    for node, text in listed[:MAX_LISTED]:
        info[f"{INFO}: {node['label']} ({node['id']})"] = text.split("\n", 1)[0]
    if count > MAX_LISTED:
        info[f"{INFO}: ..."] = f"and {count - MAX_LISTED} more (each node says why)"
