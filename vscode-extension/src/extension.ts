// Entry point: makes the server session, the graph panel, the status bar and the compare
// panel, and wires them: commands (their handlers live in commands.ts), the panel
// serializer, and what follows settings, trust and interpreter changes.

import * as vscode from 'vscode';
import { type Parts, registerCommands, report, showGraph } from './commands';
import { ComparePanel } from './compare_panel';
import { sameSource } from './graph_state';
import { GraphPanel, PANEL_VIEW_TYPE } from './graph_panel';
import { bundledServer } from './interpreter_check';
import type { GraphEvent } from './protocol';
import { MemoryPanel } from './memory_panel';
import { Navigation } from './navigation';
import { onInterpreterSelected } from './python_extension';
import { RunPicker } from './run_picker';
import { ServerSession } from './server_session';
import { StatusItem } from './status_item';

let activeSession: ServerSession | undefined;

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  const log = vscode.window.createOutputChannel('etviz', { log: true });
  const version = String((context.extension.packageJSON as { version?: unknown }).version);
  const session = new ServerSession(log, bundledServer(context.extensionPath, version), context.globalStorageUri);
  activeSession = session;
  const panel = new GraphPanel(log);
  const status = new StatusItem('etviz.showGraph');
  const navigation = new Navigation(session, panel, log);
  const runs = new RunPicker(context.workspaceState, log);
  const compare = new ComparePanel(log);
  const memory = new MemoryPanel(panel, log);
  const parts: Parts = { log, session, panel, status, navigation, runs, compare, memory };
  context.subscriptions.push(log, session, panel, status, navigation, compare, memory);
  navigation.onCodeSelected((selection) => compare.selectFromCode(selection));

  session.onPhase(({ phase, problem }) => status.setPhase(phase, problem));
  session.onBusy((busy) => status.setBuilding(busy));
  session.onGraphEvent((event) => void showGraph(parts, event, false));
  session.onGraphEvent((event) => compareAgain(parts, event));
  panel.onRestored((source) => void session.visualize(source, true, runs.rememberedRun(source)).then((outcome) => report(parts, outcome, false)));

  context.subscriptions.push(
    ...registerCommands(parts),
    vscode.window.registerWebviewPanelSerializer(PANEL_VIEW_TYPE, {
      deserializeWebviewPanel: async (webviewPanel, state: unknown) => panel.restore(webviewPanel, state),
    }),
    vscode.workspace.onDidChangeConfiguration((change) => applySettings(session, change)),
    // Trust changes what the server may do (run scripts, unpickle .pt2) and which
    // etviz.pythonPath applies: a new server with the new state.
    vscode.workspace.onDidGrantWorkspaceTrust(() => void session.restart()),
  );

  const interpreterWatch = await onInterpreterSelected(() => void session.ensureStarted());
  if (interpreterWatch !== undefined) {
    context.subscriptions.push(interpreterWatch);
  }
  void session.ensureStarted();
}

/** Waits for the server's shutdown, so no python process outlives the window. */
export async function deactivate(): Promise<void> {
  await activeSession?.stop();
}

/** A re-run of the file being compared: its correspondence changed with its graphs. */
function compareAgain({ session, compare }: Parts, event: GraphEvent): void {
  const compared = compare.source;
  if (compared !== undefined && !event.inProgress && event.error === undefined && sameSource(compared, event.source)) {
    void session.compare(vscode.Uri.parse(compared)).then((answer) => {
      if (!('error' in answer)) {
        compare.update(answer);
      }
    });
  }
}

function applySettings(session: ServerSession, change: vscode.ConfigurationChangeEvent): void {
  if (change.affectsConfiguration('etviz.pythonPath')) {
    void session.ensureStarted(); // restarts only if the interpreter really changed
  } else if (change.affectsConfiguration('etviz.allowPickle') || change.affectsConfiguration('etviz.workerMode')) {
    void session.restart(); // never applied live: a new server with the new opt-in or mode
  } else if (['autoRefresh', 'timeout', 'port', 'numeric', 'notDelegatedDiagnostics', 'profile', 'profileIterations', 'profileNumericGap'].some((key) => change.affectsConfiguration(`etviz.${key}`))) {
    void session.sendSettings(); // applied live by the running server
  }
}
