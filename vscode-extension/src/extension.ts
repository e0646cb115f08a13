// Entry point: wires the server session, the graph panel, the status bar and the commands.
// The server's own command ids (etviz.server.*) are registered by vscode-languageclient;
// the ids registered here are the extension's.

import * as vscode from 'vscode';
import { defaultPair, stageLabel } from './compare';
import { ComparePanel } from './compare_panel';
import { eventWithFirstGraph } from './first_graph';
import { sameSource } from './graph_state';
import { GraphPanel, PANEL_VIEW_TYPE } from './graph_panel';
import { describeKinds, isVisualizable } from './input_kinds';
import { bundledServer } from './interpreter_check';
import type { GraphEvent } from './protocol';
import { Navigation } from './navigation';
import { profileMessage } from './profile';
import { onInterpreterSelected } from './python_extension';
import { type RunRequest, RunPicker } from './run_picker';
import { type CommandOutcome, ServerSession } from './server_session';
import { readSettings } from './settings';
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
  context.subscriptions.push(log, session, panel, status, navigation, compare);
  navigation.onCodeSelected((selection) => compare.selectFromCode(selection));

  const showOnStatus = async (shown: GraphEvent, explicit: boolean): Promise<void> => {
    const event = eventWithFirstGraph(shown, readSettings(vscode.workspace.workspaceFolders?.[0]?.uri).firstGraph);
    if (await panel.apply(event, explicit)) {
      status.setGraph(event);
    }
  };
  const report = async (outcome: CommandOutcome, explicit: boolean): Promise<void> => {
    if ('event' in outcome) {
      await showOnStatus(outcome.event, explicit);
    } else if ('error' in outcome) {
      panel.showError(outcome.error);
      // Untrusted: the server refused to run the script; the way out is trusting the folder.
      const fix = vscode.workspace.isTrusted ? 'Show Problems' : 'Manage Workspace Trust';
      const choice = await vscode.window.showErrorMessage(`etviz: ${outcome.error}`, fix, 'Show Logs');
      if (choice === 'Show Logs') {
        log.show();
      } else if (choice === 'Show Problems') {
        await vscode.commands.executeCommand('workbench.actions.view.problems');
      } else if (choice === 'Manage Workspace Trust') {
        await vscode.commands.executeCommand('workbench.trust.manage');
      }
    }
  };

  const visualize = async ({ uri, run }: RunRequest): Promise<void> => {
    // The server runs the file on disk: what the user sees in the editor must be there.
    const document = vscode.workspace.textDocuments.find((doc) => doc.uri.toString() === uri.toString());
    if (document?.isDirty) {
      await document.save();
    }
    panel.target(uri);
    await report(await session.visualize(uri, false, run), true);
  };

  session.onPhase(({ phase, problem }) => status.setPhase(phase, problem));
  session.onBusy((busy) => status.setBuilding(busy));
  session.onGraphEvent((event) => void showOnStatus(event, false));
  session.onGraphEvent((event) => {
    // A re-run of the file being compared: its correspondence changed with its graphs.
    const compared = compare.source;
    if (compared !== undefined && !event.inProgress && event.error === undefined && sameSource(compared, event.source)) {
      void session.compare(vscode.Uri.parse(compared)).then((answer) => {
        if (!('error' in answer)) {
          compare.update(answer);
        }
      });
    }
  });
  panel.onRestored((source) => void session.visualize(source, true, runs.rememberedRun(source)).then((outcome) => report(outcome, false)));

  context.subscriptions.push(
    vscode.commands.registerCommand('etviz.visualize', async (arg?: unknown) => {
      const uri = arg instanceof vscode.Uri ? arg : activeFile();
      const kinds = session.inputKinds();
      if (uri === undefined || !isVisualizable(uri.path, kinds)) {
        void vscode.window.showWarningMessage(`etviz: open ${describeKinds(kinds)} to visualize.`);
        return;
      }
      const request = await runs.forFile(uri);
      if (request !== undefined) {
        await visualize(request);
      }
    }),
    vscode.commands.registerCommand('etviz.visualizeWithConfiguration', async () => {
      const request = await runs.anyConfiguration(activeFile());
      if (request !== undefined) {
        await visualize(request);
      }
    }),
    vscode.commands.registerCommand('etviz.refresh', async () => {
      const source = panel.source ? vscode.Uri.parse(panel.source) : activeFile();
      await report(await session.refresh(source), false);
      panel.reloadFrame();
    }),
    vscode.commands.registerCommand('etviz.compareStages', async () => {
      const source = panel.source ? vscode.Uri.parse(panel.source) : activeFile();
      if (source === undefined) {
        void vscode.window.showWarningMessage('etviz: visualize an export script first, then compare its stages.');
        return;
      }
      const answer = await session.compare(source);
      if ('error' in answer) {
        void vscode.window.showErrorMessage(`etviz: ${answer.error}`);
        return;
      }
      const pair = await pickStages(answer.stages.map(stageLabel), defaultPair(answer.stages));
      if (pair !== undefined) {
        await compare.open(answer, pair[0], pair[1]);
      }
    }),
    vscode.commands.registerCommand('etviz.profile', async () => {
      const source = panel.source ? vscode.Uri.parse(panel.source) : activeFile();
      if (source === undefined || !isVisualizable(source.path, session.inputKinds())) {
        void vscode.window.showWarningMessage('etviz: open an export script that calls to_executorch(), then profile it.');
        return;
      }
      const document = vscode.workspace.textDocuments.find((doc) => doc.uri.toString() === source.toString());
      if (document?.isDirty) {
        await document.save();
      }
      panel.target(source);
      const answer = await session.profile(source);
      if ('error' in answer) {
        void vscode.window.showErrorMessage(`etviz: ${answer.error}`);
      } else if ('event' in answer) {
        await showOnStatus(answer.event, true);
        void vscode.window.showInformationMessage(profileMessage(source.path.split('/').pop() ?? '', answer));
      }
    }),
    vscode.commands.registerCommand('etviz.restartServer', () => session.restart()),
    vscode.commands.registerCommand('etviz.showLogs', () => log.show()),
    vscode.commands.registerCommand('etviz.showGraph', () => panel.reveal()),
    vscode.commands.registerCommand('etviz.showInGraph', () => navigation.showInGraph(vscode.window.activeTextEditor)),
    vscode.window.registerWebviewPanelSerializer(PANEL_VIEW_TYPE, {
      deserializeWebviewPanel: async (webviewPanel, state: unknown) => panel.restore(webviewPanel, state),
    }),
    vscode.workspace.onDidChangeConfiguration((change) => {
      if (change.affectsConfiguration('etviz.pythonPath')) {
        void session.ensureStarted(); // restarts only if the interpreter really changed
      } else if (change.affectsConfiguration('etviz.allowPickle') || change.affectsConfiguration('etviz.workerMode')) {
        void session.restart(); // never applied live: a new server with the new opt-in or mode
      } else if (['autoRefresh', 'timeout', 'port', 'numeric', 'profile', 'profileIterations'].some((key) => change.affectsConfiguration(`etviz.${key}`))) {
        void session.sendSettings(); // applied live by the running server
      }
    }),
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

/** Two stages from quick picks, the default pair offered first (Enter twice takes it). */
async function pickStages(labels: string[], [left, right]: [number, number]): Promise<[number, number] | undefined> {
  const pick = async (title: string, preferred: number, exclude: number): Promise<number | undefined> => {
    const order = [preferred, ...labels.keys()].filter((i, at, all) => i !== exclude && all.indexOf(i) === at);
    const items = order.map((i) => ({ label: labels[i], index: i }));
    const chosen = await vscode.window.showQuickPick(items, { title, placeHolder: title });
    return chosen?.index;
  };
  const first = await pick('etviz: left stage', left, -1);
  if (first === undefined) {
    return undefined;
  }
  const second = await pick('etviz: right stage', first === right ? left : right, first);
  return second === undefined ? undefined : [first, second];
}

/** The file in the active editor tab, including binary ones such as .pt2 or .pte (no text editor). */
function activeFile(): vscode.Uri | undefined {
  const editor = vscode.window.activeTextEditor;
  if (editor !== undefined) {
    return editor.document.uri;
  }
  const input = vscode.window.tabGroups.activeTabGroup.activeTab?.input;
  if (input instanceof vscode.TabInputText || input instanceof vscode.TabInputCustom) {
    return input.uri;
  }
  return undefined;
}
