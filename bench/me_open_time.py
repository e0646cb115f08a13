"""How long Model Explorer takes to show each graph of a collection in headless Chromium.

    PYTHONPATH=. .venv/bin/python bench/me_open_time.py X.json [--graph ID ...]
        [--deadline 300] [--screenshots DIR]

``X.json`` is a graph collection written by etviz (``etviz-lsp --once ... -o X.json``).
One Model Explorer server is started through ``etviz_lsp.explorer`` (as ``--serve`` does,
bound to 127.0.0.1) in a private state folder, so it is this run's own and never the
user's shared one; it is stopped at the end. Each graph then opens in a fresh headless
Chromium (``me_open_time.mjs``, playwright-core from ``tests/browser/node_modules``,
``scripts/setup-browser.sh``) at the URL ``--serve`` gives, with that graph selected
(``uiState.selectedGraphId``).

The time is from navigation until the graph is on screen: the first frame after the
renderer's first instanced WebGL draw of the laid-out graph (see the driver). Beside it,
in seconds since navigation: the collection's JSON arrived (``JSON in``), the layout
worker handed back the laid-out top level (``laid out``), the renderer issued its first
draw (``first draw``: its main-thread work done). From there to ``on screen`` is the
software GPU (SwiftShader, as in any headless Chromium without a GPU) executing the draws.
A graph not drawn within the deadline shows ``> deadline``. The shape columns come from
the JSON alone (``me_graph_shape.py``): ``top-level edge span`` predicts the cost.

Importable (with ``bench/`` on ``sys.path``): ``open_times(json_path, graphs=None,
deadline=300, screenshots=None)`` returns one ``OpenTime`` per graph (``seconds`` is None
past the deadline; ``shape`` holds the counts).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from me_graph_shape import GraphShape, shape_of  # noqa: E402

REPO_ROOT = HERE.parent
DRIVER = HERE / "me_open_time.mjs"
NODE_MODULES = REPO_ROOT / "tests" / "browser" / "node_modules"
DRIVER_SLACK = 60.0  # seconds past the deadline before the driver itself is killed
PROGRESS = 8  # the layout worker's message kinds (0.1.34 web app): a step is done
LAID_OUT = 1  # the laid-out graph


@dataclass(slots=True)
class OpenTime:
    """One graph's row: its shape and, in seconds since navigation, when it was shown."""

    shape: GraphShape
    deadline: float
    seconds: float | None = None  # on screen; None: not within the deadline
    fetched: float | None = None  # the collection JSON had arrived
    laid_out: float | None = None  # the layout worker returned the graph
    first_draw: float | None = None  # the renderer's first draw call of it (main thread done)
    slowest_step: str = ""  # the layout worker's longest step, with its seconds
    op_node_count: int | None = None  # what the page's graph info says: the right graph
    screenshot: str | None = None
    error: str = ""
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def shown(self) -> str:
        if self.seconds is not None:
            return f"{self.seconds:.1f}"
        return self.error or f"> {self.deadline:g}"


