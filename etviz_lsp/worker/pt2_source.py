"""``.pt2`` files in the worker: the seam between the trusted and the untrusted path.

``graph.convert.from_pt2`` goes through ``torch.export.load``, which unpickles: it may run
code from the file, so it is used only when the caller says the file is trusted. For an
untrusted file we use the no-unpickling direct reader (``graph/pt2_archive.py``, being added
by another room) when it is there, and refuse with a clear error otherwise.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path

from etviz_lsp.errors import EtvizError
from etviz_lsp.graph import convert, model

# The direct reader's module and entry point: ``from_pt2_archive(path) -> GraphCollection``.
DIRECT_READER = ("etviz_lsp.graph.pt2_archive", "from_pt2_archive")


def convert_pt2(path: Path, *, trusted: bool) -> model.GraphCollection:
    if trusted:
        return convert.from_pt2(path)
    reader = _direct_reader()
    if reader is None:
        raise EtvizError(
            str(path),
            "not opened: the workspace is not trusted and reading a .pt2 with "
            "torch.export.load unpickles (can run code from the file); trust the workspace "
            "or name the file on the command line",
        )
    return reader(path)


def _direct_reader() -> Callable[[Path], model.GraphCollection] | None:
    module_name, function = DIRECT_READER
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        return None
    reader = getattr(module, function, None)
    return reader if callable(reader) else None
