"""Notebooks (issue 19): ``visualize`` in a real IPython kernel renders the graph under the
cell, an iframe of the shared, guarded server; running the cell again updates that same
graph in the same server; no browser tab opens.

The kernel is a real ipykernel started by nbclient from this interpreter (a kernel spec
of our own, so no other Python installed on the machine is picked), in a notebook folder
of its own, with the test's private server state folder.
"""

from __future__ import annotations

import functools
import html
import http.client
import json
import os
import re
import subprocess
import sys
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import nbformat
import pytest
from nbclient import NotebookClient

from etviz_lsp import explorer, notebook
from etviz_lsp.explorer.publish import cache_path_for
from tests.explorer_fixtures import REPO_ROOT, explorer_home, server_processes  # noqa: F401
from tests.test_explorer_api import shown_graph

KERNEL = "etviz-test-kernel"
SETUP_CELL = f"""
import sys
sys.path.insert(0, {str(REPO_ROOT / "examples")!r})
import torch
import etviz_lsp
from convnet import ConvNet, example_inputs
"""
SHOW_CELL = """
program = torch.export.export(ConvNet(blocks={blocks}).eval(), example_inputs())
etviz_lsp.visualize(program, name="notebook_convnet", height=480)
"""


def test_outside_a_kernel_nothing_renders_inline() -> None:
    """pytest is no kernel (IPython may even be imported): visualize keeps returning a
    plain URL and opening a tab as before."""
    assert notebook.in_ipython_kernel() is False


def test_inline_frame_markup_is_escaped_and_its_height_checked() -> None:
    url = 'http://127.0.0.1:1/?etviz_token=a"b&data=%7B%7D'
    graph = notebook.InlineGraph(url, height=321)
    assert graph == url and isinstance(graph, str)
    markup = graph._repr_html_()
    assert 'src="http://127.0.0.1:1/?etviz_token=a&quot;b&amp;data=%7B%7D"' in markup
    assert 'height="321"' in markup and "<script>" in markup
    for bad in (0, -5, 1.5, True, "600"):
        with pytest.raises(ValueError, match="height"):
            notebook.InlineGraph(url, height=bad)  # type: ignore[arg-type]


@pytest.fixture
def kernel_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A kernel spec running this interpreter; $BROWSER records any tab opened."""
    spec = tmp_path / "jupyter" / "kernels" / KERNEL
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "etviz test", "language": "python",
    }))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    opened = tmp_path / "browser-opened.txt"
    browser = tmp_path / "browser.sh"
    browser.write_text(f'#!/bin/sh\necho "$1" >> "{opened}"\n')
    browser.chmod(0o755)
    monkeypatch.setenv("BROWSER", str(browser))
    return opened


def _iframe_url(cell: nbformat.NotebookNode) -> tuple[str, str]:
    """The src of the iframe in the cell's rich output, and the whole HTML."""
    (result,) = [out for out in cell.outputs if out.output_type == "execute_result"]
    markup = result.data["text/html"]
    match = re.search(r'<iframe[^>]* src="([^"]+)"', markup)
    assert match, markup
    return html.unescape(match.group(1)), markup


def _drawn_in_a_browser(markup: str, folder: Path) -> dict[str, str]:
    """The cell's output served from http://localhost (as JupyterLab serves a notebook) in
    headless Chromium: what the inline frame drew."""
    (folder / "cell.html").write_text(f"<!doctype html><html><body>{markup}</body></html>")
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(folder))
    with ThreadingHTTPServer(("127.0.0.1", 0), handler) as page_server:
        threading.Thread(target=page_server.serve_forever, daemon=True).start()
        try:
            run = subprocess.run(
                ["node", str(REPO_ROOT / "tests" / "browser" / "check_inline_frame.mjs"),
                 f"http://localhost:{page_server.server_address[1]}/cell.html",
                 str(REPO_ROOT / "build" / "artifacts" / "notebook-inline-frame.png")],
                capture_output=True, text=True, timeout=300, check=False,
                env={**os.environ, "NODE_MODULES_DIR": str(REPO_ROOT / "tests" / "browser"
                                                           / "node_modules")},
            )
        finally:
            page_server.shutdown()
    assert run.returncode == 0, run.stderr[-2000:]
    return json.loads(run.stdout.strip().splitlines()[-1])


def _status(url: str) -> int:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    conn.request("GET", f"{parts.path}?{parts.query}" if parts.query else parts.path)
    return conn.getresponse().status


@pytest.mark.slow
def test_visualize_in_a_kernel_renders_inline_and_a_rerun_updates_the_same_graph(
    tmp_path: Path, kernel_env: Path, explorer_home: Path  # noqa: F811
) -> None:
    folder = tmp_path / "notebook"
    folder.mkdir()
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(SETUP_CELL),
                nbformat.v4.new_code_cell(SHOW_CELL.format(blocks=2))]
    client = NotebookClient(nb, kernel_name=KERNEL, timeout=300,
                            resources={"metadata": {"path": str(folder)}})
    with client.setup_kernel():
        client.execute_cell(nb.cells[0], 0)
        client.execute_cell(nb.cells[1], 1)
        url, markup = _iframe_url(nb.cells[1])
        server = explorer.current_server()
        assert server is not None and url.startswith(server.base_url + "/?etviz_token=")
        assert 'height="480"' in markup
        first = shown_graph(url)  # the graph JSON, read through the guard with the token
        assert first["graphs"][0]["id"] == "notebook_convnet (exported)"
        assert _status(url) == 200  # the page itself, at the token URL
        assert _status(url.replace(f"etviz_token={server.token}", "etviz_token=wrong")) == 403
        # A browser draws it: the frame took the page's own loopback name (same site).
        (REPO_ROOT / "build" / "artifacts").mkdir(parents=True, exist_ok=True)
        drawn = _drawn_in_a_browser(markup, tmp_path)
        assert drawn["opNodeCount"] == str(len(first["graphs"][0]["nodes"])), drawn
        assert drawn["frameUrl"].startswith(f"http://localhost:{server.port}/"), drawn

        # The user edits the cell and runs it again: same URL, the new graph, same server.
        nb.cells[1].source = SHOW_CELL.format(blocks=3)
        client.execute_cell(nb.cells[1], 1)
        again, _ = _iframe_url(nb.cells[1])
        second = shown_graph(again)
        assert again == url
        assert len(second["graphs"][0]["nodes"]) > len(first["graphs"][0]["nodes"])
        assert explorer.current_server() == server
        assert [p.pid for p in server_processes(explorer_home)] == [server.pid]

    cache = cache_path_for(folder / "notebook_convnet")
    assert list(cache.parent.glob("notebook_convnet-*.json")) == [cache], "one graph, updated"
    assert not kernel_env.exists(), f"a browser tab was opened: {kernel_env.read_text()}"