def read_collection(json_path: Path) -> tuple[str, list[dict[str, Any]]]:
    """The collection's label and graphs; a one-line error naming the file otherwise."""
    try:
        data = json.loads(json_path.read_text())
    except (OSError, ValueError) as exc:
        raise SystemExit(f"{json_path}: cannot read a graph collection: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("graphs"), list):
        raise SystemExit(f"{json_path}: not a graph collection ({{label, graphs}})")
    return str(data.get("label", "")), data["graphs"]


@contextlib.contextmanager
def own_server() -> Iterator[Path]:
    """A private ``ETVIZ_STATE_DIR`` for this run: the server started there is ours alone,
    stopped (with its process group) and its folder removed when the block ends."""
    from etviz_lsp.explorer import stop_server

    before = os.environ.get("ETVIZ_STATE_DIR")
    folder = Path(tempfile.mkdtemp(prefix="etviz-me-open-"))
    os.environ["ETVIZ_STATE_DIR"] = str(folder)
    try:
        yield folder
    finally:
        stop_server()
        if before is None:
            os.environ.pop("ETVIZ_STATE_DIR", None)
        else:
            os.environ["ETVIZ_STATE_DIR"] = before
        shutil.rmtree(folder, ignore_errors=True)


def run_driver(url: str, deadline: float, shot: Path | None) -> dict[str, Any]:
    """One Chromium, one page: the driver's JSON report (its whole process group is ended)."""
    command = ["node", str(DRIVER), url, str(int(deadline * 1000))]
    if shot is not None:
        command.append(str(shot))
    env = dict(os.environ, NODE_MODULES_DIR=str(NODE_MODULES))
    driver = subprocess.Popen(
        command, stdout=subprocess.PIPE, text=True, env=env, start_new_session=True
    )
    try:
        out, _ = driver.communicate(timeout=2 * deadline + DRIVER_SLACK)
    except subprocess.TimeoutExpired:
        return {"error": "browser driver hung"}
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(driver.pid, signal.SIGKILL)  # Chromium's helpers left behind, if any
        driver.wait()
    lines = out.strip().splitlines()
    return json.loads(lines[-1]) if lines else {"error": "browser driver printed nothing"}


def read_report(row: OpenTime, report: dict[str, Any]) -> OpenTime:
    """Fill a row from the driver's report (ms since navigation -> s)."""
    row.raw = report
    probe = report.get("probe") or {}
    messages = probe.get("worker", [])
    if report.get("drawn") and probe.get("frameAt") is not None:
        row.seconds = probe["frameAt"] / 1000
    fetches = probe.get("fetches") or []
    if fetches:
        row.fetched = max(f["end"] for f in fetches) / 1000
    done = [m["t"] for m in messages if m.get("type") == LAID_OUT]
    row.laid_out = done[0] / 1000 if done else None
    if probe.get("firstDrawAt") is not None:
        row.first_draw = probe["firstDrawAt"] / 1000
    row.slowest_step = slowest_step(messages)
    row.op_node_count = report.get("opNodeCount")
    row.screenshot = report.get("screenshot")
    if report.get("unsupported"):
        row.error = "Unsupported JSON format"
    elif report.get("error"):
        row.error = str(report["error"])[:80]
    return row


def slowest_step(messages: list[dict[str, Any]]) -> str:
    """The layout worker posts a step's label when the step is done (read from the 0.1.34
    worker: ``Laying out root layer`` is dagre's layout of the top level), so a step lasts
    from the message before it."""
    spans = [
        (message["t"] - before["t"], message["label"])
        for before, message in zip(messages, messages[1:], strict=False)
        if message.get("type") == PROGRESS
    ]
    if not spans:
        return ""
    took, label = max(spans)
    return f"{label} {took / 1000:.1f}"


def open_times(
    json_path: Path | str,
    graphs: Sequence[str] | None = None,
    deadline: float = 300,
    screenshots: Path | None = None,
) -> list[OpenTime]:
    """Open each graph (or those named) of an etviz collection; one row per graph."""
    from etviz_lsp.explorer.show import show
    from etviz_lsp.explorer.urls import ui_state

    check_tools()
    json_path = Path(json_path).resolve()
    label, all_graphs = read_collection(json_path)
    chosen = [g for g in all_graphs if graphs is None or g.get("id") in graphs]
    missing = set(graphs or ()) - {g.get("id") for g in chosen}
    if missing:
        raise SystemExit(f"{json_path}: no graph {sorted(missing)[0]!r}")
    if screenshots is not None:
        screenshots.mkdir(parents=True, exist_ok=True)
    rows = []
    with own_server():
        for index, graph in enumerate(chosen):
            shape = shape_of(graph)
            state = ui_state(shape.graph_id, collection_label=label)
            url = show(json_path, open_browser=False, ui_state=state, timeout=120).url
            shot = screenshots / f"{json_path.stem}-{index}.png" if screenshots else None
            report = run_driver(url, deadline, shot)
            rows.append(read_report(OpenTime(shape, deadline), report))
    return rows


COLUMNS = ("graph", "nodes", "edges", "top-level items", "top-level edge span", "JSON in s",
           "laid out s", "first draw s", "on screen s")  # fmt: skip


def _seconds(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}"


def table(rows: Sequence[OpenTime]) -> str:
    """A Markdown table, one row per graph; times in seconds since navigation."""
    lines = ["| " + " | ".join(COLUMNS) + " |", "|---" + "|---:" * (len(COLUMNS) - 1) + "|"]
    for row in rows:
        s = row.shape
        cells = [s.graph_id, f"{s.nodes:,}", f"{s.edges:,}", f"{s.top_level:,}", f"{s.span:,}",
                 _seconds(row.fetched), _seconds(row.laid_out), _seconds(row.first_draw),
                 row.shown]  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def load_line() -> str:
    """Other jobs on the machine slow Chromium's software rendering: say how busy it was."""
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return f"{os.cpu_count()} cores, load average {load}"


def check_tools() -> None:
    """The driver's tools, or the one line saying how to get them."""
    chromium = Path("/usr/bin/chromium")
    if shutil.which("node") is None or not chromium.exists() or not NODE_MODULES.is_dir():
        raise SystemExit(
            f"needs node, {chromium} and playwright-core in {NODE_MODULES}: "
            "run scripts/setup-browser.sh"
        )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("json", type=Path, help="a graph collection written by etviz")
    parser.add_argument("--graph", action="append", help="a graph id (repeatable); default all")
    parser.add_argument("--deadline", type=float, default=300, help="seconds per graph")
    parser.add_argument("--screenshots", type=Path, help="save a picture of each graph here")
    args = parser.parse_args(argv)
    rows = open_times(args.json, args.graph, args.deadline, args.screenshots)
    print(load_line())
    print(table(rows))
    for row in rows:
        s = row.shape
        if s.inner_layer:
            print(f"{s.graph_id}: largest edge span inside a layer {s.inner_span:,} "
                  f"({s.inner_layer}: paid when it is expanded)")  # fmt: skip
        if row.op_node_count not in (None, s.nodes):
            print(f"note: {s.graph_id}: the page shows {row.op_node_count} op nodes")
    return 0 if all(row.seconds is not None for row in rows) else 1


if __name__ == "__main__":
    sys.path.insert(0, str(REPO_ROOT))
    sys.exit(main())
