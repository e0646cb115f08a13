// "etviz: Show Memory Timeline" (issue 28): the memory timeline of the graph in the panel
// (the SVG its graphReady names, `memorySvg`) in a webview beside it. A click on a bar
// selects the node that made that tensor in the graph panel's Model Explorer page, as a line
// of code does (GraphPanel.selectNodes: by message in the graph on screen, else by URL).

import * as vscode from 'vscode';
import type { GraphPanel } from './graph_panel';
import { barClicked, barNote, buildMemoryHtml } from './memory_timeline';
import { makeNonce } from './webview_html';
import { createInlinePanel } from './webview_panels';

export const MEMORY_VIEW_TYPE = 'etviz.memory';
const NOTE_MS = 10000;

export class MemoryPanel implements vscode.Disposable {
  private panel: vscode.WebviewPanel | undefined;
  private source: string | undefined;

  constructor(
    private readonly graphs: GraphPanel,
    private readonly log: vscode.LogOutputChannel,
  ) {}

  /** Shows the timeline at `svgPath` (a file the server wrote) for the panel's `source`. */
  async open(svgPath: string, source: string): Promise<void> {
    let svg: string;
    try {
      svg = new TextDecoder().decode(await vscode.workspace.fs.readFile(vscode.Uri.file(svgPath)));
    } catch (error) {
      void vscode.window.showErrorMessage(`etviz: ${svgPath}: cannot read the memory timeline (${String(error)})`);
      return;
    }
    if (this.panel === undefined) {
      this.panel = createInlinePanel(MEMORY_VIEW_TYPE, 'Memory', 'active');
      this.panel.webview.onDidReceiveMessage((message: unknown) => void this.received(message));
      this.panel.onDidDispose(() => (this.panel = undefined));
    }
    this.source = source;
    const title = `Memory: ${vscode.Uri.parse(source).path.split('/').pop() ?? source}`;
    this.panel.title = title;
    this.panel.webview.html = buildMemoryHtml(svg, title, makeNonce());
    this.panel.reveal();
    this.log.info(`memory timeline: ${svgPath}`);
  }

  dispose(): void {
    this.panel?.dispose();
  }

  private async received(message: unknown): Promise<void> {
    const target = barClicked(message);
    if (target === undefined) {
      return;
    }
    this.graphs.reveal();
    const plan = await this.graphs.selectNodes({
      graphId: target.graphId,
      nodeIds: [target.nodeId],
      namespaces: [],
      source: this.source,
    });
    this.log.info(`memory timeline: bar of ${target.nodeId} (${target.graphId}) -> ${plan.kind}`);
    vscode.window.setStatusBarMessage(barNote(target, plan.kind !== 'none'), NOTE_MS);
  }
}
