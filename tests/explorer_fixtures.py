"""Shared set-up of the explorer tests: an isolated state folder, real graphs, cleanup checks.

Imported by the ``test_explorer_*`` modules (fixtures are pulled in by name).
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
SERVE_MODULE = "etviz_lsp.explorer.serve"


@functools.cache
def convnet_graph(blocks: int = 2) -> dict[str, Any]:
    """The bundled example, exported for real and converted by the graph room."""
    sys.path.insert(0, str(REPO_ROOT / "examples"))
    try:
        import torch
        from convnet import ConvNet, example_inputs
    finally:
        sys.path.remove(str(REPO_ROOT / "examples"))
    from etviz_lsp.graph import convert

    program = torch.export.export(ConvNet(blocks=blocks).eval(), example_inputs())
    return convert.from_programs([("convnet", program)], label="convnet").to_json()


def write_graph(path: Path, blocks: int = 2) -> dict[str, Any]:
    """The graph written as etviz writes one (so the suite's structural check sees it)."""
    from etviz_lsp.graph.core.writer import write_json_atomic

    data = convnet_graph(blocks)
    write_json_atomic(path, data)
    return data


def server_processes(home: Path) -> list[psutil.Process]:
    """Our wrapper processes whose working folder is inside ``home`` (this test's servers)."""
    root = os.path.realpath(home)
    found = []
    for proc in psutil.process_iter(["cmdline", "cwd"]):
        cmdline = proc.info.get("cmdline") or []
        cwd = proc.info.get("cwd") or ""
        if SERVE_MODULE in cmdline and os.path.realpath(cwd).startswith(root):
            found.append(proc)
    return found


@pytest.fixture(scope="module")
def explorer_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A private ETVIZ_STATE_DIR for the module (subprocesses inherit it); on exit the
    server is stopped and no server process may be left."""
    home = tmp_path_factory.mktemp("etviz-state")
    previous = os.environ.get("ETVIZ_STATE_DIR")
    os.environ["ETVIZ_STATE_DIR"] = str(home)
    try:
        yield home
    finally:
        from etviz_lsp.explorer import stop_server

        stop_server()
        leftovers = server_processes(home)
        for proc in leftovers:
            proc.kill()
        if previous is None:
            os.environ.pop("ETVIZ_STATE_DIR", None)
        else:
            os.environ["ETVIZ_STATE_DIR"] = previous
        assert leftovers == [], f"server processes left running: {leftovers}"
