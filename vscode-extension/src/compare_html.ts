// The compare panel's HTML (issue 18): two Model Explorer frames side by side, one stage
// each, with the stage named above it. Its script forwards each frame's node selections to
// the extension (which side, which node) and posts the selections the extension asks for
// into the frame they are for. Pure string building, unit tested like webview_html.

import { contentSecurityPolicy, escapeHtml, pageHead, scriptJson } from './webview_html';

export interface CompareSide {
  title: string; // what the header says: the stage and its graph
  url: string;
}

export function buildCompareHtml(sides: [CompareSide, CompareSide], frameOrigin: string, nonce: string): string {
  const csp = contentSecurityPolicy(nonce, frameOrigin);
  const pane = (side: CompareSide, index: number): string =>
    `<section class="pane"><header id="title${index}">${escapeHtml(side.title)}</header>` +
    `<iframe id="frame${index}" name="etviz-compare-${index}" title="${escapeHtml(side.title)}" src="${escapeHtml(side.url)}"></iframe></section>`;
  return `${pageHead(csp, 'etviz compare')}
<style nonce="${nonce}">
  html, body { margin: 0; padding: 0; width: 100%; height: 100%; overflow: hidden; }
  body { display: flex; flex-direction: row; }
  .pane { flex: 1; display: flex; flex-direction: column; min-width: 0; }
  .pane + .pane { border-left: 2px solid var(--vscode-panel-border, #444); }
  header { padding: 2px 8px; font-family: var(--vscode-font-family); color: var(--vscode-foreground);
    white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
  iframe { flex: 1; width: 100%; border: 0; background: #fff; }
</style>
</head>
<body>
${pane(sides[0], 0)}${pane(sides[1], 1)}
<script nonce="${nonce}">
(function () {
  const vscode = acquireVsCodeApi();
  const frames = [document.getElementById('frame0'), document.getElementById('frame1')];
  const frameOrigin = ${scriptJson(frameOrigin)};
  window.addEventListener('message', function (event) {
    const message = event.data;
    if (!message || typeof message !== 'object') {
      return;
    }
    const side = frames.findIndex(function (frame) { return event.source === frame.contentWindow; });
    if (side >= 0) {
      // Only Model Explorer's own page may say what the user selected.
      if (event.origin === frameOrigin && message.cmd === 'model-explorer-node-selected' &&
          typeof message.nodeId === 'string' && message.nodeId !== '') {
        vscode.postMessage({ type: 'nodeSelected', side: side, nodeId: message.nodeId });
      }
      return;
    }
    if (message.type === 'selectNode' && (message.side === 0 || message.side === 1) &&
        typeof message.nodeId === 'string' && frames[message.side].contentWindow) {
      frames[message.side].contentWindow.postMessage(
        { cmd: 'model-explorer-select-node-by-node-id', nodeId: message.nodeId }, frameOrigin);
    }
  });
})();
</script>
</body>
</html>`;
}
