"""``.pt2`` files in the worker: the seam between the trusted and the untrusted path.

``graph.convert.from_pt2`` reads the archive with the no-unpickling direct reader
(``graph/pt2_archive.py``). Only when that reader does not know the archive (another
archive or schema version) may it fall back to ``torch.export.load``, which unpickles (it
may run code from the file): that is allowed for a trusted file only. An untrusted file the
direct reader cannot read gets a one-line error saying why.
"""

from __future__ import annotations

from pathlib import Path

from etviz_lsp.graph import convert, model


def convert_pt2(path: Path, *, trusted: bool) -> model.GraphCollection:
    return convert.from_pt2(path, trusted=trusted)
