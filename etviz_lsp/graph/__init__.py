"""Conversion: programs in, Model Explorer graph collections out.

Knows torch.fx, ExecuTorch program types and the ``.pt2`` archive; knows nothing of
servers, editors or watched files.
"""

# Every backend module registers itself (its colour among them) before any graph is built.
from etviz_lsp.graph import backends  # noqa: F401
