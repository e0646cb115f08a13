"""One module per backend; importing this room registers every one of them.

Each module here (but ``registry``) calls ``registry.register`` at import. They are found
by listing the room, so a new backend is one new module: nothing else names it. They
import nothing heavy at import time (a reader imports its backend's tools when it runs).
``graph/__init__.py`` imports this room, so the partition colours (``palette``) know
every backend's hue before any graph is coloured.
"""

from __future__ import annotations

import importlib
import pkgutil

# The room's shared modules, not backends: the registry, and how partitioners' reasons are heard.
SHARED = ("registry", "partitioner_reasons")


def _register_all() -> None:
    for module in sorted(m.name for m in pkgutil.iter_modules(__path__)):
        if module not in SHARED:
            importlib.import_module(f"{__name__}.{module}")


_register_all()
