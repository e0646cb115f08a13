"""Find the ExportedPrograms inside whatever object a user hands us.

Accepts an ``ExportedProgram``, an ExecuTorch ``EdgeProgramManager`` (every method), an
``ExecutorchProgramManager``, or a mapping / sequence of those. Returns named programs in
a stable order; names say which method (and stage) each one is.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch


def named_programs(obj: Any, name: str) -> list[tuple[str, torch.export.ExportedProgram]]:
    if isinstance(obj, torch.export.ExportedProgram):
        return [(name, obj)]
    methods = _method_programs(obj)
    if methods is not None:
        stage = _stage(obj)
        if len(methods) == 1:
            ((_, program),) = methods.items()
            return [(f"{name} ({stage})", program)]
        return [(f"{name}.{method} ({stage})", program) for method, program in methods.items()]
    if isinstance(obj, Mapping):
        return [
            item for key, value in obj.items() for item in named_programs(value, f"{name}.{key}")
        ]
    if isinstance(obj, (list, tuple)):
        return [
            item for i, value in enumerate(obj) for item in named_programs(value, f"{name}[{i}]")
        ]
    raise TypeError(
        f"expected an ExportedProgram, EdgeProgramManager or ExecutorchProgramManager, "
        f"got {type(obj).__name__}"
    )


def _method_programs(obj: Any) -> dict[str, torch.export.ExportedProgram] | None:
    """Per-method programs of an ExecuTorch program manager, or None for other objects."""
    methods = getattr(obj, "methods", None)
    get_program = getattr(obj, "exported_program", None)
    if methods is None or not callable(get_program):
        return None
    return {str(method): get_program(method) for method in sorted(methods)}


def _stage(obj: Any) -> str:
    kind = type(obj).__name__
    return {"EdgeProgramManager": "edge", "ExecutorchProgramManager": "executorch"}.get(kind, kind)


def is_program(obj: Any) -> bool:
    if isinstance(obj, torch.export.ExportedProgram):
        return True
    return _method_programs(obj) is not None
