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
import secrets
import sys

DEFAULT_HEIGHT = 600  # pixels: Model Explorer's toolbar plus a readable graph

# Model Explorer's page needs localStorage. A browser blocking third-party storage (a
# private window; headless Chromium, measured) denies it to a frame of another site, and
# the page then draws nothing: a notebook at http://localhost:8888 framing 127.0.0.1 is
# cross-site. When the notebook itself is on a loopback name, the frame is pointed at that
# same name (the guard accepts 127.0.0.1, localhost and [::1]), which makes it same-site.
# Frontends that run no output scripts keep the 127.0.0.1 address.
_SAME_SITE_SCRIPT = (
    "<script>(function(){var f=document.getElementById('%s');var h=location.hostname;"
    "if(!f||['localhost','127.0.0.1','[::1]'].indexOf(h)<0)return;"
    "var u=new URL(f.src);if(u.hostname!==h){u.hostname=h;f.src=u.href;}})();</script>"
)


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
        frame_id = f"etviz-graph-{secrets.token_hex(4)}"
        return (
            f'<iframe id="{frame_id}" class="etviz-graph" src="{src}" width="100%" '
            f'height="{self.height}" style="border: 1px solid #ccc" '
            'title="etviz: Model Explorer"></iframe>'
            + _SAME_SITE_SCRIPT % frame_id
            + f'<div><a href="{src}" target="_blank" rel="noopener">open in a new tab</a></div>'
        )
