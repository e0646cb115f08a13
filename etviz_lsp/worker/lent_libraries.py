"""msgspec and psutil for a worker whose interpreter lacks them: the caller's, by path.

The worker writes graph JSON and reads ``.pt2`` archives with msgspec, and finds and ends a
run's processes with psutil (``processes.py``): compiled packages the language server has
(carried by the editor extension, or installed beside it) and the user's interpreter may
lack: torch and ExecuTorch are all a run should need there. Putting the server's library
folder on the worker's path would also put pygls, attrs, typing_extensions... where the
user's script imports them; so only these two are lent, each by path, and only when the
interpreter has none of its own (the user's copy wins). Both load in any CPython the
server takes: msgspec's bundle holds a ``_core`` per Python, psutil's is one ``abi3`` build.
If a lent copy still cannot load, msgspec's absence is named by the import that needs it,
and psutil's only weakens the clean-up (``processes.py``'s fallbacks).
"""

from __future__ import annotations

import importlib.util
import os
import sys

FLAG = "--lend"
LENT = ("msgspec", "psutil")


def argument() -> list[str]:
    """What the caller appends to the worker's command: where its copies live."""
    found: list[str] = []
    for name in LENT:
        module = importlib.import_module(name)
        found += [FLAG, os.path.dirname(os.path.abspath(str(module.__file__)))]
    return found


def lent(argv: list[str]) -> list[str]:
    """The ``--lend DIR`` pairs of ``argv`` (to hand on to another worker process)."""
    pairs: list[str] = []
    for index, value in enumerate(argv[:-1]):
        if value == FLAG:
            pairs += [FLAG, argv[index + 1]]
    return pairs


def borrow(argv: list[str]) -> None:
    """In the worker, before anything imports them: load each lent copy that is needed."""
    for package in lent(argv)[1::2]:
        name = os.path.basename(package)
        if name in LENT and importlib.util.find_spec(name) is None:
            _load(name, package)


def _load(name: str, package: str) -> None:
    spec = importlib.util.spec_from_file_location(
        name, os.path.join(package, "__init__.py"), submodule_search_locations=[package]
    )
    if spec is None or spec.loader is None:
        return  # the import that needs it names what is missing
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except ImportError:  # another Python's or platform's build: as if there were none
        del sys.modules[name]
