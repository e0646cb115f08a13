// The extension and the server it started check each other's version at `initialize`
// (issue 27). The server is the one this extension carries, started with its code first on
// the path; an older etviz_lsp imported ahead of it anyway (a sitecustomize or .pth file of
// the user's environment, a development setup) would speak an older protocol and fail
// oddly. Pure: the caller passes the initialize answer and shows the one message.

export interface ServerIdentity {
  version: string | undefined; // serverInfo.version (pygls sends it; any etviz-lsp has)
  location: string | undefined; // capabilities.experimental.etviz.server.location (newer servers)
}

export function serverIdentity(initializeResult: unknown): ServerIdentity {
  const result = (initializeResult ?? {}) as {
    serverInfo?: { version?: unknown };
    capabilities?: { experimental?: { etviz?: { server?: { location?: unknown } } } };
  };
  const version = result.serverInfo?.version;
  const location = result.capabilities?.experimental?.etviz?.server?.location;
  return {
    version: typeof version === 'string' ? version : undefined,
    location: typeof location === 'string' ? location : undefined,
  };
}

/** The one message when the server is another build than this extension, else undefined. */
export function versionMismatch(extensionVersion: string, server: ServerIdentity, python: string): string | undefined {
  if (server.version === extensionVersion) {
    return undefined;
  }
  const what = server.version === undefined ? 'a server that does not say its version' : `etviz-lsp ${server.version}`;
  const where = server.location === undefined ? '' : ` (imported from ${server.location})`;
  return (
    `${python} started ${what}${where}, not the etviz-lsp ${extensionVersion} this extension carries: ` +
    'something in that environment imports another etviz_lsp first (a sitecustomize or .pth file, PYTHONPATH). ' +
    'Remove it, or choose another interpreter'
  );
}
