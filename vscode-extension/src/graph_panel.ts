// The one graph panel: created on first use, then reused and revealed; restored after a
// window reload by the serializer. It shows the Model Explorer page in an iframe and
// follows graph events for the file it shows.

import * as path from 'node:path';
import * as vscode from 'vscode';
import { chooseFrameUrl, originOf, originRoot } from './frame_url';
import { type PanelAction, panelAction, sameSource } from './graph_state';
import { type GraphEvent, type NodesAtLine, shownGraphId } from './protocol';
import { EchoFilter, type SelectPlan, planSelection } from './selection';
import { readSettings } from './settings';
import { type PanelState, buildPanelHtml, makeNonce } from './webview_html';
import { createInlinePanel } from './webview_panels';

export const PANEL_VIEW_TYPE = 'etviz.graph';

export class GraphPanel implements vscode.Disposable {
  private panel: vscode.WebviewPanel | undefined;
  private state: PanelState = {};
  private last: GraphEvent | undefined;
  private frameOrigin: string | undefined;
  private readonly echoes = new EchoFilter();
  private readonly restoredEmitter = new vscode.EventEmitter<vscode.Uri>();
  private readonly nodeSelectedEmitter = new vscode.EventEmitter<string>();
  /** The user selected an op node in Model Explorer (its id). */
  readonly onNodeSelected = this.nodeSelectedEmitter.event;
  /** A panel came back after a window reload showing this file: rebuild it. */
  readonly onRestored = this.restoredEmitter.event;

  constructor(private readonly log: vscode.LogOutputChannel) {}

  /** The last graph event shown (graphs and URL of the file on screen). */
  get shown(): GraphEvent | undefined {
    return this.last;
  }

  /** The column the panel sits in, so files open beside it rather than under it. */
  get column(): vscode.ViewColumn | undefined {
    return this.panel?.viewColumn;
  }

  /** The graph of the collection the page opened on (its URL's uiState, else the first). */
  get shownGraph(): string | undefined {
    return this.state.url !== undefined && this.last !== undefined
      ? shownGraphId(this.state.url, this.last.graphs)
      : undefined;
  }

  /**
   * Selects (and reveals, layers expanded) the first of the nodes a line made: by message
   * when the page shows their graph, else by loading the server's URL for them.
   */
  async selectNodes(answer: NodesAtLine): Promise<SelectPlan> {
    const plan = planSelection(answer, this.shownGraph);
    if (plan.kind === 'none' || this.panel === undefined) {
      return plan;
    }
    this.panel.reveal(undefined, true);
    if (plan.kind === 'post') {
      this.echoes.expect(plan.nodeId, Date.now());
      void this.panel.webview.postMessage({ type: 'selectNode', nodeId: plan.nodeId });
    } else {
      const url = await this.frameUrl(plan.url);
      this.state.url = url;
      this.echoes.expect(plan.nodeId, Date.now(), 60000); // the page announces its restored selection
      void this.panel.webview.postMessage({ type: 'show', url, source: this.state.source });
    }
    return plan;
  }

  /** The file the panel shows (or is about to show). */
  get source(): string | undefined {
    return this.state.source;
  }

  get visible(): boolean {
    return this.panel !== undefined;
  }

  reveal(): void {
    if (this.panel === undefined) {
      this.attach(
        createInlinePanel(PANEL_VIEW_TYPE, 'Graph', 'beside'),
      );
      this.render();
    } else {
      this.panel.reveal(undefined, true);
    }
  }

  /** The user asked for this file: the panel follows it from now on. */
  target(source: vscode.Uri): void {
    if (this.state.source !== source.toString()) {
      this.state = { source: source.toString() };
      this.last = undefined;
    }
    this.reveal();
    this.setTitle();
  }

  restore(panel: vscode.WebviewPanel, saved: unknown): void {
    const state = (typeof saved === 'object' && saved !== null ? saved : {}) as PanelState;
    panel.webview.options = { enableScripts: true, localResourceRoots: [] };
    this.state = { source: state.source, url: state.url };
    this.attach(panel);
    this.frameOrigin = state.url ? originOf(state.url) : undefined;
    this.render();
    this.setTitle();
    if (state.source) {
      this.restoredEmitter.fire(vscode.Uri.parse(state.source));
    }
  }

