"""A GraphModule taken from a pass pipeline, seen as the ExportedProgram it came from.

Passes return a ``torch.fx.GraphModule``, not a program; the converter reads programs
(graph signature: which placeholders are weights, buffers or user inputs). The module is
put into a copy of its program with a verifier that accepts any operator, so graphs
holding custom ops (a backend's own) convert too, as ExecuTorch's ``visualize_graph``
allows.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch._export.verifier import Verifier


class _AnyOpVerifier(Verifier):
    dialect = "ETVIZ_ANY_OP"

    def allowed_op_types(self) -> tuple[type[Any], ...]:
        return (Callable,)  # type: ignore[return-value]


def program_of(obj: Any) -> torch.export.ExportedProgram:
    """The ExportedProgram of an ExportedProgram or an ExecuTorch program manager."""
    if isinstance(obj, torch.export.ExportedProgram):
        return obj
    exported_program = getattr(obj, "exported_program", None)
    if callable(exported_program):
        program = exported_program()
        if isinstance(program, torch.export.ExportedProgram):
            return program
    raise TypeError(
        f"visualize_graph needs the ExportedProgram the graph module came from (or its "
        f"EdgeProgramManager / ExecutorchProgramManager), got {type(obj).__name__}"
    )


def with_graph_module(
    graph_module: torch.fx.GraphModule, program: Any
) -> torch.export.ExportedProgram:
    """``program`` with ``graph_module`` as its graph, operators unchecked."""
    if not isinstance(graph_module, torch.fx.GraphModule):
        raise TypeError(
            f"visualize_graph needs a torch.fx.GraphModule, got {type(graph_module).__name__}"
        )
    source = program_of(program)
    try:
        # ExecuTorch's own helper re-derives the signature from the new placeholders.
        from executorch.exir.program._program import _update_exported_program_graph_module
    except ImportError:
        return source._update(graph_module, source.graph_signature, verifiers=[_AnyOpVerifier])
    return _update_exported_program_graph_module(
        source, graph_module, override_verifiers=[_AnyOpVerifier]
    )
