"""The guard in front of Model Explorer's web app: a WSGI middleware, pure standard library.

Model Explorer's server answers any ``Host`` header and its ``read_text_file`` endpoint
reads any file the user can read. Every request passes here first:

1. ``Host`` must be our loopback address and port (``127.0.0.1:P``, ``localhost:P``,
   ``[::1]:P``): a DNS-rebinding page arrives with its own host name and gets 403.
2. The web app's static files (Model Explorer's own published JS, CSS, fonts: the same
   bytes for everybody) are served without more checks, so the page renders inside
   editors that drop cookies in frames. They are matched by exact name against the
   package's file list, never by pattern.
3. Everything else needs the token: ``?etviz_token=`` in the URLs we hand out, then the
   cookie set on that first load, the ``X-Etviz-Token`` header (our own clients), or the
   page's ``Referer`` (same-origin requests of a page opened with the token; the web app
   keeps unknown query parameters in its URL). Missing or wrong: 403.
4. Routes are allow-listed (fail closed: an endpoint a future Model Explorer adds is 403
   until reviewed). Path-taking routes (``read_text_file``, ``send_command``,
   ``notify_user_provided_model_path``) get a path only inside the graph cache folder,
   after resolving symlinks; ``..`` is refused outright. Uploads are refused.
"""

from __future__ import annotations

import hmac
import io
import json
import os
from collections.abc import Callable, Iterable
from http.cookies import CookieError, SimpleCookie
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

Environ = dict[str, Any]
StartResponse = Callable[..., Any]
WsgiApp = Callable[[Environ, StartResponse], Iterable[bytes]]

TOKEN_PARAM = "etviz_token"
TOKEN_HEADER = "X-Etviz-Token"
STATUS_PATH = "/__etviz__/status"
MAX_COMMAND_BYTES = 1 << 20

# Routes of model-explorer 0.1.34 that take no path and change nothing on disk.
PLAIN_ROUTES = frozenset(
    {
        "/",
        "/index.html",
        "/check_health",
        "/api/v1/check_new_version",
        "/api/v1/get_extensions",
        "/api/v1/load_graphs_json",
        "/api/v1/load_node_data",
        "/apistream/server_director",
        "/apipost/v1/update_config",
        "/apipost/v1/refresh_page",
    }
)
PATH_PARAM_ROUTES = frozenset({"/api/v1/read_text_file", "/api/v1/notify_user_provided_model_path"})
COMMAND_ROUTES = frozenset({"/api/v1/send_command", "/apipost/v1/send_command"})


def static_files(web_app_dir: Path) -> frozenset[str]:
    """URL paths of the web app's files (``/main-X.js``, ``/static_files/...``), not index."""
    found = set()
    for folder, _dirs, files in os.walk(web_app_dir):
        for name in files:
            rel = Path(folder, name).relative_to(web_app_dir).as_posix()
            if rel != "index.html":
                found.add("/" + rel)
    return frozenset(found)


