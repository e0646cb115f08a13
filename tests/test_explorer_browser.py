"""End to end in a real headless Chromium: the page a person opens from our URL.

Needs Debian's chromium and ``playwright-core`` in tests/browser (``scripts/setup-browser.sh``,
run by ``make test`` and ``.ci/run``). Missing pieces fail the test: they are not optional.
Screenshots go to build/artifacts/.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import IO, Any

import psutil
import pytest

from etviz_lsp import explorer
from tests.explorer_fixtures import REPO_ROOT, explorer_home, write_graph  # noqa: F401

BROWSER_DIR = REPO_ROOT / "tests" / "browser"
DRIVER = BROWSER_DIR / "check_graph.mjs"
ARTIFACTS = REPO_ROOT / "build" / "artifacts"
CHROMIUM = Path("/usr/bin/chromium")


def _require_browser_tools() -> str:
    node = shutil.which("node")
    missing = [
        what
        for what, ok in [
            ("node", node is not None),
            (str(CHROMIUM), CHROMIUM.exists()),
            (
                "tests/browser/node_modules/playwright-core",
                (BROWSER_DIR / "node_modules" / "playwright-core").is_dir(),
            ),
        ]
        if not ok
    ]
    if missing:
        pytest.fail(
            f"browser test tools missing: {', '.join(missing)}; run scripts/setup-browser.sh"
        )
    assert node is not None
    return node


def _next_report(stdout: IO[str]) -> dict[str, Any]:
    line = stdout.readline()
    assert line, "the browser driver ended without a report"
    report = json.loads(line)
    assert report["phase"] != "error", report["message"]
    return report


def _layer_label(graph: dict[str, Any]) -> str:
    """A top-level layer named after a module of the model, e.g. ``stem (Conv2d)``."""
    layers = graph["graphs"][0]["groupNodeAttributes"]
    return next(ns for ns in layers if ns and "/" not in ns and "(" in ns)


def test_graph_in_real_chromium(explorer_home: Path, tmp_path: Path) -> None:  # noqa: F811
    node = _require_browser_tools()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for old in ARTIFACTS.glob("explorer-e2e-*.png"):
        old.unlink()
    source = tmp_path / "convnet.json"
    graph = write_graph(source, blocks=2)
    nodes = len(graph["graphs"][0]["nodes"])
    server = explorer.ensure_server(timeout=90)
    url = explorer.graph_url(server, source)
    label = _layer_label(graph)

    driver = subprocess.Popen(
        [node, str(DRIVER), url, label, str(ARTIFACTS)],
        cwd=BROWSER_DIR,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert driver.stdin is not None and driver.stdout is not None
    try:
        webgl = _next_report(driver.stdout)
        assert webgl["unsupported"] is False  # Model Explorer's own app accepts our JSON
        assert webgl["selector"] == f"convnet {nodes} nodes"
        assert webgl["opNodeCount"] == str(nodes)
        assert webgl["failedRequests"] == []  # the guard let every request of the page pass

        svg = _next_report(driver.stdout)
        assert svg["layerLabelOnScreen"] is True, label
        assert svg["failedRequests"] == []

        assert _next_report(driver.stdout)["phase"] == "waiting"
        browsers = psutil.Process(driver.pid).children(recursive=True)
        assert browsers, "no Chromium under the driver"
        bigger = write_graph(source, blocks=3)
        more = len(bigger["graphs"][0]["nodes"])
        assert more > nodes
        explorer.graph_url(server, source)  # republishes to the same cache file
        explorer.refresh(server)
        driver.stdin.write(f"{more}\n")
        driver.stdin.flush()

        refreshed = _next_report(driver.stdout)
        assert refreshed["opNodeCount"] == str(more)
        assert refreshed["selector"] == f"convnet {more} nodes"
        assert refreshed["failedRequests"] == []
        assert driver.wait(timeout=60) == 0
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.wait()
    psutil.wait_procs(browsers, timeout=10)
    assert [p.pid for p in browsers if p.is_running() and p.status() != "zombie"] == []
    for name in ("1-graph", "2-layer-label", "3-refreshed"):
        shot = ARTIFACTS / f"explorer-e2e-{name}.png"
        assert shot.stat().st_size > 10_000, shot
