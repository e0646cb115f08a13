"""Screenshot of ``etviz_lsp.visualize`` in a notebook: the graph inline under the cell.

    PYTHONPATH=. python docs/make_notebook_screenshot.py OUT.png [--node-modules DIR]

Runs a two-cell notebook (export the bundled ConvNet, then ``visualize`` it) in a real
IPython kernel (nbclient, this interpreter), with a private server state folder; exports
the executed notebook to HTML as Jupyter renders it (nbconvert's lab template), serves it
from http://localhost as JupyterLab would, screenshots it in headless Chromium
(tests/browser/check_inline_frame.mjs) once the inline Model Explorer has drawn, and stops the
server. Needs nbclient, ipykernel, nbconvert, Debian's chromium and
``playwright-core`` (npm) in ``--node-modules``.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import subprocess
import sys
import tempfile
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

HERE = Path(__file__).resolve().parent
CHECKER = HERE.parent / "tests" / "browser" / "check_inline_frame.mjs"
CELLS = [
    "import torch\nimport etviz_lsp\nfrom convnet import ConvNet, example_inputs\n\n"
    "program = torch.export.export(ConvNet(blocks=2).eval(), example_inputs())",
    'etviz_lsp.visualize(program, name="convnet", height=560)',
]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out", type=Path)
    parser.add_argument("--node-modules", type=Path,
                        default=HERE.parent / "tests" / "browser" / "node_modules")
    args = parser.parse_args()
    import nbformat
    from nbclient import NotebookClient
    from nbconvert import HTMLExporter

    with tempfile.TemporaryDirectory(prefix="etviz-notebook-") as tmp:
        work = Path(tmp)
        os.environ["ETVIZ_STATE_DIR"] = str(work / "state")
        os.environ["PYTHONPATH"] = os.pathsep.join([str(HERE.parent / "examples"),
                                                    str(HERE.parent)])
        spec = work / "jupyter" / "kernels" / "etviz-docs"
        spec.mkdir(parents=True)
        (spec / "kernel.json").write_text(json.dumps({
            "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": "Python 3", "language": "python",
        }))
        os.environ["JUPYTER_PATH"] = str(work / "jupyter")
        nb = nbformat.v4.new_notebook()
        nb.cells = [nbformat.v4.new_code_cell(source) for source in CELLS]
        from etviz_lsp.explorer import stop_server

        try:
            NotebookClient(nb, kernel_name="etviz-docs", timeout=300,
                           resources={"metadata": {"path": str(work)}}).execute()
            page = work / "notebook.html"
            body, _ = HTMLExporter(template_name="lab").from_notebook_node(nb)
            page.write_text(body)
            env = dict(os.environ, NODE_MODULES_DIR=str(args.node_modules.resolve()))
            # Served the way JupyterLab serves it (http://localhost:PORT), not as a file.
            handler = functools.partial(SimpleHTTPRequestHandler, directory=str(page.parent))
            with ThreadingHTTPServer(("127.0.0.1", 0), handler) as http:
                threading.Thread(target=http.serve_forever, daemon=True).start()
                notebook_url = f"http://localhost:{http.server_address[1]}/{page.name}"
                subprocess.run(
                    ["node", str(CHECKER), notebook_url,
                     str(args.out.resolve())],
                    check=True, env=env, timeout=300,
                )
                http.shutdown()
        finally:
            stop_server()


if __name__ == "__main__":
    main()
