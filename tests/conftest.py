"""Shared test set-up: subprocesses import this checkout's etviz_lsp, not an installed copy."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable

_existing = os.environ.get("PYTHONPATH", "")
os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), _existing) if p)

# Every graph JSON written while the suite runs, in this process or any child it starts,
# is checked by the writer (unique ids, edges and subgraph links to what exists,
# well-formed namespaces: etviz_lsp/graph/core/check.py); what it finds lands in this file,
# and the suite fails at its end if the file holds anything.
# (Set once: a child that imports this module again keeps the suite's report file.)
if not os.environ.get("ETVIZ_CHECK_GRAPHS"):
    _fd, _report = tempfile.mkstemp(prefix="etviz-graph-check-", suffix=".txt")
    os.close(_fd)
    os.environ["ETVIZ_CHECK_GRAPHS"] = _report
GRAPH_CHECK_REPORT = Path(os.environ["ETVIZ_CHECK_GRAPHS"])


_malformed: list[str] = []


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    try:
        found = GRAPH_CHECK_REPORT.read_text(encoding="utf-8")
        GRAPH_CHECK_REPORT.unlink()
    except OSError:
        return
    _malformed.extend(line for line in found.splitlines() if line.strip())
    if _malformed:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _malformed:
        terminalreporter.section("malformed graphs written during the tests", red=True)
        for line in _malformed:
            terminalreporter.line(line)


# The worker's two modes (worker/warm_worker.py): "fork" (Linux's default) and "portable"
# (no fork: what macOS and Windows get). Tests of the worker's life cycle take this fixture
# and run in both; graph tests keep the default worker.
WORKER_MODES = ("fork", "portable")


@pytest.fixture(scope="module", params=WORKER_MODES)
def worker_mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)