class Guard:
    def __init__(
        self,
        *,
        port: int,
        token: str,
        cache_dir: Path,
        static_paths: frozenset[str],
        pid: int | None = None,
    ) -> None:
        self.port = port
        self.token = token
        self.cache_dir = os.path.realpath(cache_dir)
        self.static_paths = static_paths
        self.pid = os.getpid() if pid is None else pid
        self.allowed_hosts = frozenset({f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}"})
        self.cookie_name = f"etviz_token_{port}"  # cookies ignore ports: name ours apart

    def __call__(self, environ: Environ, start_response: StartResponse, app: WsgiApp) -> Any:
        host = environ.get("HTTP_HOST", "").lower()
        if host not in self.allowed_hosts:
            return _deny(start_response, "foreign Host header")
        path = environ.get("PATH_INFO", "") or "/"
        if environ.get("REQUEST_METHOD") == "GET" and path in self.static_paths:
            return app(environ, start_response)
        via_query = self._query_token(environ)
        if not self._token_ok(via_query or self._other_token(environ)):
            return _deny(start_response, "missing or wrong token")
        if path == STATUS_PATH:
            return self._status(start_response)
        refusal = self._route_refusal(path, environ)
        if refusal:
            return _deny(start_response, refusal)
        if via_query and path in ("/", "/index.html"):
            start_response = self._setting_cookie(start_response)
        return app(environ, start_response)

    # -- token -------------------------------------------------------------------------

    def _token_ok(self, presented: str | None) -> bool:
        return bool(presented) and hmac.compare_digest(str(presented), self.token)

    @staticmethod
    def _query_token(environ: Environ) -> str | None:
        values = parse_qs(environ.get("QUERY_STRING", "")).get(TOKEN_PARAM)
        return values[0] if values else None

    def _other_token(self, environ: Environ) -> str | None:
        header = environ.get("HTTP_X_ETVIZ_TOKEN")
        if header:
            return str(header)
        cookie = self._cookie_token(environ.get("HTTP_COOKIE", ""))
        if cookie:
            return cookie
        return self._referer_token(environ.get("HTTP_REFERER", ""))

    def _cookie_token(self, raw: str) -> str | None:
        if not raw:
            return None
        try:
            morsel = SimpleCookie(raw).get(self.cookie_name)
        except CookieError:
            return None
        return morsel.value if morsel else None

    def _referer_token(self, referer: str) -> str | None:
        if not referer:
            return None
        parts = urlsplit(referer)
        if parts.netloc.lower() not in self.allowed_hosts:
            return None
        values = parse_qs(parts.query).get(TOKEN_PARAM)
        return values[0] if values else None

    def _setting_cookie(self, start_response: StartResponse) -> StartResponse:
        cookie = f"{self.cookie_name}={self.token}; Path=/; HttpOnly; SameSite=Strict"

        def with_cookie(status: str, headers: list[tuple[str, str]], *exc: Any) -> Any:
            return start_response(status, [*headers, ("Set-Cookie", cookie)], *exc)

        return with_cookie

    # -- routes and paths --------------------------------------------------------------

    def _route_refusal(self, path: str, environ: Environ) -> str | None:
        if path in PLAIN_ROUTES:
            return None
        if path in PATH_PARAM_ROUTES:
            values = parse_qs(environ.get("QUERY_STRING", "")).get("path", [])
            if not values or not all(self.inside_cache(v) for v in values):
                return "path outside the etviz graph cache"
            return None
        if path in COMMAND_ROUTES:
            return self._command_refusal(path, environ)
        return "route not allowed"

    def _command_refusal(self, path: str, environ: Environ) -> str | None:
        if path.startswith("/apipost/"):
            body = _read_body(environ)
            if body is None:
                return "command too large"
            raw = body.decode("utf-8", "replace")
        else:
            raw = parse_qs(environ.get("QUERY_STRING", "")).get("json", ["{}"])[0]
        try:
            command = json.loads(raw)
        except ValueError:
            return "malformed command"
        if not isinstance(command, dict):
            return "malformed command"
        # The converter reads modelPath and, with deleteAfterConversion, deletes its folder.
        if command.get("deleteAfterConversion"):
            return "deleting files is not allowed"
        if not self.inside_cache(str(command.get("modelPath", ""))):
            return "path outside the etviz graph cache"
        return None

    def inside_cache(self, raw: str) -> bool:
        """A regular file under the cache folder, after ``~`` and symlinks; no ``..`` at all."""
        if not raw or "\x00" in raw:
            return False
        expanded = os.path.expanduser(raw)  # Model Explorer expands ``~`` too
        if not os.path.isabs(expanded) or ".." in Path(expanded).parts:
            return False
        real = os.path.realpath(expanded)
        return real.startswith(self.cache_dir + os.sep) and os.path.isfile(real)

    def _status(self, start_response: StartResponse) -> list[bytes]:
        body = json.dumps({"app": "etviz-lsp", "pid": self.pid, "port": self.port}).encode()
        start_response(
            "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
        )
        return [body]


def _read_body(environ: Environ) -> bytes | None:
    """Read a request body (bounded) and put it back for the app behind us."""
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > MAX_COMMAND_BYTES:
        return None
    body = environ["wsgi.input"].read(length) if length > 0 else b""
    environ["wsgi.input"] = io.BytesIO(body)
    environ["CONTENT_LENGTH"] = str(len(body))
    return body


def _deny(start_response: StartResponse, reason: str) -> list[bytes]:
    body = f"etviz-lsp guard: {reason}\n".encode()
    start_response(
        "403 Forbidden",
        [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))],
    )
    return [body]
