// Two-way navigation between the export script and the graph (issue 11): a node selected
// in Model Explorer reveals the user's line that made it; a line of code selects its op
// nodes in the graph. The mapping comes from the server (etviz.server.sourceOf / nodeAt).

import * as vscode from 'vscode';
import type { GraphPanel } from './graph_panel';
import { plural, sameSource } from './graph_state';
import { SERVER_COMMANDS, shownGraphId } from './protocol';
import type { ServerSession } from './server_session';

const FOLLOW_DELAY_MS = 300;
const NOTE_MS = 5000;

export class Navigation implements vscode.Disposable {
  private readonly highlight = vscode.window.createTextEditorDecorationType({
    isWholeLine: true,
    backgroundColor: new vscode.ThemeColor('editor.rangeHighlightBackground'),
  });
  private followTimer: NodeJS.Timeout | undefined;
  private readonly subscriptions: vscode.Disposable[] = [];

  constructor(
    private readonly session: ServerSession,
    private readonly panel: GraphPanel,
    private readonly log: vscode.LogOutputChannel,
  ) {
    this.subscriptions.push(
      panel.onNodeSelected((nodeId) => void this.revealSource(nodeId)),
      vscode.window.onDidChangeTextEditorSelection((change) => this.cursorMoved(change)),
    );
  }

  /** Graph to code: open the node's line in the editor column beside the panel. */
  async revealSource(nodeId: string): Promise<void> {
    const shown = this.panel.shown;
    const graphId = shown ? shownGraphId(shown.url, shown.graphs) : undefined;
    this.log.info(`graph: node ${nodeId} selected (graph ${graphId ?? '?'})`);
    if (graphId === undefined) {
      return;
    }
    if (!this.supported()) {
      vscode.window.setStatusBarMessage(
        `etviz: selected ${nodeId}; this etviz-lsp server cannot map nodes to lines yet`,
        NOTE_MS,
      );
      return;
    }
    const answer = await this.session.sourceOf(graphId, nodeId);
    if (answer !== undefined && 'error' in answer) {
      vscode.window.setStatusBarMessage(`etviz: ${answer.error}`, NOTE_MS);
      return;
    }
    if (answer === undefined) {
      vscode.window.setStatusBarMessage(`etviz: node ${nodeId} has no recorded source line`, NOTE_MS);
      return;
    }
    const range = new vscode.Range(answer.line, 0, answer.line, 0);
    const editor = await vscode.window.showTextDocument(vscode.Uri.parse(answer.uri), {
      viewColumn: this.editorColumn(answer.uri),
      selection: range,
      preserveFocus: false,
    });
    editor.revealRange(range, vscode.TextEditorRevealType.InCenterIfOutsideViewport);
    editor.setDecorations(this.highlight, [range]);
  }

  /** Code to graph: select the op nodes the cursor's line created. */
  async showInGraph(editor: vscode.TextEditor | undefined, quiet = false): Promise<void> {
    if (editor === undefined || this.panel.shown === undefined) {
      if (!quiet) {
        void vscode.window.showInformationMessage('etviz: visualize a script first, then put the cursor on one of its lines.');
      }
      return;
    }
    if (!this.supported()) {
      if (!quiet) {
        void vscode.window.showInformationMessage('etviz: this etviz-lsp server cannot map lines to nodes yet (update it).');
      }
      return;
    }
    const line = editor.selection.active.line;
    const answer = await this.session.nodesAt(editor.document.uri, line);
    if ('error' in answer) {
      vscode.window.setStatusBarMessage(`etviz: ${answer.error}`, NOTE_MS);
      return;
    }
    if (answer.nodeIds.length === 0) {
      if (!quiet) {
        vscode.window.setStatusBarMessage(`etviz: line ${line + 1} made no op in the graph`, NOTE_MS);
      }
      return;
    }
    this.panel.selectNode(answer.nodeIds[0]);
    if (answer.nodeIds.length > 1) {
      vscode.window.setStatusBarMessage(
        `etviz: line ${line + 1} made ${plural(answer.nodeIds.length, 'node')}; selected ${answer.nodeIds[0]}`,
        NOTE_MS,
      );
    }
  }

  dispose(): void {
    clearTimeout(this.followTimer);
    this.highlight.dispose();
    for (const subscription of this.subscriptions) {
      subscription.dispose();
    }
  }

  private supported(): boolean {
    return this.session.supports(SERVER_COMMANDS.nodeAt) && this.session.supports(SERVER_COMMANDS.sourceOf);
  }

  private cursorMoved(change: vscode.TextEditorSelectionChangeEvent): void {
    const follow = vscode.workspace.getConfiguration('etviz').get<boolean>('followCursor', false);
    if (!follow || change.kind === vscode.TextEditorSelectionChangeKind.Command || this.panel.shown === undefined) {
      return; // Command: our own reveal moved the cursor; do not bounce back
    }
    if (change.textEditor.document.uri.scheme !== 'file' || !change.textEditor.document.uri.path.endsWith('.py')) {
      return;
    }
    clearTimeout(this.followTimer);
    this.followTimer = setTimeout(() => void this.showInGraph(change.textEditor, true), FOLLOW_DELAY_MS);
  }

  /** The column of a visible editor on that file, else one that is not the panel's. */
  private editorColumn(uri: string): vscode.ViewColumn {
    const open = vscode.window.visibleTextEditors.find((e) => sameSource(e.document.uri.toString(), uri));
    if (open?.viewColumn !== undefined) {
      return open.viewColumn;
    }
    return this.panel.column === vscode.ViewColumn.One ? vscode.ViewColumn.Two : vscode.ViewColumn.One;
  }
}
