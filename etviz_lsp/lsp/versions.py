"""The server and the editor extension that started it check each other's version.

The extension carries its server (``bundled/``) and starts it first on the path, so both
sides are one build; an older ``etviz_lsp`` imported ahead of it anyway (a
``sitecustomize`` or ``.pth`` file that imports one before the launcher runs, a
development setup) would speak an older protocol and fail oddly. So the server says what
it is at ``initialize`` (pygls's ``serverInfo.version``, and where its code lives in
``capabilities.experimental.etviz.server``), the extension says its version in
``initializationOptions.extensionVersion``; the extension shows the one message (it can
stop the server), the server logs its side.
"""

from __future__ import annotations

import os

import etviz_lsp


def identity() -> dict[str, str]:
    """What the server is: its version and the folder its code was imported from."""
    return {
        "version": etviz_lsp.__version__,
        "location": os.path.dirname(os.path.abspath(etviz_lsp.__file__)),
    }


def mismatch(extension_version: str | None) -> str | None:
    """One line when the extension that started this server is another version, else None
    (also when the client did not say: another editor, or an older extension)."""
    if not extension_version or extension_version == etviz_lsp.__version__:
        return None
    me = identity()
    return (f"etviz-lsp {me['version']} (imported from {me['location']}) was started by the "
            f"etviz extension {extension_version}: they belong to different builds")
