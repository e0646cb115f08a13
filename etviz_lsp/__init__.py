"""etviz-lsp: torch.export / ExecuTorch programs as Model Explorer graphs in your editor."""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["visualize", "visualize_graph", "visualize_with_clusters"]


def __getattr__(name: str) -> Any:
    """``etviz_lsp.visualize`` without importing torch on ``import etviz_lsp``.

    The language server imports this package and must never pull in torch.
    """
    if name in __all__:
        from etviz_lsp import api

        return getattr(api, name)
    raise AttributeError(f"module 'etviz_lsp' has no attribute {name!r}")
