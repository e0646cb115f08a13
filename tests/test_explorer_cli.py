"""``etviz-lsp --once FILE --serve`` / ``--stop-server`` as a user runs them (subprocesses)."""

from __future__ import annotations

import http.client
import os
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import torch

from tests.explorer_fixtures import REPO_ROOT, explorer_home, server_processes  # noqa: F401

SHOWN = re.compile(
    r"^Model Explorer \(pid (\d+), port (\d+)\): (http://127\.0\.0\.1:\d+/\S+)$", re.M
)


@pytest.fixture(scope="module")
def convnet_pt2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    sys.path.insert(0, str(REPO_ROOT / "examples"))
    try:
        from convnet import ConvNet, example_inputs
    finally:
        sys.path.remove(str(REPO_ROOT / "examples"))
    path = tmp_path_factory.mktemp("work") / "convnet.pt2"
    torch.export.save(torch.export.export(ConvNet().eval(), example_inputs()), str(path))
    return path


def etviz(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "etviz_lsp", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **(env or {})},
    )


def fetch(url: str) -> int:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    conn.request("GET", f"{parts.path}?{parts.query}")
    status = conn.getresponse().status
    conn.close()
    return status


def test_serve_twice_reuses_one_server(convnet_pt2: Path, explorer_home: Path) -> None:  # noqa: F811
    first = etviz("--once", str(convnet_pt2), "--serve", "--no-browser")
    assert first.returncode == 0, first.stderr
    pid, port, url = SHOWN.search(first.stdout).groups()  # type: ignore[union-attr]
    assert fetch(url) == 200
    assert [p.pid for p in server_processes(explorer_home)] == [int(pid)]  # outlived the CLI

    second = etviz("--once", str(convnet_pt2), "--serve", "--no-browser")
    assert second.returncode == 0, second.stderr
    assert SHOWN.search(second.stdout).groups() == (pid, port, url)  # type: ignore[union-attr]
    assert [p.pid for p in server_processes(explorer_home)] == [int(pid)]


def test_serve_opens_a_browser_tab_unless_told_not_to(
    convnet_pt2: Path,
    tmp_path: Path,
    explorer_home: Path,  # noqa: F811
) -> None:
    opened = tmp_path / "opened.txt"
    recorder = tmp_path / "browser.py"
    recorder.write_text(f"import sys; open({str(opened)!r}, 'a').write(sys.argv[1] + '\\n')\n")
    browser = {"BROWSER": f"{sys.executable} {recorder} %s"}  # webbrowser honours $BROWSER

    quiet = etviz("--once", str(convnet_pt2), "--serve", "--no-browser", env=browser)
    assert quiet.returncode == 0 and not opened.exists()

    shown = etviz("--once", str(convnet_pt2), "--serve", env=browser)
    assert shown.returncode == 0, shown.stderr
    url = SHOWN.search(shown.stdout).group(3)  # type: ignore[union-attr]
    assert opened.read_text().split() == [url]


def test_serve_bad_input_is_one_line_and_starts_nothing(tmp_path: Path) -> None:
    home = tmp_path / "state"
    result = etviz(
        "--once", str(tmp_path / "missing.pt2"), "--serve", env={"ETVIZ_STATE_DIR": str(home)}
    )
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0 and "missing.pt2" in result.stderr
    assert server_processes(home) == [] and not (home / "server.json").exists()


def test_stop_server(convnet_pt2: Path, explorer_home: Path) -> None:  # noqa: F811
    started = etviz("--once", str(convnet_pt2), "--serve", "--no-browser")
    assert started.returncode == 0, started.stderr
    stopped = etviz("--stop-server")
    assert stopped.returncode == 0 and "stopped the Model Explorer server" in stopped.stdout
    assert server_processes(explorer_home) == []
    again = etviz("--stop-server")
    assert again.returncode == 0 and "no Model Explorer server was running" in again.stdout
