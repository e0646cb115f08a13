"""The guard in front of the real server: Host check, token, file reads only from the cache."""

from __future__ import annotations

import http.client
import importlib.util
import json
import os
from pathlib import Path
from urllib.parse import quote, urlsplit

import pytest

from etviz_lsp import explorer
from etviz_lsp.explorer import locations
from tests.explorer_fixtures import explorer_home, write_graph  # noqa: F401

START_TIMEOUT = 90.0
WEB_APP = Path(importlib.util.find_spec("model_explorer").origin).parent / "web_app"  # type: ignore[arg-type, union-attr]
MAIN_JS = "/" + next(WEB_APP.glob("main-*.js")).name


@pytest.fixture(scope="module")
def server(explorer_home: Path) -> explorer.ServerInfo:  # noqa: F811
    return explorer.ensure_server(timeout=START_TIMEOUT)


@pytest.fixture(scope="module")
def our_graph(server: explorer.ServerInfo, tmp_path_factory: pytest.TempPathFactory) -> Path:
    source = tmp_path_factory.mktemp("user") / "convnet.json"
    write_graph(source)
    return explorer.publish(source)


def get(
    info: explorer.ServerInfo,
    path: str,
    *,
    token: str | None = None,
    host: str | None = None,
    headers: dict[str, str] | None = None,
    method: str = "GET",
    body: bytes | None = None,
) -> tuple[int, bytes, http.client.HTTPResponse]:
    conn = http.client.HTTPConnection("127.0.0.1", info.port, timeout=30)
    all_headers = dict(headers or {})
    if host is not None:
        all_headers["Host"] = host
    if token is not None:
        sep = "&" if "?" in path else "?"
        path = f"{path}{sep}etviz_token={quote(token)}"
    conn.request(method, path, body=body, headers=all_headers)
    response = conn.getresponse()
    data = response.read()
    conn.close()
    return response.status, data, response


def read_file(info: explorer.ServerInfo, file: str, **kw: object) -> tuple[int, bytes]:
    status, data, _ = get(info, f"/api/v1/read_text_file?path={quote(file)}", **kw)  # type: ignore[arg-type]
    return status, data


# -- Host ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "host",
    ["attacker.example:{port}", "attacker.example", "127.0.0.1:1", "localhost", "127.0.0.2:{port}"],
)
def test_foreign_host_is_refused(server: explorer.ServerInfo, our_graph: Path, host: str) -> None:
    host = host.format(port=server.port)
    assert read_file(server, str(our_graph), token=server.token, host=host)[0] == 403
    assert get(server, "/", token=server.token, host=host)[0] == 403
    assert get(server, MAIN_JS, host=host)[0] == 403  # even static files


@pytest.mark.parametrize("host", ["127.0.0.1:{port}", "localhost:{port}", "[::1]:{port}"])
def test_our_loopback_names_are_served(
    server: explorer.ServerInfo, our_graph: Path, host: str
) -> None:
    status, data = read_file(
        server, str(our_graph), token=server.token, host=host.format(port=server.port)
    )
    assert status == 200
    assert json.loads(json.loads(data)["content"])["label"] == "convnet"


# -- files -----------------------------------------------------------------------------


def test_etc_hostname_is_refused_even_with_token(server: explorer.ServerInfo) -> None:
    status, data = read_file(server, "/etc/hostname", token=server.token)
    assert status == 403 and b"content" not in data


def test_file_outside_cache_is_refused(
    server: explorer.ServerInfo, tmp_path: Path, our_graph: Path
) -> None:
    outside = tmp_path / "graph.json"
    outside.write_text(our_graph.read_text())
    assert read_file(server, str(outside), token=server.token)[0] == 403
    # the state file (it holds the token) sits right next to the cache folder
    assert read_file(server, str(locations.state_file()), token=server.token)[0] == 403


@pytest.mark.parametrize(
    "trick",
    [
        "{cache}/../server.json",
        "{cache}/./../server.json",
        "{cache}/../graphs/{name}",  # even when it lands back inside
        "~/../../etc/hostname",
        "graphs/{name}",  # relative: would resolve against the server's cwd
        "{cache}",  # the folder itself
        "{cache}/{name}\x00.json",
    ],
)
def test_path_tricks_are_refused(server: explorer.ServerInfo, our_graph: Path, trick: str) -> None:
    path = trick.format(cache=our_graph.parent, name=our_graph.name)
    assert read_file(server, path, token=server.token)[0] == 403


def test_symlinks_out_of_cache_are_refused(server: explorer.ServerInfo, our_graph: Path) -> None:
    cache = our_graph.parent
    file_link = cache / "escape.json"
    dir_link = cache / "escape-dir"
    file_link.symlink_to("/etc/hostname")
    dir_link.symlink_to("/etc")
    try:
        assert read_file(server, str(file_link), token=server.token)[0] == 403
        assert read_file(server, str(dir_link / "hostname"), token=server.token)[0] == 403
    finally:
        file_link.unlink()
        dir_link.unlink()


