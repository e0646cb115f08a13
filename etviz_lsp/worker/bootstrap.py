"""How a worker process is started with the user's interpreter: ``python -c BOOTSTRAP``.

The bootstrap loads this checkout's ``etviz_lsp`` by path, so the user's interpreter needs
torch (and ExecuTorch for lowering) but not etviz-lsp itself, and nothing else of ours is
put on its ``sys.path``. The ``''`` that ``-c`` puts first is dropped: a workspace file must
not shadow torch. The caller starts the warm worker this way, and in the portable mode the
warm worker starts each run host the same way (``host_pool.py``).
"""

from __future__ import annotations

import os

import etviz_lsp

HOST_FLAG = "--host"  # the portable mode's run host (run_host.py), not a warm worker

BOOTSTRAP = """\
import importlib.util, sys
if sys.path and sys.path[0] == '':
    del sys.path[0]
package = sys.argv[1]
spec = importlib.util.spec_from_file_location(
    'etviz_lsp', package + '/__init__.py', submodule_search_locations=[package])
module = importlib.util.module_from_spec(spec)
sys.modules['etviz_lsp'] = module
spec.loader.exec_module(module)
if sys.argv[2:3] == ['--host']:
    from etviz_lsp.worker.run_host import main
    raise SystemExit(main(sys.argv[3:]))
from etviz_lsp.worker.zygote import main
raise SystemExit(main(sys.argv[2:]))
"""


def command(python: str, args: list[str]) -> list[str]:
    """``python`` running the warm worker's ``main`` (``zygote.main``) with ``args``, or a
    run host's (``run_host.main``) when ``args`` starts with :data:`HOST_FLAG`."""
    package = os.path.dirname(os.path.abspath(etviz_lsp.__file__))
    return [python, "-c", BOOTSTRAP, package, *args]