  /** Applies a graph event; returns true when it concerns the file shown (or nothing is shown). */
  async apply(event: GraphEvent, explicit: boolean): Promise<boolean> {
    const concernsShown = explicit || this.state.source === undefined || sameSource(this.state.source, event.source);
    const action = panelAction(this.state.source, this.last, event, explicit);
    if (action.kind !== 'ignore') {
      this.last = event;
      this.state.source = event.source;
      if (this.panel === undefined && explicit) {
        this.reveal();
      }
      await this.perform(action);
      this.setTitle();
    }
    return concernsShown;
  }

  /** Loads the iframe's page again (the Refresh Graph command). */
  reloadFrame(): void {
    if (this.panel !== undefined && this.state.url !== undefined) {
      void this.panel.webview.postMessage({ type: 'show', url: this.state.url, source: this.state.source });
    }
  }

  showError(message: string): void {
    void this.panel?.webview.postMessage({ type: 'banner', text: message });
  }

  dispose(): void {
    this.panel?.dispose();
    this.restoredEmitter.dispose();
    this.nodeSelectedEmitter.dispose();
  }

  private attach(panel: vscode.WebviewPanel): void {
    this.panel = panel;
    panel.webview.onDidReceiveMessage((message: unknown) => {
      const nodeId = (message as { type?: unknown; nodeId?: unknown } | undefined)?.nodeId;
      if ((message as { type?: unknown })?.type === 'nodeSelected' && typeof nodeId === 'string' &&
          !this.echoes.isEcho(nodeId, Date.now())) {
        this.nodeSelectedEmitter.fire(nodeId);
      }
    });
    panel.onDidDispose(() => {
      if (this.panel === panel) {
        this.panel = undefined;
        this.frameOrigin = undefined;
        this.last = undefined;
      }
    });
  }

  private async perform(action: Exclude<PanelAction, { kind: 'ignore' }>): Promise<void> {
    if (action.kind === 'show' && (action.navigate || this.state.url === undefined)) {
      const url = await this.frameUrl(action.url);
      this.state.url = url;
      const origin = originOf(url);
      if (this.panel !== undefined && origin === this.frameOrigin) {
        // Same server: swap the iframe's URL in place (no flash of the whole webview).
        void this.panel.webview.postMessage({ type: 'show', url, source: this.state.source });
      } else {
        this.frameOrigin = origin; // the CSP names the origin, so a new one needs new HTML
        this.render();
      }
    }
    void this.panel?.webview.postMessage({ type: 'banner', text: action.banner });
  }

  private frameUrl(direct: string): Promise<string> {
    return resolveFrameUrl(direct, this.log);
  }

  private render(): void {
    if (this.panel === undefined) {
      return;
    }
    this.panel.webview.html = buildPanelHtml(this.state, this.frameOrigin, makeNonce());
  }

  private setTitle(): void {
    if (this.panel !== undefined && this.state.source !== undefined) {
      this.panel.title = `Graph: ${path.basename(vscode.Uri.parse(this.state.source).fsPath)}`;
    }
  }
}

/** The URL a frame loads for the server's `direct` one (`asExternalUri` when it maps to a root URL). */
export async function resolveFrameUrl(direct: string, log: vscode.LogOutputChannel): Promise<string> {
  const mode = readSettings().externalUri;
  if (mode === 'never') {
    return direct;
  }
  try {
    const external = await vscode.env.asExternalUri(vscode.Uri.parse(originRoot(direct)));
    const chosen = chooseFrameUrl(direct, external.toString(true), mode);
    if (chosen !== direct) {
      log.info(`graph panel uses ${originRoot(chosen)} for ${originRoot(direct)}`);
    }
    return chosen;
  } catch (error) {
    log.warn(`asExternalUri failed, using ${originRoot(direct)}: ${String(error)}`);
    return direct;
  }
}
