"""The server process: Model Explorer's own Flask app with our guard in front of it.

Started by :mod:`etviz_lsp.explorer.manager` as
``python -m etviz_lsp.explorer.serve --port P --cache-dir DIR`` in a session of its own;
the token arrives on stdin (never in argv, which other users can read in ``ps``).

Model Explorer builds its Flask app inside ``model_explorer.server.start()`` and serves it
from a thread, so there is no app object to wrap from outside. Instead, in this process
only, ``flask.Flask.__call__`` (the WSGI entry every server calls) is replaced by one that
runs the guard first. Nothing on disk is changed; any way Model Explorer serves a Flask app
goes through it. The manager checks after start-up that a token-less request is refused,
so a future Model Explorer that serves differently fails closed.

Exit codes: 0 never (the server runs until killed), 3 the server thread ended (in practice:
the port was taken between the check and the bind; plain model-explorer exits 0 here after
printing its "Starting Model Explorer server" line), 1 port in use at start, 2 bad usage.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from etviz_lsp.explorer.guard import Guard, static_files

EXIT_SERVER_ENDED = 3


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m etviz_lsp.explorer.serve")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--cache-dir", type=Path, required=True)
    args = parser.parse_args(argv)
    token = sys.stdin.readline().strip()
    if len(token) < 32:
        print("serve: no token on stdin", file=sys.stderr)
        return 2
    sys.stdin.close()
    _run(args.port, args.cache_dir, token)
    print("serve: the server thread ended (port taken?)", file=sys.stderr)
    return EXIT_SERVER_ENDED


def _run(port: int, cache_dir: Path, token: str) -> None:
    # Model Explorer imports torch when it can, only for its own PyTorch adapter; this
    # server is handed finished graph JSON and never converts a model. Marking torch as
    # absent (Python's documented ``sys.modules[name] = None``) takes its graceful no-torch
    # path: start-up 2.7 s -> 0.4 s of imports, ~370 MB -> ~45 MB resident.
    sys.modules["torch"] = None  # type: ignore[assignment]
    import flask
    from model_explorer import server as me_server

    guard = Guard(
        port=port,
        token=token,
        cache_dir=cache_dir,
        static_paths=static_files(Path(me_server.OSS_WEB_APP_DIR)),
    )
    flask_call = flask.Flask.__call__

    def guarded_call(self: flask.Flask, environ: Any, start_response: Any) -> Any:
        return guard(environ, start_response, lambda e, s: flask_call(self, e, s))

    flask.Flask.__call__ = guarded_call  # type: ignore[method-assign]
    # Its version check calls PyPI and GitHub on every start and on every page load: a
    # local viewer has no business phoning home (and these machines have no network).
    me_server._check_new_version = _no_new_version
    me_server.start(
        host="127.0.0.1",
        port=port,
        no_open_in_browser=True,
        # Its own probe requests "/" without our token and would loop forever; the manager
        # probes readiness itself, with a deadline.
        skip_health_check=True,
    )


def _no_new_version(print_msg: bool = True) -> dict[str, str]:
    return {"version": "", "runningVersion": "", "releaseUrl": "", "desktopAppUrl": ""}


if __name__ == "__main__":
    raise SystemExit(main())
