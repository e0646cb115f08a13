"""Editor windows coming and going: two windows share one Model Explorer server (the
last to close stops it), and a window reopened (reload, restart) shows its panel's last
graph at once, then the fresh one.

Real language servers over stdio, a real worker each, one real Model Explorer server.
"""

from __future__ import annotations

import asyncio
import json
import urllib.parse
from pathlib import Path

import psutil
import pytest
from lsprotocol import types

from tests.lsp_session import export_script, lsp_session, wait_until_gone

pytestmark = [pytest.mark.slow, pytest.mark.asyncio]


def _port(url: str) -> int:
    port = urllib.parse.urlparse(url).port
    assert port is not None, url
    return port


def _server_pid(root: Path) -> int:
    return int(json.loads((root / "etviz-state" / "server.json").read_text())["pid"])


async def test_the_last_window_to_close_stops_the_shared_server(tmp_path: Path) -> None:
    first_script = tmp_path / "workspace" / "first.py"
    second_script = tmp_path / "workspace" / "second.py"
    first_script.parent.mkdir(parents=True)
    first_script.write_text(export_script(1))
    second_script.write_text(export_script(2))
    async with lsp_session(tmp_path, trusted=True) as first:
        port = _port((await first.visualize(first_script)).url)
        explorer_pid = _server_pid(tmp_path)
        async with lsp_session(tmp_path, trusted=True) as second:
            assert _port((await second.visualize(second_script)).url) == port  # reused

            left = await first.close()  # the window that started the server
            assert [p.pid for p in left] == [explorer_pid], [p.cmdline()[:3] for p in left]
            again = await second.visualize(second_script)
            assert _port(again.url) == port and _server_pid(tmp_path) == explorer_pid

            assert await second.close() == []
        # the server carried the first window's marker: with the last window, it is gone
        assert await asyncio.to_thread(wait_until_gone, first.marker) == []
        assert not psutil.pid_exists(explorer_pid) or (
            psutil.Process(explorer_pid).status() == psutil.STATUS_ZOMBIE
        )


async def test_a_restored_window_shows_the_last_graph_at_once_then_the_fresh_one(
    tmp_path: Path,
) -> None:
    script = tmp_path / "workspace" / "restored.py"
    script.parent.mkdir(parents=True)
    script.write_text(export_script(1))
    async with lsp_session(tmp_path, trusted=True) as before:
        one_layer = sum(g.nodeCount for g in (await before.visualize(script)).graphs)
    script.write_text(export_script(3))  # edited while no window was open

    async with lsp_session(tmp_path, trusted=True) as after:
        answer = await after.client.workspace_execute_command_async(
            types.ExecuteCommandParams(
                command="etviz.server.visualize",
                arguments=[script.as_uri(), {"showLast": True}],
            )
        )
        assert answer["last"] is True and after.graph_ready == []  # before any run ended
        assert sum(g["nodeCount"] for g in answer["graphs"]) == one_layer
        fresh = await after.next_graph(script, 0, stale=False)
        assert sum(g.nodeCount for g in fresh.graphs) > one_layer
        assert _port(fresh.url) == _port(answer["url"])


# -- paths of every system in URIs (issue 29; this file is about editor windows, and these
# -- checks are about the paths those windows send) ------------------------------------


@pytest.mark.parametrize("name", ["My Models/export model.py", "modèles/экспорт 模型.py",
                                  "a%20b/#hash?.py"])
def test_uris_of_paths_with_spaces_and_non_ascii_round_trip(tmp_path: Path, name: str) -> None:
    from etviz_lsp.lsp.paths import path_of, uri_of

    path = tmp_path / name
    path.parent.mkdir(parents=True)
    path.write_text("")
    uri = uri_of(path)
    assert uri.startswith("file:///") and " " not in uri
    assert path_of(uri) == path.resolve()
    assert path_of(path.as_uri()) == path.resolve()  # as VS Code and pathlib spell it
    assert path_of(str(path)) == path.resolve()


def test_a_windows_uri_becomes_a_drive_path_and_a_foreign_path_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """pygls turns ``file:///c%3A/...`` (VS Code's spelling) into ``c:\\...`` on Windows;
    checked here by letting pygls think it runs there. A Windows path is no path on Linux."""
    from pygls import uris

    from etviz_lsp.lsp.paths import path_of

    monkeypatch.setattr(uris, "IS_WIN", True)
    spelled = uris.to_fs_path("file:///c%3A/Users/Zo%C3%AB/My%20Models/export.py")
    assert spelled == "c:\\Users\\Zoë\\My Models\\export.py"
    monkeypatch.setattr(uris, "IS_WIN", False)
    assert path_of("C:\\Users\\Zoë\\export.py") is None  # not absolute on this system
