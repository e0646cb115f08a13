// Which URL the graph panel's iframe loads. The server hands out http://127.0.0.1:PORT/...;
// in a remote window that address is the remote machine's, so vscode.env.asExternalUri may
// map it. Model Explorer's page uses an absolute `<base href="/">`, so it only works when
// served at the root of an origin: a path proxy such as code-server's /proxy/PORT/ renders a
// blank page (measured), while port forwarding (Remote-SSH, Codespaces, code-server with
// --proxy-domain) keeps the root and works.

export type ExternalUriMode = 'auto' | 'always' | 'never';

/** The origin part of a URL the server gave us, e.g. `http://127.0.0.1:8123/`. */
export function originRoot(url: string): string {
  const parsed = new URL(url);
  return `${parsed.protocol}//${parsed.host}/`;
}

export function originOf(url: string): string {
  return new URL(url).origin;
}

/** True when `external` serves the server at the root of its origin (forwarded port). */
export function mapsToRoot(external: string): boolean {
  return new URL(external).pathname === '/';
}

/**
 * `direct`: the server's URL. `externalRoot`: what asExternalUri made of direct's origin root
 * (undefined when it was not asked or failed).
 */
export function chooseFrameUrl(
  direct: string,
  externalRoot: string | undefined,
  mode: ExternalUriMode,
): string {
  if (mode === 'never' || externalRoot === undefined) {
    return direct;
  }
  if (mode === 'auto' && !mapsToRoot(externalRoot)) {
    return direct;
  }
  const from = new URL(direct);
  const base = externalRoot.endsWith('/') ? externalRoot : `${externalRoot}/`;
  return base + `${from.pathname}${from.search}${from.hash}`.replace(/^\//, '');
}
