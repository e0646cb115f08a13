"""Where Model Explorer's open time goes: synthetic graphs of one size in different shapes.

    PYTHONPATH=. .venv/bin/python bench/me_layout_shapes.py [--nodes 1000] [--deadline 300]
        [--only NAME ...] [--screenshots DIR]

Each shape is a graph of ``--nodes`` op nodes (a chain, labels like ``aten.linear.default``)
written as its own collection and opened by ``me_open_time.open_times`` (one server, a fresh
headless Chromium per graph). The shapes change one thing at a time against ``grouped-30``
(30 layers of equal size at the top level, one edge per node, no attributes):

- ``flat``: every node at the top level; ``grouped-K``: K top-level layers;
- ``nested-30x10``: 30 layers of 10 sub-layers each (top level as ``grouped-30``);
- ``fan-in-3``: three incoming edges per node (from the 1st, 2nd and 3rd node before);
- ``hub``: every layer's first node also reads node 0 (an input every block uses, the way
  kv-cache positions feed every attention); ``grouped-100-hub``, ``grouped-300-hub``: both, as
  a lowered LLM's partitions side by side, fed from its inputs;
- ``attrs-20``: 20 attributes per node; ``shapes``: a tensor shape on every output (Model
  Explorer can draw it on the edge).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from me_open_time import OpenTime, load_line, open_times, table  # noqa: E402

LABELS = ("aten.linear.default", "aten.mul.Tensor", "aten.add.Tensor", "aten.view_copy.default")


@dataclass(frozen=True, slots=True)
class Shape:
    name: str
    groups: int = 30  # top-level layers; 0: every node at the top level
    sub_groups: int = 0  # layers inside each top-level layer
    fan_in: int = 1
    hub: bool = False
    attrs: int = 0
    tensor_shapes: bool = False


SHAPES = [
    Shape("flat", groups=0),
    Shape("grouped-3", groups=3),
    Shape("grouped-30"),
    Shape("grouped-300", groups=300),
    Shape("nested-30x10", sub_groups=10),
    Shape("fan-in-3", fan_in=3),
    Shape("hub", hub=True),
    Shape("grouped-100-hub", groups=100, hub=True),
    Shape("grouped-300-hub", groups=300, hub=True),
    Shape("attrs-20", attrs=20),
    Shape("shapes", tensor_shapes=True),
]


def namespace(shape: Shape, index: int, count: int) -> str:
    if shape.groups == 0:
        return ""
    group = index * shape.groups // count
    top = f"block_{group}"
    if not shape.sub_groups:
        return top
    first = -(-group * count // shape.groups)  # the group's first node
    size = -(-(group + 1) * count // shape.groups) - first
    return f"{top}/part_{(index - first) * shape.sub_groups // max(size, 1)}"


def node(shape: Shape, index: int, count: int) -> dict[str, Any]:
    sources = [index - back for back in range(1, shape.fan_in + 1) if index - back >= 0]
    ns = namespace(shape, index, count)
    if shape.hub and index > 0 and ns != namespace(shape, index - 1, count):
        sources.append(0)
    edges = [
        {"sourceNodeId": f"n{source}", "sourceNodeOutputId": "0", "targetNodeInputId": str(slot)}
        for slot, source in enumerate(dict.fromkeys(sources))
    ]
    item: dict[str, Any] = {
        "id": f"n{index}",
        "label": LABELS[index % len(LABELS)],
        "namespace": ns,
        "attrs": [{"key": f"attr_{k}", "value": f"{k} of n{index}"} for k in range(shape.attrs)],
        "incomingEdges": edges,
    }
    if shape.tensor_shapes:
        item["outputsMetadata"] = [
            {"id": "0", "attrs": [{"key": "tensor_shape", "value": "float32[1, 128, 384]"}]}
        ]
    return item


def write_collection(shape: Shape, count: int, folder: Path) -> Path:
    graph = {"id": shape.name, "nodes": [node(shape, i, count) for i in range(count)]}
    path = folder / f"{shape.name}.json"
    path.write_text(json.dumps({"label": shape.name, "graphs": [graph]}))
    return path


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--deadline", type=float, default=300)
    parser.add_argument("--only", nargs="+", help="shape names to run")
    parser.add_argument("--repeat", type=int, default=1, help="rounds; the median row is shown")
    parser.add_argument("--screenshots", type=Path)
    args = parser.parse_args(argv)
    shapes = [s for s in SHAPES if not args.only or s.name in args.only]
    runs: dict[str, list[OpenTime]] = {shape.name: [] for shape in shapes}
    with tempfile.TemporaryDirectory(prefix="etviz-shapes-") as folder:
        paths = [write_collection(shape, args.nodes, Path(folder)) for shape in shapes]
        for _ in range(args.repeat):  # rounds, so a busy spell of the machine hits every shape
            for shape, path in zip(shapes, paths, strict=True):
                row = open_times(path, deadline=args.deadline, screenshots=args.screenshots)[0]
                runs[shape.name].append(row)
                print(table([row]).splitlines()[-1], flush=True)  # each row as it comes
    print(load_line())
    print(table([median(rows) for rows in runs.values()]))
    return 0


def median(rows: list[OpenTime]) -> OpenTime:
    """The run of median on-screen time (not drawn in time counts as the slowest)."""
    ordered = sorted(rows, key=lambda row: float("inf") if row.seconds is None else row.seconds)
    return ordered[len(ordered) // 2]


if __name__ == "__main__":
    sys.path.insert(0, str(HERE.parent))
    sys.exit(main())
