"""msgspec for a worker whose interpreter has none: the caller's copy, loaded by path.

The worker writes graph JSON and reads ``.pt2`` archives with msgspec, a compiled package
the language server has (carried by the editor extension, or installed beside it) and the
user's interpreter may lack: torch and ExecuTorch are all a run should need there. Putting
the server's library folder on the worker's path would also put pygls, attrs,
typing_extensions... where the user's script imports them; so only msgspec is lent, by
path, and only when the interpreter has none of its own (the user's copy wins).
"""

from __future__ import annotations

import importlib.util
import os
import sys

FLAG = "--msgspec"


def argument() -> list[str]:
    """What the caller appends to the worker's command: where its msgspec lives."""
    import msgspec

    return [FLAG, os.path.dirname(os.path.abspath(msgspec.__file__))]


def borrow(argv: list[str]) -> None:
    """In the worker, before anything imports msgspec: load the lent copy if needed."""
    if FLAG not in argv[:-1] or importlib.util.find_spec("msgspec") is not None:
        return
    package = argv[argv.index(FLAG) + 1]
    spec = importlib.util.spec_from_file_location(
        "msgspec", os.path.join(package, "__init__.py"), submodule_search_locations=[package]
    )
    if spec is None or spec.loader is None:
        return  # the import that needs it names what is missing
    module = importlib.util.module_from_spec(spec)
    sys.modules["msgspec"] = module
    try:
        spec.loader.exec_module(module)
    except ImportError:  # another Python's build: as if there were none
        del sys.modules["msgspec"]
