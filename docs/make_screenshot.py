"""Screenshot of the quantized, XNNPACK-lowered example with its partitions and clusters.

    PYTHONPATH=. python docs/make_screenshot.py OUT.png [--node-modules DIR] [--file F]

Builds the lowered graph (examples/quantize_and_lower.py), starts its own Model Explorer
on 127.0.0.1 (a free port, its own process group, stopped afterwards), opens the graph
with every cluster layer expanded in headless Chromium (make_screenshot.mjs) and saves
the picture. ``--file`` shows that file's first graph instead (a ``.pte``, ``.etrecord``,
``.pt2``: read as ``--once`` reads it; ``--graph`` another of its graphs, a delegate's
``forward/VulkanBackend #0``). Needs ``chromium`` (Debian) and ``playwright-core``
(npm) in ``--node-modules``.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "examples"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_healthy(port: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/check_health", timeout=2) as r:
                if b"model_explorer_ok" in r.read():
                    return
        except OSError:
            time.sleep(0.5)
    raise RuntimeError(f"Model Explorer did not answer on port {port}")


def graph_url(
    port: int, json_path: Path, graph: dict, label: str = "cumsum_net", select: str = ""
) -> str:
    layers = graph["groupNodeAttributes"]
    clusters = [ns for ns in layers if ns.rsplit("/", 1)[-1].startswith("cluster ")]
    data = {
        "models": [{"url": str(json_path), "adapterId": "builtin_json"}],
        "uiState": {
            "paneStates": [
                {
                    "deepestExpandedGroupNodeIds": [f"{ns}___group___" for ns in clusters],
                    "selectedNodeId": select,
                    "selectedGraphId": graph["id"],
                    "selectedCollectionLabel": label,
                    "widthFraction": 1,
                    "selected": True,
                }
            ]
        },
    }
    return f"http://127.0.0.1:{port}/?data={urllib.parse.quote(json.dumps(data))}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out", type=Path)
    default_modules = HERE.parent / "tests" / "browser" / "node_modules"
    parser.add_argument("--node-modules", type=Path, default=default_modules)
    parser.add_argument("--file", type=Path, help="a .pte / .etrecord / .pt2 to show instead")
    parser.add_argument("--select", default="", help="with --file: the node to select")
    parser.add_argument("--graph", default="", help="with --file: the graph id to show")
    args = parser.parse_args()

    from etviz_lsp.graph import convert, inputs

    if args.file is not None:
        collection = inputs.known_kind(args.file).read(args.file)
    else:
        import quantize_and_lower as example

        lowered = example.stages()["lowered"]
        collection = convert.from_programs([("cumsum_net", lowered)], label="cumsum_net")
    ids = [g.id for g in collection.graphs]
    index = ids.index(args.graph) if args.graph in ids else 0
    shoot(collection.to_json(), args.out, args.node_modules, args.select,
          small=args.file is not None, graph_index=index)


def shoot(
    collection: dict, out: Path, node_modules: Path, select: str = "", small: bool = False,
    graph_index: int = 0, expand: str = "", side_panel_px: int = 0,
) -> None:
    """``collection`` (its JSON) in a Model Explorer of its own, one graph shown (``select``
    selected) and saved to ``out`` by headless Chromium; ``small``: a 1400x1000 window;
    ``expand``: attribute keys (comma-separated) whose values are unfolded in the panel;
    ``side_panel_px``: the node info panel dragged to that width."""
    from etviz_lsp.graph.core.writer import write_json_atomic

    workdir = Path(tempfile.mkdtemp(prefix="etviz-shot-"))
    json_path = workdir / "lowered.json"
    write_json_atomic(json_path, collection)
    port = free_port()
    explorer = str(Path(sys.executable).parent / "model-explorer")
    server = subprocess.Popen(
        [explorer, "--host", "127.0.0.1", "--port", str(port), "--no_open_in_browser"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its own process group, stopped as a whole below
        cwd=workdir,
    )
    try:
        wait_healthy(port)
        graph = collection["graphs"][graph_index]
        url = graph_url(port, json_path, graph, collection["label"], select)
        env = dict(
            os.environ, NODE_MODULES_DIR=str(node_modules.resolve()), EXPAND_ATTRS=expand,
            SIDE_PANEL_PX=str(side_panel_px or ""),
        )
        command = ["node", str(HERE / "make_screenshot.mjs"), url, str(out.resolve())]
        if small:  # a small graph: a window of its size
            command += ["1400", "1000"]
        subprocess.run(command, check=True, env=env, timeout=300)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
