// Two-way navigation between the export script and the graph (issue 11): a node selected
// in Model Explorer reveals the user's line that made it; a line of code selects its op
// nodes in the graph. The mapping comes from the server (etviz.server.sourceOf / nodeAt).

import * as vscode from 'vscode';
import type { GraphPanel } from './graph_panel';
import { sameSource } from './graph_state';
import { isScript } from './input_kinds';
import { type NodesAtLine, SERVER_COMMANDS } from './protocol';
import { noSourceNote, selectionNote } from './selection';
import type { ServerSession } from './server_session';

const FOLLOW_DELAY_MS = 300;
const NOTE_MS = 10000;
const UNKNOWN_NODE = 'unknown node'; // the server's reason when the graph id given does not hold the node

export class Navigation implements vscode.Disposable {
  // Stays on the revealed line until the next node is selected (or the graph is closed).
  private readonly highlight = vscode.window.createTextEditorDecorationType({
    isWholeLine: true,
    backgroundColor: new vscode.ThemeColor('editor.rangeHighlightBackground'),
    borderColor: new vscode.ThemeColor('editor.findMatchBorder'),
    borderStyle: 'solid',
    borderWidth: '1px 0',
    overviewRulerColor: new vscode.ThemeColor('editor.findMatchHighlightBackground'),
    overviewRulerLane: vscode.OverviewRulerLane.Center,
  });
  private decorated: vscode.TextEditor | undefined;
  private followTimer: NodeJS.Timeout | undefined;
  private lastFollowed = '';
  private readonly subscriptions: vscode.Disposable[] = [];
  private readonly selectedEmitter = new vscode.EventEmitter<NodesAtLine>();
  /** Code to graph selected these nodes (the compare panel selects them too). */
  readonly onCodeSelected = this.selectedEmitter.event;

  constructor(
    private readonly session: ServerSession,
    private readonly panel: GraphPanel,
    private readonly log: vscode.LogOutputChannel,
  ) {
    this.subscriptions.push(
      panel.onNodeSelected((nodeId) => void this.revealSource(nodeId)),
      // A "Show in Graph" lens runs the server's command, which answers with this notification.
      session.onSelectNodes((selection) => void this.select(selection, undefined, false)),
      vscode.window.onDidChangeTextEditorSelection((change) => this.cursorMoved(change)),
    );
  }

  /** Graph to code: open the node's line in the editor column beside the panel, highlighted. */
  async revealSource(nodeId: string): Promise<void> {
    const shown = this.panel.shown;
    const graphId = this.panel.shownGraph;
    this.log.info(`graph: node ${nodeId} selected (graph ${graphId ?? '?'})`);
    if (shown === undefined) {
      return;
    }
    if (!this.supported()) {
      vscode.window.setStatusBarMessage(
        `etviz: selected ${nodeId}; this etviz-lsp server cannot map nodes to lines yet`,
        NOTE_MS,
      );
      return;
    }
    let answer = await this.session.sourceOf(graphId ?? '', nodeId, shown.source);
    if ('reason' in answer && answer.reason === UNKNOWN_NODE && graphId !== undefined) {
      // The user switched graphs inside Model Explorer (it does not tell us): let the server look.
      answer = await this.session.sourceOf('', nodeId, shown.source);
    }
    if ('error' in answer) {
      vscode.window.setStatusBarMessage(`etviz: ${answer.error}`, NOTE_MS);
      return;
    }
    if ('reason' in answer) {
      this.clearHighlight();
      vscode.window.setStatusBarMessage(noSourceNote(nodeId, answer.reason), NOTE_MS);
      return;
    }
    const range = new vscode.Range(answer.line, 0, answer.line, 0);
    const editor = await vscode.window.showTextDocument(vscode.Uri.parse(answer.uri), {
      viewColumn: this.editorColumn(answer.uri),
      selection: range,
      preserveFocus: false,
    });
    editor.revealRange(range, vscode.TextEditorRevealType.InCenterIfOutsideViewport);
    this.clearHighlight();
    editor.setDecorations(this.highlight, [range]);
    this.decorated = editor;
    this.lastFollowed = `${editor.document.uri.toString()}#${answer.line}`; // not a cursor move to follow
  }

  /** Code to graph (the etviz.showInGraph command): select the op nodes the cursor's line made. */
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
    // nodeAt, not the server's showInGraph: that one also notifies etviz/selectNodes, which
    // would select a second time.
    const answer = await this.session.nodesAt(editor.document.uri, line);
    if ('error' in answer) {
      vscode.window.setStatusBarMessage(`etviz: ${answer.error}`, NOTE_MS);
      return;
    }
    await this.select(answer, line, quiet, editor);
  }

  /** `editor`: where the line is (the command, follow-cursor); it gets the highlight. */
  private async select(answer: NodesAtLine, line: number | undefined, quiet: boolean, editor?: vscode.TextEditor): Promise<void> {
    if (answer.nodeIds.length === 0) {
      if (!quiet) {
        vscode.window.setStatusBarMessage(selectionNote(answer, line), NOTE_MS);
      }
      return;
    }
    this.selectedEmitter.fire(answer);
    const plan = await this.panel.selectNodes(answer);
    this.log.info(`select ${answer.nodeIds.length} node(s) of ${answer.graphId}: ${plan.kind}`);
    // The highlight marks the line behind the graph's selection: it moves with it.
    this.clearHighlight();
    if (plan.kind !== 'none' && editor !== undefined && line !== undefined) {
      editor.setDecorations(this.highlight, [new vscode.Range(line, 0, line, 0)]);
      this.decorated = editor;
    }
    if (plan.kind === 'none') {
      vscode.window.setStatusBarMessage(`etviz: ${plan.why}`, NOTE_MS);
    } else if (!quiet || answer.nodeIds.length > 1) {
      vscode.window.setStatusBarMessage(selectionNote(answer, line), NOTE_MS);
    }
  }

  dispose(): void {
    clearTimeout(this.followTimer);
    this.decorated = undefined;
    this.highlight.dispose();
    this.selectedEmitter.dispose();
    for (const subscription of this.subscriptions) {
      subscription.dispose();
    }
  }

  private clearHighlight(): void {
    this.decorated?.setDecorations(this.highlight, []);
    this.decorated = undefined;
  }

  private supported(): boolean {
    return this.session.supports(SERVER_COMMANDS.nodeAt) && this.session.supports(SERVER_COMMANDS.sourceOf);
  }

  private cursorMoved(change: vscode.TextEditorSelectionChangeEvent): void {
    const follow = vscode.workspace.getConfiguration('etviz').get<boolean>('followCursor', false);
    if (!follow || change.kind === vscode.TextEditorSelectionChangeKind.Command || this.panel.shown === undefined) {
      return; // Command: our own reveal moved the cursor; do not bounce back
    }
    const document = change.textEditor.document;
    if (document.uri.scheme !== 'file' || !isScript(document.uri.path, this.session.inputKinds())) {
      return;
    }
    const here = `${change.textEditor.document.uri.toString()}#${change.textEditor.selection.active.line}`;
    if (here === this.lastFollowed) {
      return; // moving along the same line: already selected
    }
    clearTimeout(this.followTimer);
    this.followTimer = setTimeout(() => {
      this.lastFollowed = here;
      void this.showInGraph(change.textEditor, true);
    }, FOLLOW_DELAY_MS);
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
