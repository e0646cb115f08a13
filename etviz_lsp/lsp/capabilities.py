"""What the server tells the editor at ``initialize`` beyond pygls's own capabilities.

``capabilities.experimental.etviz.inputKinds``: the file kinds it opens (``graph.inputs``'s
table: suffix, whether it runs a script, whether it needs trust, whether it may unpickle),
so the extension's checks follow the server instead of a list of its own.
``capabilities.experimental.etviz.server``: its version and where its code lives
(``versions.identity``), for the extension's version check.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from lsprotocol import types
from pygls.protocol import LanguageServerProtocol, lsp_method

from etviz_lsp.graph import inputs
from etviz_lsp.lsp import versions


def experimental() -> dict[str, Any]:
    return {"etviz": {"inputKinds": inputs.client_info(), "server": versions.identity()}}


class EtvizProtocol(LanguageServerProtocol):
    @lsp_method(types.INITIALIZE)
    def lsp_initialize(
        self, params: types.InitializeParams
    ) -> Generator[Any, Any, types.InitializeResult]:
        # pygls builds the capabilities after the user's initialize handler: add ours after.
        result: types.InitializeResult = yield from super().lsp_initialize(params)
        result.capabilities.experimental = experimental()
        return result
