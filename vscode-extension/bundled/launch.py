"""Starts the language server this extension carries, with the user's interpreter.

    python launch.py [--stdio]   the language server (vscode-languageclient adds --stdio)
    python launch.py --check     one JSON line: this interpreter, what it lacks, our version

The server's code (``tool/etviz_lsp``) and the packages it imports (``libs/``: pygls,
lsprotocol, cattrs, attrs, msgspec, watchdog; ``libs/cp3XY/`` where a Python needs another
version) go first on ``sys.path``, so the server never imports a different version of them
from the user's environment, and nothing is installed there. torch, ExecuTorch and Model
Explorer stay the user's: the worker and the Model Explorer server import them from the
user's environment. Written by scripts/bundle_server.py's caller (``make vsix``) beside
the folders it fills; stdlib only, and no f-string an old Python could not parse before
it says it is too old.
"""

import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
# The CPython versions whose wheels scripts/bundle_server.py fetched (its PYTHONS).
OLDEST, NEWEST = (3, 10), (3, 14)


def server_paths():
    tool, libs = os.path.join(HERE, "tool"), os.path.join(HERE, "libs")
    own = os.path.join(libs, "cp%d%d" % sys.version_info[:2])
    return [tool] + ([own] if os.path.isdir(own) else []) + [libs]


def main():
    if not OLDEST <= sys.version_info[:2] <= NEWEST:
        sys.stderr.write(
            "%s is Python %d.%d: the etviz extension's server runs on Python %d.%d to %d.%d\n"
            % ((sys.executable,) + tuple(sys.version_info[:2]) + OLDEST + NEWEST)
        )
        return 3
    # A script run puts its own folder first: ours replace it, ahead of everything else.
    sys.path[:] = server_paths() + [p for p in sys.path if os.path.abspath(p or ".") != HERE]
    if "--check" in sys.argv[1:]:
        import etviz_lsp
        from etviz_lsp import run_requirements

        report = run_requirements.report()
        report["server"] = etviz_lsp.__version__
        print(json.dumps(report))
        return 0
    from etviz_lsp.cli import run

    sys.argv[0] = "etviz-lsp"
    run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
