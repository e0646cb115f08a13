// "etviz: Compare Stages" (issue 18): a second webview panel with two Model Explorer frames,
// one stage each. A node selected in one frame selects (and reveals) its counterpart in the
// other, through Model Explorer's postMessage selection API, as navigation does; a line of
// code selected in the graph (Show in Graph, follow-cursor, lenses) selects in both.

import * as vscode from 'vscode';
import { type CompareAnswer, type CompareStage, counterparts, stageLabel, syncNote } from './compare';
import { buildCompareHtml } from './compare_html';
import { originOf } from './frame_url';
import { resolveFrameUrl } from './graph_panel';
import { sameSource } from './graph_state';
import type { NodesAtLine } from './protocol';
import { EchoFilter } from './selection';
import { makeNonce } from './webview_html';
import { createInlinePanel } from './webview_panels';

export const COMPARE_VIEW_TYPE = 'etviz.compare';
const NOTE_MS = 10000;

export class ComparePanel implements vscode.Disposable {
  private panel: vscode.WebviewPanel | undefined;
  private answer: CompareAnswer | undefined;
  private sides: [CompareStage, CompareStage] | undefined;
  private readonly echoes: [EchoFilter, EchoFilter] = [new EchoFilter(), new EchoFilter()];

  constructor(private readonly log: vscode.LogOutputChannel) {}

  /** Shows stages `left` and `right` of `answer` side by side (the panel is reused). */
  async open(answer: CompareAnswer, left: number, right: number): Promise<void> {
    const sides: [CompareStage, CompareStage] = [answer.stages[left], answer.stages[right]];
    const urls = await Promise.all(sides.map((stage) => this.frameUrl(stage.url ?? '')));
    if (urls.some((url) => url === '')) {
      void vscode.window.showWarningMessage('etviz: the graph server is not known yet; visualize the file first.');
      return;
    }
    this.answer = answer;
    this.sides = sides;
    if (this.panel === undefined) {
      this.panel = createInlinePanel(COMPARE_VIEW_TYPE, 'Compare', 'active');
      this.panel.webview.onDidReceiveMessage((message: unknown) => this.received(message));
      this.panel.onDidDispose(() => {
        this.panel = undefined;
        this.sides = undefined;
      });
    }
    this.panel.title = `Compare: ${sides[0].stage} | ${sides[1].stage}`;
    const titled = sides.map((stage, i) => ({ title: stageLabel(stage), url: urls[i] }));
    this.panel.webview.html = buildCompareHtml([titled[0], titled[1]], originOf(urls[0]), makeNonce());
    this.panel.reveal();
    this.log.info(`compare: ${sides[0].graphId} | ${sides[1].graphId}`);
  }

  /** The file whose stages are compared (while the panel is open). */
  get source(): string | undefined {
    return this.panel !== undefined ? this.answer?.source : undefined;
  }

  /**
   * A re-run rewrote the stages: Model Explorer reloads both frames itself (same URLs);
   * the correspondence is taken anew so selections keep following the new graphs.
   */
  update(answer: CompareAnswer): void {
    const sides = this.sides;
    if (sides === undefined) {
      return;
    }
    const left = answer.stages.find((stage) => stage.graphId === sides[0].graphId);
    const right = answer.stages.find((stage) => stage.graphId === sides[1].graphId);
    if (left !== undefined && right !== undefined) {
      this.answer = answer;
      this.sides = [left, right];
    }
  }

  /** Code to graph: the nodes a line made, selected in both frames (counterparts where needed). */
  selectFromCode(selection: NodesAtLine): void {
    const answer = this.answer;
    const sides = this.sides;
    const first = selection.nodeIds[0];
    if (this.panel === undefined || answer === undefined || sides === undefined || first === undefined) {
      return;
    }
    if (selection.source !== undefined && !sameSource(selection.source, answer.source)) {
      return;
    }
    const origin = answer.stages.find((stage) => stage.graphId === selection.graphId);
    ([0, 1] as const).forEach((side) => {
      const stage = sides[side];
      const nodeId = stage.graphId === selection.graphId ? first : origin ? counterparts(origin, first, stage)[0] : undefined;
      if (nodeId !== undefined) {
        this.select(side, nodeId);
      }
    });
  }

  dispose(): void {
    this.panel?.dispose();
  }

  private received(message: unknown): void {
    const { type, side, nodeId } = (message ?? {}) as { type?: unknown; side?: unknown; nodeId?: unknown };
    const sides = this.sides;
    if (type !== 'nodeSelected' || (side !== 0 && side !== 1) || typeof nodeId !== 'string' || sides === undefined) {
      return;
    }
    if (this.echoes[side].isEcho(nodeId, Date.now())) {
      return; // the frame announcing the selection we made in it
    }
    const other = side === 0 ? 1 : 0;
    const found = counterparts(sides[side], nodeId, sides[other]);
    this.log.info(`compare: ${nodeId} in ${sides[side].graphId} -> ${found.join(', ') || 'none'}`);
    vscode.window.setStatusBarMessage(syncNote(nodeId, sides[side], found, sides[other]), NOTE_MS);
    if (found[0] !== undefined) {
      this.select(other, found[0]);
    }
  }

  private select(side: 0 | 1, nodeId: string): void {
    this.echoes[side].expect(nodeId, Date.now());
    void this.panel?.webview.postMessage({ type: 'selectNode', side, nodeId });
  }

  private async frameUrl(direct: string): Promise<string> {
    return direct === '' ? direct : resolveFrameUrl(direct, this.log);
  }
}
