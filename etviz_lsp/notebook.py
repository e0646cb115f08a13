"""Inline graphs in notebooks (Jupyter / IPython kernels: JupyterLab, VS Code notebooks).

In a kernel, ``visualize`` returns an :class:`InlineGraph`: still the URL (a ``str``, as
outside notebooks), and rendered under the cell as an iframe of the shared, guarded
server at that token URL. The server runs where the kernel runs and listens on
127.0.0.1 only, so the browser showing the notebook must reach that address (a local
kernel; a remote one through a forwarded port of the same number).

IPython is never imported here: a kernel has already imported it, so when it is not in
``sys.modules`` there is no kernel.
"""

from __future__ import annotations

import html
import sys

DEFAULT_HEIGHT = 600  # pixels: Model Explorer's toolbar plus a readable graph


def in_ipython_kernel() -> bool:
    """A Jupyter kernel's shell (it has a ``kernel``); a terminal IPython cannot show HTML."""
    ipython = sys.modules.get("IPython")
    get_ipython = getattr(ipython, "get_ipython", None)
    shell = get_ipython() if callable(get_ipython) else None
    return getattr(shell, "kernel", None) is not None


class InlineGraph(str):
    """The graph's URL; notebooks render it as an iframe ``height`` pixels high."""

    height: int

    def __new__(cls, url: str, height: int = DEFAULT_HEIGHT) -> InlineGraph:
        if not isinstance(height, int) or isinstance(height, bool) or height <= 0:
            raise ValueError(f"height must be a positive number of pixels, got {height!r}")
        graph = super().__new__(cls, url)
        graph.height = height
        return graph

    def _repr_html_(self) -> str:
        src = html.escape(str(self), quote=True)
        return (
            f'<iframe class="etviz-graph" src="{src}" width="100%" height="{self.height}" '
            'style="border: 1px solid #ccc" title="etviz: Model Explorer"></iframe>'
            f'<div><a href="{src}" target="_blank" rel="noopener">open in a new tab</a></div>'
        )
