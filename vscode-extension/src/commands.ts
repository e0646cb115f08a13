// The extension's own commands, one named handler each, and what their answers do on screen
// (panel, status bar, messages). The server's command ids (etviz.server.*) are registered
// by vscode-languageclient; `registerCommands` registers the extension's.

import * as vscode from 'vscode';
import { defaultPair, stageLabel } from './compare';
import type { ComparePanel } from './compare_panel';
import type { MemoryPanel } from './memory_panel';
import { eventWithFirstGraph } from './first_graph';
import type { GraphPanel } from './graph_panel';
import { describeKinds, isVisualizable } from './input_kinds';
import type { Navigation } from './navigation';
import { profileMessage } from './profile';
import type { GraphEvent } from './protocol';
import type { RunPicker, RunRequest } from './run_picker';
import type { CommandOutcome, ServerSession } from './server_session';
import { readSettings } from './settings';
import type { StatusItem } from './status_item';

/** What the commands work on: made once by `activate`. */
export interface Parts {
  readonly log: vscode.LogOutputChannel;
  readonly session: ServerSession;
  readonly panel: GraphPanel;
  readonly status: StatusItem;
  readonly navigation: Navigation;
  readonly runs: RunPicker;
  readonly compare: ComparePanel;
  readonly memory: MemoryPanel;
}

/** Every command of the extension (the ids `package.json` contributes). */
export function registerCommands(parts: Parts): vscode.Disposable[] {
  const { session, log, panel, navigation } = parts;
  return [
    vscode.commands.registerCommand('etviz.visualize', (arg?: unknown) => visualizeFile(parts, arg)),
    vscode.commands.registerCommand('etviz.visualizeWithConfiguration', () => visualizeWithConfiguration(parts)),
    vscode.commands.registerCommand('etviz.refresh', () => refreshGraph(parts)),
    vscode.commands.registerCommand('etviz.compareStages', () => compareStages(parts)),
    vscode.commands.registerCommand('etviz.profile', () => profileOnThisMachine(parts)),
    vscode.commands.registerCommand('etviz.showMemoryTimeline', () => showMemoryTimeline(parts)),
    vscode.commands.registerCommand('etviz.restartServer', () => session.restart()),
    vscode.commands.registerCommand('etviz.showLogs', () => log.show()),
    vscode.commands.registerCommand('etviz.showGraph', () => panel.reveal()),
    vscode.commands.registerCommand('etviz.showInGraph', () => navigation.showInGraph(vscode.window.activeTextEditor)),
  ];
}

/** A graph event in the panel (on the graph `etviz.firstGraph` names) and the status bar. */
export async function showGraph({ panel, status }: Parts, shown: GraphEvent, explicit: boolean): Promise<void> {
  const event = eventWithFirstGraph(shown, readSettings(vscode.workspace.workspaceFolders?.[0]?.uri).firstGraph);
  if (await panel.apply(event, explicit)) {
    status.setGraph(event);
  }
}

/** A visualize or refresh answer: the graph shown, or the error in the panel and a message. */
export async function report(parts: Parts, outcome: CommandOutcome, explicit: boolean): Promise<void> {
  if ('event' in outcome) {
    await showGraph(parts, outcome.event, explicit);
  } else if ('error' in outcome) {
    parts.panel.showError(outcome.error);
    // Untrusted: the server refused to run the script; the way out is trusting the folder.
    const fix = vscode.workspace.isTrusted ? 'Show Problems' : 'Manage Workspace Trust';
    const choice = await vscode.window.showErrorMessage(`etviz: ${outcome.error}`, fix, 'Show Logs');
    if (choice === 'Show Logs') {
      parts.log.show();
    } else if (choice === 'Show Problems') {
      await vscode.commands.executeCommand('workbench.actions.view.problems');
    } else if (choice === 'Manage Workspace Trust') {
      await vscode.commands.executeCommand('workbench.trust.manage');
    }
  }
}

/** "Visualize ExportedProgram": the file clicked or open, with the run configuration it takes. */
async function visualizeFile(parts: Parts, arg?: unknown): Promise<void> {
  const uri = arg instanceof vscode.Uri ? arg : activeFile();
  const kinds = parts.session.inputKinds();
  if (uri === undefined || !isVisualizable(uri.path, kinds)) {
    void vscode.window.showWarningMessage(`etviz: open ${describeKinds(kinds)} to visualize.`);
    return;
  }
  const request = await parts.runs.forFile(uri);
  if (request !== undefined) {
    await visualize(parts, request);
  }
}

/** "Visualize with Configuration...": any launch configuration, whatever file is open. */
async function visualizeWithConfiguration(parts: Parts): Promise<void> {
  const request = await parts.runs.anyConfiguration(activeFile());
  if (request !== undefined) {
    await visualize(parts, request);
  }
}

async function visualize(parts: Parts, { uri, run }: RunRequest): Promise<void> {
  await saveIfDirty(uri);
  parts.panel.target(uri);
  await report(parts, await parts.session.visualize(uri, false, run), true);
}

/** "Refresh Graph": the panel's file (else the open one) run again. */
async function refreshGraph(parts: Parts): Promise<void> {
  const source = panelOrActiveFile(parts.panel);
  await report(parts, await parts.session.refresh(source), false);
  parts.panel.reloadFrame();
}

/** "Show Memory Timeline": the memory plan of the graph in the panel, its bars selecting nodes. */
async function showMemoryTimeline({ panel, memory }: Parts): Promise<void> {
  const shown = panel.shown;
  if (shown === undefined || shown.memorySvg === undefined || shown.memorySvg === '') {
    void vscode.window.showWarningMessage(
      'etviz: no memory timeline: visualize a .pte or an export script that calls to_executorch() first.',
    );
    return;
  }
  await memory.open(shown.memorySvg, shown.source);
}

/** "Compare Stages": two stages of the panel's file, picked, side by side. */
async function compareStages({ session, compare, panel }: Parts): Promise<void> {
  const source = panelOrActiveFile(panel);
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
}

/** "Profile on This Machine": the file's ExecuTorch program run here, its latency on the graph. */
async function profileOnThisMachine(parts: Parts): Promise<void> {
  const source = panelOrActiveFile(parts.panel);
  if (source === undefined || !isVisualizable(source.path, parts.session.inputKinds())) {
    void vscode.window.showWarningMessage('etviz: open an export script that calls to_executorch(), then profile it.');
    return;
  }
  await saveIfDirty(source);
  parts.panel.target(source);
  const answer = await parts.session.profile(source);
  if ('error' in answer) {
    void vscode.window.showErrorMessage(`etviz: ${answer.error}`);
  } else if ('event' in answer) {
    await showGraph(parts, answer.event, true);
    void vscode.window.showInformationMessage(profileMessage(source.path.split('/').pop() ?? '', answer));
  }
}

/** The server runs the file on disk: what the user sees in the editor must be there. */
async function saveIfDirty(uri: vscode.Uri): Promise<void> {
  const document = vscode.workspace.textDocuments.find((doc) => doc.uri.toString() === uri.toString());
  if (document?.isDirty) {
    await document.save();
  }
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

function panelOrActiveFile(panel: GraphPanel): vscode.Uri | undefined {
  return panel.source ? vscode.Uri.parse(panel.source) : activeFile();
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
