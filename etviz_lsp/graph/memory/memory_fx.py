"""The memory plan of a live ExecuTorch program: a script run's ``executorch`` stage.

``to_executorch`` runs ExecuTorch's memory planning on the program it keeps: every planned
tensor's node carries a ``TensorSpec`` in ``meta["spec"]`` (memory id, offset, lifetime in
graph nodes, bytes) and the graph module the buffer sizes (``non_const_buffer_sizes``).
Those are read here as they are (no torch import: the objects are duck-typed) into the same
:class:`memory_plan.MemoryPlan` a ``.pte`` gives, its steps being the nodes that run (what
becomes an instruction: not ``alloc``, ``getitem`` or a view), so the stage the user reads
gets the same attributes, node data and timeline as the program file.

On the stage's graph a delegate call is drawn as the ops inside it (``partitions``), so its
step's figures go on each of those; the tensors it makes are shown on the ``getitem`` nodes
that unpack them. A view's spec repeats its base's place and lifetime: one tensor.
"""

from __future__ import annotations

from typing import Any

from etviz_lsp.graph.core import ir, model
from etviz_lsp.graph.memory import memory_plan
from etviz_lsp.graph.memory.memory_plan import MemoryPlan, Tensor

_BOOKKEEPING = {("executorch.exir.memory", "alloc"), ("executorch.exir.memory", "view"),
                ("_operator", "getitem")}  # fmt: skip
EXECUTORCH_STAGE = "executorch"


def stage_plans(stages: list[Any]) -> list[MemoryPlan]:
    """The plans of a run's ``executorch`` stages (``kind``, ``program``, ``graph`` each),
    their graphs annotated; a stage with no memory planning (none ran) has none."""
    plans = []
    for stage in stages:
        if stage.kind == EXECUTORCH_STAGE:
            plan = plan_of(stage.program, stage.graph)
            if plan is not None:
                memory_plan.annotate(stage.graph, plan)
                plans.append(plan)
    return plans


def plan_of(program: Any, graph: model.Graph) -> MemoryPlan | None:
    module = program.graph_module
    sizes = module.meta.get("non_const_buffer_sizes")
    if not sizes:
        return None
    nodes = list(module.graph.nodes)
    steps = [i for i, node in enumerate(nodes) if _runs(node)]
    ops = [node["id"] for node in graph.nodes if model.node_attr(node, "kind") == ir.OP]
    plan = MemoryPlan(graph.id, len(steps), unit="op",
                      step_ids=[_step_ids(nodes[i], ops) for i in steps])
    if not steps:
        plan.notes.append("no ops: nothing runs, no lifetimes")
        return plan
    notes = memory_plan.Notes()
    plan.tensors = _tensors(program, nodes, steps, notes, len(sizes))
    memory_plan.finish(plan, list(sizes), notes)
    return plan


def _runs(node: Any) -> bool:
    target = node.target
    where = (getattr(target, "__module__", ""), getattr(target, "__name__", ""))
    return node.op == "call_function" and where not in _BOOKKEEPING


def _step_ids(node: Any, ops: list[str]) -> list[str]:
    """The graph's nodes for one step: the node, or the ops inside a delegate call."""
    if not _is_call(node) or not hasattr(node.args[0], "name"):
        return [node.name]
    inside = f"{node.args[0].name}/"
    return [i for i in ops if i.startswith(inside)] or [node.name]


def _is_call(node: Any) -> bool:
    return bool(node.args) and getattr(node.target, "__name__", "") == "executorch_call_delegate"


def _tensors(program: Any, nodes: list[Any], steps: list[int], notes: memory_plan.Notes,
             buffers: int) -> list[Tensor]:
    found: dict[tuple[int, int, int, int], Tensor] = {}
    numbered = 0  # tensors and views, in node order
    for node in nodes:
        for out, spec in enumerate(_specs(node)):
            if getattr(spec, "const", False) or spec.mem_id is None or spec.mem_offset is None:
                continue
            key = (spec.mem_id, spec.mem_offset, *spec.lifetime)
            tensor = found.get(key)
            if tensor is not None and _is_view(node):  # its base's memory, named again
                tensor.views.append(numbered)
                numbered += 1
            if tensor is None:
                tensor = _tensor(numbered, spec, steps)
                if tensor is None:
                    continue  # alive at no op (an output spec of the output node)
                numbered += 1
                if not 0 < spec.mem_id < buffers:
                    notes.add("memory ids the method does not plan",
                              f"tensor {tensor.value} in memory {spec.mem_id} of {buffers}")
                    continue
                found[key] = tensor
            if not tensor.maker and _makes(node):
                _made_by(tensor, node, out, program)
    return list(found.values())


def _made_by(tensor: Tensor, node: Any, out: int, program: Any) -> None:
    tensor.maker, tensor.maker_out = node.name, out
    if node.op == "placeholder":
        tensor.role = "state" if node.name in _mutable_buffers(program) else "input"
    tensor.written_at = -1 if node.op == "placeholder" else tensor.first
    if node.args and _is_call(node.args[0]):  # a delegate's output, unpacked
        tensor.kind, tensor.op = "delegate", _backend(program, node.args[0])


def _is_view(node: Any) -> bool:
    target = node.target
    return (getattr(target, "__module__", ""), getattr(target, "__name__", "")) == (
        "executorch.exir.memory", "view")


def _tensor(number: int, spec: Any, steps: list[int]) -> Tensor | None:
    start, end = spec.lifetime
    alive = [i for i, node_index in enumerate(steps) if start <= node_index <= end]
    if not alive:
        return None
    dtype = str(spec.dtype).removeprefix("torch.")
    text = f"{dtype}[{', '.join(str(d) for d in spec.shape)}]"
    return Tensor(number, spec.mem_id, spec.mem_offset, int(spec.nbytes()), text,
                  alive[0], alive[-1], noun="tensor")


def _backend(program: Any, call: Any) -> str:
    lowered = getattr(program.graph_module, str(call.args[0].target), None)
    return str(getattr(lowered, "backend_id", "") or "delegate")


def _makes(node: Any) -> bool:
    """The node shown as making a spec: a placeholder, an op that runs, or the ``getitem``
    unpacking a delegate call (not ``alloc``, not the call: the graph has neither)."""
    name = getattr(node.target, "__name__", "")
    if node.op == "placeholder":
        return True
    if node.op != "call_function" or _is_call(node):
        return False
    return _runs(node) or name == "getitem"


def _specs(node: Any) -> list[Any]:
    spec = node.meta.get("spec")
    specs = spec if isinstance(spec, (list, tuple)) else [spec]
    return [s for s in specs if hasattr(s, "mem_id") and hasattr(s, "lifetime")]


def _mutable_buffers(program: Any) -> set[str]:
    """Placeholder names of the buffers the program updates in place (its state)."""
    signature = program.graph_signature
    mutated = set(signature.buffers_to_mutate.values())
    return {name for name, fqn in signature.inputs_to_buffers.items() if fqn in mutated}
