// Which run configuration a visualized file runs with: the workspace's Python launch
// configurations (launch.json, read through VS Code so comments and workspace-file launch
// sections work), a quick pick when several apply, the choice remembered per file.

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as vscode from 'vscode';
import { isScript } from './input_kinds';
import { type RunConfig, appliesTo, chooseRun, describeRun, moduleFiles, pythonLaunchConfigs, resolveRunConfig } from './launch_configs';

/** What to visualize: the file the graph is kept for, and the run (null: the file as is). */
export interface RunRequest {
  uri: vscode.Uri;
  run: RunConfig | null;
}

const REMEMBERED = 'etviz.runConfigurations'; // workspaceState: file URI -> name, or null

interface PickItem extends vscode.QuickPickItem {
  run: RunConfig | null;
}

export class RunPicker {
  constructor(
    private readonly state: vscode.Memento,
    private readonly log: vscode.LogOutputChannel,
  ) {}

  /** "Visualize" on `uri`: the remembered or only applicable configuration, else the
   * user's pick (undefined: the pick was dismissed). .pt2 files run as they are. */
  async forFile(uri: vscode.Uri): Promise<RunRequest | undefined> {
    if (!isScript(uri.fsPath)) {
      return { uri, run: null };
    }
    const applicable = this.resolved(uri).filter((run) => appliesTo(run, uri.fsPath));
    const choice = chooseRun(applicable, this.remembered(uri));
    if ('run' in choice) {
      return { uri, run: choice.run };
    }
    const picked = await this.pick(uri, choice.ask, 'Several launch configurations run this file: which one to visualize?');
    if (picked === undefined) {
      return undefined;
    }
    await this.remember(uri, picked);
    return { uri, run: picked };
  }

  /** "Visualize with Configuration...": any Python launch configuration of the workspace. */
  async anyConfiguration(active: vscode.Uri | undefined): Promise<RunRequest | undefined> {
    const runs = this.resolved(active);
    if (runs.length === 0) {
      void vscode.window.showWarningMessage('etviz: no Python launch configuration (type "debugpy" with a program or module) in .vscode/launch.json.');
      return undefined;
    }
    const picked = await this.pick(active, runs, 'Visualize the programs this launch configuration makes');
    if (picked === undefined) {
      return undefined;
    }
    const uri = this.sourceOf(picked, active);
    if (uri === undefined) {
      void vscode.window.showWarningMessage(`etviz: open the file to show "${picked?.name}" for, then run the command again.`);
      return undefined;
    }
    await this.remember(uri, picked);
    return { uri, run: picked };
  }

  /** A restored panel's file: its remembered configuration, never a prompt. */
  rememberedRun(uri: vscode.Uri): RunConfig | null {
    const name = this.remembered(uri);
    return this.resolved(uri).find((run) => run.name === name) ?? null;
  }

  private resolved(file: vscode.Uri | undefined): RunConfig[] {
    const folder = (file && vscode.workspace.getWorkspaceFolder(file)) ?? vscode.workspace.workspaceFolders?.[0];
    if (folder === undefined) {
      return [];
    }
    const configs = pythonLaunchConfigs(vscode.workspace.getConfiguration('launch', folder.uri).get('configurations'));
    const context = {
      workspaceFolder: folder.uri.fsPath,
      file: file?.fsPath ?? folder.uri.fsPath,
      env: process.env,
      home: os.homedir(),
    };
    const runs: RunConfig[] = [];
    for (const config of configs) {
      const run = resolveRunConfig(config, context, readText);
      if ('error' in run) {
        this.log.warn(run.error);
      } else {
        runs.push(run);
      }
    }
    return runs;
  }

  /** The file a configuration's graph is kept for: its program, its module's file under
   * its cwd, else the file it was started from. */
  private sourceOf(run: RunConfig | null, active: vscode.Uri | undefined): vscode.Uri | undefined {
    if (run?.program !== undefined) {
      return vscode.Uri.file(run.program);
    }
    const moduleFile = run === null ? undefined : moduleFiles(run).find((file) => fs.existsSync(file));
    if (moduleFile !== undefined && (active === undefined || !appliesTo(run as RunConfig, active.fsPath))) {
      return vscode.Uri.file(moduleFile);
    }
    return active;
  }

  private async pick(file: vscode.Uri | undefined, runs: readonly RunConfig[], title: string): Promise<RunConfig | null | undefined> {
    const folder = (file && vscode.workspace.getWorkspaceFolder(file)?.uri.fsPath) ?? '';
    const items: PickItem[] = runs.map((run) => ({ label: run.name, detail: describeRun(run, folder), run }));
    if (file !== undefined && isScript(file.fsPath)) {
      items.push({ label: 'No configuration', detail: `python ${vscode.workspace.asRelativePath(file)} (no arguments)`, run: null });
    }
    const picked = await vscode.window.showQuickPick(items, { title: `etviz: ${title}`, placeHolder: 'launch configuration', matchOnDetail: true });
    return picked?.run;
  }

  private remembered(uri: vscode.Uri): string | null | undefined {
    return this.state.get<Record<string, string | null>>(REMEMBERED, {})[uri.toString()];
  }

  private async remember(uri: vscode.Uri, run: RunConfig | null): Promise<void> {
    const all = { ...this.state.get<Record<string, string | null>>(REMEMBERED, {}) };
    all[uri.toString()] = run?.name ?? null;
    await this.state.update(REMEMBERED, all);
  }
}

function readText(file: string): string | undefined {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}
