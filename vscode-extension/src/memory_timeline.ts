// The memory timeline page (issue 28): the SVG the server wrote beside the graph
// (`m.memory.svg`, one bar per planned tensor carrying `data-node-id` / `data-graph-id`)
// shown inline in a webview; its script tells the extension which bar was clicked, and the
// extension selects that node in Model Explorer (the graph panel, as navigation does).
// Pure string building and message checks, unit tested like compare_html.

import { contentSecurityPolicy, pageHead } from './webview_html';

/** A bar the user clicked: the node that made its tensor, in which graph. */
export interface BarTarget {
  nodeId: string;
  graphId: string;
}

/**
 * The SVG as it goes into the page: no XML prolog or doctype (invalid inside HTML), no
 * script or event handler (ours never has one; the page's policy would block them anyway),
 * its own `<style>` given the page's nonce so the policy lets it apply.
 */
export function inlineSvg(svg: string, nonce: string): string {
  return svg
    .replace(/<\?xml[\s\S]*?\?>/g, '')
    .replace(/<!DOCTYPE[\s\S]*?>/gi, '')
    .replace(/<script[\s\S]*?<\/script\s*>/gi, '')
    .replace(/\son[a-z]+\s*=\s*("[^"]*"|'[^']*')/gi, '')
    .replace(/<style(\s[^>]*)?>/gi, `<style nonce="${nonce}">`)
    .trim();
}

/** What a message from the page says was clicked, if it is a bar click at all. */
export function barClicked(message: unknown): BarTarget | undefined {
  const { type, nodeId, graphId } = (message ?? {}) as { type?: unknown; nodeId?: unknown; graphId?: unknown };
  if (type !== 'barClicked' || typeof nodeId !== 'string' || nodeId === '' || typeof graphId !== 'string') {
    return undefined;
  }
  return { nodeId, graphId };
}

/** The status bar note after a click on a bar. */
export function barNote(target: BarTarget, selected: boolean): string {
  return selected
    ? `etviz: selected ${target.nodeId} in ${target.graphId}`
    : `etviz: ${target.nodeId} is in graph ${target.graphId}, which the graph panel does not show`;
}

export function buildMemoryHtml(svg: string, title: string, nonce: string): string {
  const csp = contentSecurityPolicy(nonce, undefined);
  return `${pageHead(csp, title)}
<style nonce="${nonce}">
  body { margin: 0; padding: 8px; background: #fff; overflow: auto; }
  [data-node-id] { cursor: pointer; }
</style>
</head>
<body>
${inlineSvg(svg, nonce)}
<script nonce="${nonce}">
(function () {
  const vscode = acquireVsCodeApi();
  document.addEventListener('click', function (event) {
    const bar = event.target && event.target.closest ? event.target.closest('[data-node-id]') : null;
    if (!bar) {
      return;
    }
    vscode.postMessage({
      type: 'barClicked',
      nodeId: bar.getAttribute('data-node-id') || '',
      graphId: bar.getAttribute('data-graph-id') || '',
    });
  });
})();
</script>
</body>
</html>`;
}
