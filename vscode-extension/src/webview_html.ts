// The graph panel's HTML: a full-size iframe on the Model Explorer page, a banner for
// errors, and a small script that swaps the iframe's URL when the extension says so.
// Pure string building (no vscode import) so it can be unit tested.

import { randomBytes } from 'node:crypto';

export interface PanelState {
  source?: string; // file URI of the visualized script or .pt2
  url?: string; // the iframe's URL
}

export function makeNonce(): string {
  return randomBytes(18).toString('base64').replace(/[^A-Za-z0-9]/g, '');
}

export function escapeHtml(text: string): string {
  return text
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');
}

/** JSON that is safe inside a <script> element (no `</script>`, no `<!--`). */
export function scriptJson(value: unknown): string {
  return JSON.stringify(value)
    .replace(/</g, '\\u003c')
    .replace(/\u2028/g, '\\u2028')
    .replace(/\u2029/g, '\\u2029');
}

/** Only our nonce'd script and style run; frames only from the Model Explorer origin. */
export function contentSecurityPolicy(nonce: string, frameOrigin: string | undefined): string {
  return [
    "default-src 'none'",
    `frame-src ${frameOrigin ?? "'none'"}`,
    `script-src 'nonce-${nonce}'`,
    `style-src 'nonce-${nonce}'`,
  ].join('; ');
}

/** The start of every etviz page: doctype, charset, its content policy, viewport, title. */
export function pageHead(csp: string, title: string): string {
  return `${HEAD_START.replace('CSP', () => escapeHtml(csp))}<title>${escapeHtml(title)}</title>`;
}

const HEAD_START = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="CSP">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
`;

export function buildPanelHtml(state: PanelState, frameOrigin: string | undefined, nonce: string): string {
  const csp = contentSecurityPolicy(nonce, frameOrigin);
  const placeholder = state.url
    ? ''
    : '<p id="placeholder">Run <b>Visualize ExportedProgram</b> on an export script, a .pt2, a .pte or an .etrecord file.</p>';
  const frameSrc = state.url ? ` src="${escapeHtml(state.url)}"` : ' hidden';
  return `${pageHead(csp, 'etviz graph')}
${panelStyle(nonce)}
</head>
<body>
<div id="banner" role="alert"></div>
${placeholder}<iframe id="graph" title="Model Explorer"${frameSrc}></iframe>
${panelScript(state, frameOrigin, nonce)}
</body>
</html>`;
}

/** The page's layout: the banner over a frame that fills the panel. */
function panelStyle(nonce: string): string {
  return `<style nonce="${nonce}">
  html, body { margin: 0; padding: 0; width: 100%; height: 100%; overflow: hidden; }
  body { display: flex; flex-direction: column; }
  #banner { display: none; padding: 4px 8px; font-family: var(--vscode-font-family);
    color: var(--vscode-inputValidation-errorForeground, inherit);
    background: var(--vscode-inputValidation-errorBackground, #5a1d1d);
    border-bottom: 1px solid var(--vscode-inputValidation-errorBorder, #be1100); white-space: pre-wrap; }
  #banner.shown { display: block; }
  #graph[hidden] { display: none; }
  #graph { flex: 1; width: 100%; border: 0; background: #fff; }
  #placeholder { margin: 2em; font-family: var(--vscode-font-family); color: var(--vscode-foreground); }
</style>`;
}

/** The page's script: shows URLs and banners the extension posts, relays Model Explorer's
 * node selections to it and its selections to Model Explorer. A new URL goes into a new
 * iframe, not the old one's src: the page shown may be told to reload itself at the same
 * moment (the server's refresh_page after a run or a profile reaches it over its own
 * stream), and a reload the old document starts cancels the navigation to the new URL,
 * leaving the old graph on screen. A removed page reloads nothing. */
function panelScript(state: PanelState, frameOrigin: string | undefined, nonce: string): string {
  return `<script nonce="${nonce}">
(function () {
  const vscode = acquireVsCodeApi();
  let frame = document.getElementById('graph');
  const banner = document.getElementById('banner');
  // Only the Model Explorer origin this page was built for may talk to us (issue 11).
  const frameOrigin = ${scriptJson(frameOrigin ?? null)};
  let state = ${scriptJson(state)};
  vscode.setState(state);
  // A reload (rebuilt graph) restores Model Explorer's selection, which it announces again:
  // that repeat is not the user selecting, so it must not move the editor.
  let lastSelected = null;
  let reloaded = false;
  function onLoad() { reloaded = true; }
  frame.addEventListener('load', onLoad);
  function showUrl(url) { // in a new iframe (see above)
    const next = frame.cloneNode(false);
    Object.assign(next, { src: url, hidden: false });
    next.addEventListener('load', onLoad);
    frame.replaceWith(next);
    frame = next;
  }
  window.addEventListener('message', function (event) {
    const message = event.data;
    if (!message || typeof message !== 'object') {
      return;
    }
    if (event.source === frame.contentWindow) {
      // Model Explorer: the user selected an op node.
      if (frameOrigin !== null && event.origin === frameOrigin &&
          message.cmd === 'model-explorer-node-selected' &&
          typeof message.nodeId === 'string' && message.nodeId !== '') {
        const repeat = reloaded && message.nodeId === lastSelected;
        reloaded = false;
        lastSelected = message.nodeId;
        if (!repeat) {
          vscode.postMessage({ type: 'nodeSelected', nodeId: message.nodeId });
        }
      }
      return;
    }
    if (message.type === 'show' && typeof message.url === 'string') {
      showUrl(message.url); // loads even when the URL is unchanged
      const placeholder = document.getElementById('placeholder');
      if (placeholder) { placeholder.remove(); }
      state = { source: message.source, url: message.url };
      vscode.setState(state);
    } else if (message.type === 'banner') {
      banner.textContent = message.text || '';
      banner.classList.toggle('shown', Boolean(message.text));
    } else if (message.type === 'selectNode' && typeof message.nodeId === 'string' &&
               frameOrigin !== null && frame.contentWindow) {
      frame.contentWindow.postMessage(
        { cmd: 'model-explorer-select-node-by-node-id', nodeId: message.nodeId }, frameOrigin);
    }
  });
})();
</script>`;
}
