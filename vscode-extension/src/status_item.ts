// The status bar item: server state, node count of the graph shown, or the error; a click
// shows the graph panel.

import * as vscode from 'vscode';
import { type ServerPhase, type StatusModel, statusView } from './graph_state';
import type { GraphEvent } from './protocol';

export class StatusItem implements vscode.Disposable {
  private readonly item = vscode.window.createStatusBarItem('etviz.status', vscode.StatusBarAlignment.Left, 10);
  private model: StatusModel = { phase: 'starting', building: false };

  constructor(command: string) {
    this.item.name = 'etviz';
    this.item.command = command;
    this.render();
    this.item.show();
  }

  setPhase(phase: ServerPhase, problem?: string): void {
    this.model = { ...this.model, phase, problem };
    this.render();
  }

  setBuilding(building: boolean): void {
    this.model = { ...this.model, building };
    this.render();
  }

  setGraph(graph: GraphEvent): void {
    this.model = { ...this.model, graph };
    this.render();
  }

  dispose(): void {
    this.item.dispose();
  }

  private render(): void {
    const view = statusView(this.model);
    this.item.text = view.text;
    this.item.tooltip = view.tooltip;
    this.item.backgroundColor = view.error ? new vscode.ThemeColor('statusBarItem.errorBackground') : undefined;
  }
}
