"""The server's command ids (the extension's ``protocol.ts`` lists the same ones;
vscode-languageclient registers them as VS Code commands itself), and the error a command
fails with."""

from pygls.exceptions import JsonRpcException

VISUALIZE = "etviz.server.visualize"
REFRESH = "etviz.server.refresh"
STOP = "etviz.server.stop"
NODE_AT = "etviz.server.nodeAt"
SOURCE_OF = "etviz.server.sourceOf"
SHOW_IN_GRAPH = "etviz.server.showInGraph"
COMPARE = "etviz.server.compare"  # issue 18: stages and their correspondence
PROFILE = "etviz.server.profile"  # issue 17: profile on this machine (lsp/profile.py)

REQUEST_FAILED = -32803  # LSP's RequestFailed: the request was valid, the work failed


class RequestFailed(JsonRpcException):
    """A command that was valid but whose work failed (LSP's RequestFailed)."""

    CODE = REQUEST_FAILED
