"""Find the ExportedPrograms inside whatever object a user hands us.

Accepts an ``ExportedProgram``, an ExecuTorch ``EdgeProgramManager`` (every method), an
``ExecutorchProgramManager``, a partitioner's ``PartitionResult`` (its tagged program),
or a mapping / sequence of those. Returns named programs in a stable order; the names of
programs found inside managers say the method and the stage (``edge``, ``lowered``,
``executorch``, ``tagged``). A bare ExportedProgram keeps the name it was given: callers
that want the stage in it use :func:`stage`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from etviz_lsp.graph.core import ir, naming

STAGES = ("exported", "quantized", "edge", "tagged", "lowered", "executorch")


def named_programs(obj: Any, name: str) -> list[tuple[str, torch.export.ExportedProgram]]:
    if isinstance(obj, torch.export.ExportedProgram):
        return [(name, obj)]
    tagged = _tagged_program(obj)
    if tagged is not None:
        return [(f"{name} (tagged)", tagged)]
    methods = _method_programs(obj)
    if methods is not None:
        executorch = type(obj).__name__ == "ExecutorchProgramManager"
        named = []
        for method, program in methods.items():
            label = name if len(methods) == 1 else f"{name}.{method}"
            named.append((f"{label} ({'executorch' if executorch else stage(program)})", program))
        return named
    if isinstance(obj, Mapping):
        return [
            item for key, value in obj.items() for item in named_programs(value, f"{name}.{key}")
        ]
    if isinstance(obj, (list, tuple)):
        return [
            item for i, value in enumerate(obj) for item in named_programs(value, f"{name}[{i}]")
        ]
    raise TypeError(
        f"expected an ExportedProgram, EdgeProgramManager, ExecutorchProgramManager or "
        f"PartitionResult, got {type(obj).__name__}"
    )


def stage(program: torch.export.ExportedProgram) -> str:
    """What a person calls this program: exported, quantized, edge, tagged or lowered."""
    nodes = [n for n in program.graph.nodes if n.op in ("call_function", "placeholder")]
    targets = [str(getattr(n.target, "__name__", n.target)) for n in nodes]
    if any("executorch_call_delegate" in target for target in targets):
        return "lowered"
    if any("delegation_tag" in n.meta for n in nodes):
        return "tagged"
    if getattr(program, "dialect", "") == "EDGE":
        return "edge"
    return "quantized" if is_quantized(targets) else "exported"


# What a quantized program holds: PT2E's quantize/dequantize ops, torchao's affine ones
# (8da4w and other ``quantize_`` configs), or torchao's tensor subclasses still wrapped
# (their weights are unwrapped by ``access_subclass_inner_tensor``).
_QUANTIZED_MARKS = (
    "quantize_per_", "quantize_affine", "choose_qparams", "access_subclass_inner_tensor",
)


def is_quantized(targets: list[str]) -> bool:
    """Whether a program with these call targets is quantized (from its own content)."""
    return any(mark in target for target in targets for mark in _QUANTIZED_MARKS)


def tag_specs(obj: Any) -> dict[str, ir.PartitionInfo]:
    """Backend and compile specs of each tag of a ``PartitionResult`` (else nothing)."""
    tags = getattr(obj, "partition_tags", None)
    if _tagged_program(obj) is None or not isinstance(tags, Mapping):
        return {}
    specs = {}
    for tag, spec in tags.items():
        attrs = naming.compile_spec_attrs((s.key, s.value) for s in spec.compile_specs or [])
        specs[str(tag)] = ir.PartitionInfo(str(spec.backend_id), index=0, label="", attrs=attrs)
    return specs


def _tagged_program(obj: Any) -> torch.export.ExportedProgram | None:
    program = getattr(obj, "tagged_exported_program", None)
    return program if isinstance(program, torch.export.ExportedProgram) else None


def _method_programs(obj: Any) -> dict[str, torch.export.ExportedProgram] | None:
    """Per-method programs of an ExecuTorch program manager, or None for other objects."""
    if isinstance(obj, type):  # the class itself (`from executorch.exir import ...Manager`)
        return None
    methods = getattr(obj, "methods", None)
    get_program = getattr(obj, "exported_program", None)
    if methods is None or not callable(get_program):
        return None
    return {str(method): get_program(method) for method in sorted(methods)}


def is_program(obj: Any) -> bool:
    if isinstance(obj, torch.export.ExportedProgram) or _tagged_program(obj) is not None:
        return True
    return _method_programs(obj) is not None