def test_several_path_params_all_checked(server: explorer.ServerInfo, our_graph: Path) -> None:
    path = f"/api/v1/read_text_file?path={quote(str(our_graph))}&path=/etc/hostname"
    assert get(server, path, token=server.token)[0] == 403


def test_send_command_paths_are_confined(server: explorer.ServerInfo, our_graph: Path) -> None:
    def command(model_path: str, delete: bool = False) -> str:
        cmd = {
            "cmdId": "convert",
            "extensionId": "builtin_json",
            "modelPath": model_path,
            "settings": {},
            "deleteAfterConversion": delete,
        }
        return json.dumps(cmd)

    outside = command("/etc/hostname")
    assert get(server, f"/api/v1/send_command?json={quote(outside)}", token=server.token)[0] == 403
    status, _, _ = get(
        server,
        "/apipost/v1/send_command",
        token=server.token,
        method="POST",
        body=outside.encode(),
        headers={"Content-Type": "application/json"},
    )
    assert status == 403
    deleting = command(str(our_graph), delete=True)
    assert get(server, f"/api/v1/send_command?json={quote(deleting)}", token=server.token)[0] == 403
    assert our_graph.exists()
    inside = command(str(our_graph))
    status, _, _ = get(
        server,
        "/apipost/v1/send_command",
        token=server.token,
        method="POST",
        body=inside.encode(),
        headers={"Content-Type": "application/json"},
    )
    assert status == 200  # reaches Model Explorer (which answers its own way)


def test_upload_is_refused(server: explorer.ServerInfo) -> None:
    status, _, _ = get(server, "/apipost/v1/upload", token=server.token, method="POST", body=b"")
    assert status == 403


# -- token -----------------------------------------------------------------------------


@pytest.mark.parametrize("route", ["/", "/check_health", "/api/v1/get_extensions", "/index.html"])
def test_missing_or_wrong_token_is_refused(server: explorer.ServerInfo, route: str) -> None:
    assert get(server, route)[0] == 403
    assert get(server, route, token="")[0] == 403
    assert (
        get(server, route, token=server.token[:-1] + ("A" if server.token[-1] != "A" else "B"))[0]
        == 403
    )
    assert get(server, route, headers={"X-Etviz-Token": "nope"})[0] == 403
    assert get(server, route, token=server.token)[0] == 200


def test_our_graph_needs_the_token(server: explorer.ServerInfo, our_graph: Path) -> None:
    assert read_file(server, str(our_graph))[0] == 403
    assert read_file(server, str(our_graph), token="wrong")[0] == 403


def test_refresh_needs_the_token(server: explorer.ServerInfo) -> None:
    assert get(server, "/apipost/v1/refresh_page", method="POST", body=b"")[0] == 403
    explorer.refresh(server)  # with it: fine


def test_first_load_sets_a_strict_cookie_that_the_web_app_uses(
    server: explorer.ServerInfo, our_graph: Path
) -> None:
    url = explorer.graph_url(server, our_graph)
    parts = urlsplit(url)
    status, html, response = get(server, f"{parts.path}?{parts.query}")
    assert status == 200 and b'<base href="/">' in html
    cookie = response.getheader("Set-Cookie") or ""
    assert cookie.startswith(f"etviz_token_{server.port}={server.token};")
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    jar = {"Cookie": cookie.split(";")[0]}
    assert read_file(server, str(our_graph), headers=jar)[0] == 200
    # the page's own same-origin requests carry its URL (with the token) as Referer
    referer = {"Referer": url}
    assert read_file(server, str(our_graph), headers=referer)[0] == 200
    foreign_referer = {"Referer": url.replace("127.0.0.1", "evil.example")}
    assert read_file(server, str(our_graph), headers=foreign_referer)[0] == 403


def test_static_web_app_files_need_no_token_but_nothing_else_does(
    server: explorer.ServerInfo,
) -> None:
    """Model Explorer's own JS/CSS/fonts (identical for everyone) load in frames that drop
    cookies; any other name, including made-up ones, is refused."""
    assert get(server, "/static_files/favicon.svg")[0] == 200
    assert get(server, MAIN_JS)[0] == 200
    assert get(server, "/static_files/../index.html")[0] == 403
    assert get(server, "/no-such-file.js")[0] == 403
    assert get(server, "/api/v1/some_future_endpoint", token=server.token)[0] == 403


def test_graph_url_serves_our_graph(server: explorer.ServerInfo, tmp_path: Path) -> None:
    source = tmp_path / "mine.json"
    write_graph(source)
    url = explorer.graph_url(server, source)
    published = Path(json.loads(_data_param(url))["models"][0]["url"])
    assert (
        published.parent == locations.cache_dir() and published.read_bytes() == source.read_bytes()
    )
    assert os.stat(published).st_mode & 0o077 == 0
    assert read_file(server, str(published), token=server.token)[0] == 200


def _data_param(url: str) -> str:
    from urllib.parse import parse_qs

    return parse_qs(urlsplit(url).query)["data"][0]
