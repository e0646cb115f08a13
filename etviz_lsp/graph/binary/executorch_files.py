"""Files the installed ``executorch`` wheel ships (FlatBuffer schemas), found without importing it.

The ``.pte`` reader, the ETDump reader and every backend's payload reader parse their schema
from here at run time, so etviz needs no generated code and follows the user's ExecuTorch.
"""

from __future__ import annotations

import importlib.util
from functools import cache
from pathlib import Path

from etviz_lsp.errors import EtvizError
from etviz_lsp.graph.binary import flatbuf


def executorch_file(relative: str) -> Path:
    """``relative`` inside the installed executorch package (a top-level spec: nothing imported)."""
    spec = importlib.util.find_spec("executorch")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        candidate = Path(folder) / relative
        if candidate.is_file():
            return candidate
    raise EtvizError("executorch", f"{relative} not found: install executorch to read .pte files")


@cache
def schema(relative: str) -> flatbuf.Schema:
    """The FlatBuffer schema at ``relative`` in the wheel, parsed once per process."""
    return flatbuf.parse_schema(executorch_file(relative))
