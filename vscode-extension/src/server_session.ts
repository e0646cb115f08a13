// The language server's life: which interpreter runs it, what that interpreter lacks, starting
// and stopping vscode-languageclient, and the requests the commands send. The server is the
// one this extension carries (bundled/launch.py with the user's interpreter: nothing is
// installed there). Restarts happen only when the resolved interpreter really changes, on
// trust being granted, or when the user asks.

import * as fs from 'node:fs';
import * as vscode from 'vscode';
import { DidChangeConfigurationNotification, ExecuteCommandRequest, LSPErrorCodes, LanguageClient, type LanguageClientOptions, ResponseError, type ServerOptions, State, TransportKind } from 'vscode-languageclient/node';
import { DEFAULT_KINDS, type InputKind, parseInputKinds, readFilePatterns } from './input_kinds';
import {
  type Interpreter,
  chooseInterpreter,
  describeInterpreter,
  describeScopes,
  interpreterChanged,
  machineSettingsFile,
  remoteFallbackAdvice,
} from './interpreter_choice';
import { type CompareAnswer, parseCompareAnswer } from './compare';
import type { RunConfig } from './launch_configs';
import { type BundledServer, type InterpreterReport, checkInterpreter } from './interpreter_check';
import { NotificationProgressFeature } from './notification_progress';
import { type ProfileAnswer, parseProfileAnswer } from './profile';
import {
  GRAPH_READY,
  type GraphEvent,
  type NoSource,
  type NodesAtLine,
  SELECT_NODES,
  SERVER_COMMANDS,
  type SourceLine,
  buildInitializationOptions,
  buildLiveSettings,
  parseGraphEvent,
  parseNodesAtLine,
  parseRefreshErrors,
  parseSourceLine,
} from './protocol';
import { pythonExtensionInstalled, selectedInterpreter } from './python_extension';
import type { ServerPhase } from './graph_state';
import { readSettings } from './settings';
import { serverIdentity, versionMismatch } from './version_check';

export interface PhaseChange {
  phase: ServerPhase;
  problem?: string;
}

export type CommandOutcome = { event: GraphEvent } | { error: string } | { nothing: true };

export class ServerSession implements vscode.Disposable {
  private client: LanguageClient | undefined;
  private progress: NotificationProgressFeature | undefined;
  private interpreter: Interpreter | undefined;
  private startProblem: string | undefined; // why the last start failed, for command errors
  private loggedScopes: string | undefined; // the last scopes line logged
  private queue: Promise<unknown> = Promise.resolve();
  private readonly graphEmitter = new vscode.EventEmitter<GraphEvent>();
  private readonly phaseEmitter = new vscode.EventEmitter<PhaseChange>();
  private readonly busyEmitter = new vscode.EventEmitter<boolean>();
  private readonly selectEmitter = new vscode.EventEmitter<NodesAtLine>();
  /** The server asks to select nodes (etviz/selectNodes: a "Show in Graph" lens or command). */
  readonly onSelectNodes = this.selectEmitter.event;
  readonly onGraphEvent = this.graphEmitter.event;
  readonly onPhase = this.phaseEmitter.event;
  readonly onBusy = this.busyEmitter.event;

  /** `server`: the server this extension carries (its launch.py and version).
   * `globalStorage`: the extension's global storage (on the remote side in a remote
   * window), from which the Machine settings file is found for the remote advice. */
  constructor(
    private readonly log: vscode.LogOutputChannel,
    private readonly server: BundledServer,
    private readonly globalStorage?: vscode.Uri,
  ) {}

  /** Starts the server, or restarts it if the interpreter changed (or `force`). */
  ensureStarted(force = false): Promise<void> {
    return this.serialized(async () => {
      const next = await this.resolveInterpreter();
      if (!force && this.client?.isRunning() && !interpreterChanged(this.interpreter, next)) {
        return;
      }
      await this.stopClient();
      await this.startClient(next);
    });
  }

  restart(): Promise<void> {
    return this.ensureStarted(true);
  }

  /** Timeout, auto-refresh and port changed: the running server applies them, no restart
   * (which would cost the warm worker and forget the files being watched). */
  async sendSettings(): Promise<void> {
    const client = this.client;
    if (client === undefined || !client.isRunning()) {
      return; // the next start reads them from initializationOptions
    }
    const settings = readSettings(vscode.workspace.workspaceFolders?.[0]?.uri);
    const live = buildLiveSettings(settings);
    const profile = {
      profile: settings.profile, profileIterations: settings.profileIterations, profileNumericGap: settings.profileNumericGap,
    };
    await client.sendNotification(DidChangeConfigurationNotification.type, { settings: { etviz: { ...live.etviz, ...profile } } });
  }

  stop(): Promise<void> {
    return this.serialized(() => this.stopClient());
  }

  /** `showLast` (a restored panel): the server answers the file's last graph at once, if
   * it still has it, and the fresh one follows as etviz/graphReady. `run`: the launch
   * configuration to run it with (null: the file as is), which later saves re-run too. */
  async visualize(uri: vscode.Uri, showLast = false, run: RunConfig | null = null): Promise<CommandOutcome> {
    const args = [uri.toString(), { showLast, run }];
    const answer = await this.executeServerCommand(SERVER_COMMANDS.visualize, ...args);
    if ('error' in answer) {
      return answer;
    }
    if (answer.result === null) {
      return { nothing: true };
    }
    const event = parseGraphEvent(answer.result, uri.toString());
    if (event === undefined) {
      this.log.warn(`visualize answered something unexpected: ${JSON.stringify(answer.result)}`);
      return { error: 'the server answered something unexpected (see etviz: Show Logs)' };
    }
    return { event };
  }

  /** Re-runs the file; its new graph (or error) arrives as etviz/graphReady. */
  async refresh(uri: vscode.Uri | undefined): Promise<CommandOutcome> {
    const answer = await this.executeServerCommand(SERVER_COMMANDS.refresh, ...(uri ? [uri.toString()] : []));
    if ('error' in answer) {
      return answer;
    }
    const errors = parseRefreshErrors(answer.result);
    return errors.length > 0 ? { error: errors.join('\n') } : { nothing: true };
  }

  /** The file kinds the running server opens (its initialize answer), else the defaults. */
  inputKinds(): readonly InputKind[] {
    return parseInputKinds(this.client?.initializeResult?.capabilities.experimental) ?? DEFAULT_KINDS;
  }

  /** Whether the running server answers a command (navigation came later than visualize). */
  supports(command: string): boolean {
    const commands = this.client?.initializeResult?.capabilities.executeCommandProvider?.commands ?? [];
    return commands.includes(command);
  }

  /**
   * The nodes a 0-based line made. `showInGraph` also makes that graph the one navigated
   * in and has the server send etviz/selectNodes (which selects them); `nodeAt` only asks.
   */
  async nodesAt(uri: vscode.Uri, line: number, command: 'nodeAt' | 'showInGraph' = 'nodeAt'): Promise<NodesAtLine | { error: string }> {
    const answer = await this.executeServerCommand(SERVER_COMMANDS[command], uri.toString(), line);
    if ('error' in answer) {
      return answer;
    }
    return parseNodesAtLine(answer.result) ?? { graphId: '', nodeIds: [], namespaces: [] };
  }

  /** `graphId` '' lets the server look the node up in the file's graphs itself. */
  async sourceOf(graphId: string, nodeId: string, source: string | undefined): Promise<SourceLine | NoSource | { error: string }> {
    const args = source === undefined ? [graphId, nodeId] : [graphId, nodeId, source];
    const answer = await this.executeServerCommand(SERVER_COMMANDS.sourceOf, ...args);
    return 'error' in answer ? answer : parseSourceLine(answer.result);
  }

  /** Runs the file's last ExecuTorch program on this machine (issue 17); its graphs with the
   * latency node data also arrive as etviz/graphReady. */
  async profile(uri: vscode.Uri): Promise<ProfileAnswer | { error: string } | { nothing: true }> {
    const answer = await this.executeServerCommand(SERVER_COMMANDS.profile, uri.toString());
    if ('error' in answer) {
      return answer;
    }
    if (answer.result === null) {
      return { nothing: true }; // cancelled
    }
    return parseProfileAnswer(answer.result, uri.toString()) ?? { error: 'the server answered something unexpected about the profile' };
  }

  /** The stages of a visualized file and their correspondence (Compare Stages, issue 18). */
  async compare(uri: vscode.Uri): Promise<CompareAnswer | { error: string }> {
    const answer = await this.executeServerCommand(SERVER_COMMANDS.compare, uri.toString());
    if ('error' in answer) {
      return answer;
    }
    return parseCompareAnswer(answer.result) ?? { error: 'the server answered something unexpected about the stages' };
  }

  dispose(): void {
    void this.stopClient();
    this.graphEmitter.dispose();
    this.phaseEmitter.dispose();
    this.busyEmitter.dispose();
    this.selectEmitter.dispose();
  }

  private serialized<T>(job: () => Promise<T>): Promise<T> {
    const run = this.queue.then(job, job);
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async resolveInterpreter(): Promise<Interpreter> {
    const folder = vscode.workspace.workspaceFolders?.[0];
    const settings = readSettings(folder?.uri);
    const scopes = describeScopes(vscode.workspace.getConfiguration('etviz', folder?.uri).inspect('pythonPath'), vscode.env.remoteName);
    if (scopes !== this.loggedScopes) {
      this.log.info(scopes); // every command resolves again: log only what changed
      this.loggedScopes = scopes;
    }
    const fromExtension = settings.pythonPath ? undefined : await selectedInterpreter(folder?.uri, this.log);
    return chooseInterpreter({
      setting: settings.pythonPath,
      pythonExtension: fromExtension,
      workspaceFolder: folder?.uri.fsPath,
      isDirectory: (candidate) => {
        try {
          return fs.statSync(candidate).isDirectory();
        } catch {
          return false; // not there: the start names the missing interpreter
        }
      },
    });
  }

  private async startClient(interpreter: Interpreter): Promise<void> {
    this.interpreter = interpreter;
    this.startProblem = undefined;
    this.phaseEmitter.fire({ phase: 'starting' });
    this.log.info(`interpreter: ${describeInterpreter(interpreter)}`);
    const remoteAdvice = remoteFallbackAdvice(interpreter, vscode.env.remoteName, this.machineSettings()?.fsPath);
    if (remoteAdvice !== undefined) {
      this.log.warn(remoteAdvice);
    }
    const check = await checkInterpreter(interpreter.command, this.server.launcher, { cwd: vscode.workspace.workspaceFolders?.[0]?.uri.fsPath });
    if (check.kind !== 'ok') {
      this.log.error(check.message);
      this.startProblem = remoteAdvice ? `${check.message}. ${remoteAdvice}` : check.message;
      this.phaseEmitter.fire({ phase: 'no-interpreter', problem: check.message });
      void this.offerInterpreter(check.message, 'error', remoteAdvice);
      return;
    }
    this.reportLacks(check.report, remoteAdvice);
    const client = this.createClient(interpreter);
    this.client = client;
    try {
      await client.start();
      const identity = serverIdentity(client.initializeResult);
      this.log.info(`server: etviz-lsp ${identity.version ?? '(no version)'} from ${identity.location ?? '(not said)'}`);
      const mismatch = versionMismatch(this.server.version, identity, interpreter.command);
      if (mismatch !== undefined) {
        await this.refuseOtherBuild(mismatch);
        return;
      }
      this.phaseEmitter.fire({ phase: 'ready' });
    } catch (error) {
      const problem = `the server did not start: ${String(error)}`;
      this.log.error(problem);
      this.startProblem = problem;
      this.phaseEmitter.fire({ phase: 'failed', problem });
    }
  }

  private createClient(interpreter: Interpreter): LanguageClient {
    const folder = vscode.workspace.workspaceFolders?.[0];
    const settings = readSettings(folder?.uri);
    const serverOptions: ServerOptions = {
      command: interpreter.command,
      args: [this.server.launcher],
      transport: TransportKind.stdio, // appends --stdio
      options: { cwd: folder?.uri.fsPath },
    };
    const clientOptions: LanguageClientOptions = {
      documentSelector: [
        { scheme: 'file', language: 'python' },
        ...readFilePatterns(DEFAULT_KINDS).map((pattern) => ({ scheme: 'file', pattern })),
      ],
      outputChannel: this.log,
      initializationOptions: {
        ...buildInitializationOptions(settings, interpreter.command, vscode.workspace.isTrusted, process.pid),
        extensionVersion: this.server.version, // the server checks it too (lsp/versions.py)
        profile: settings.profile,
        profileIterations: settings.profileIterations,
        profileNumericGap: settings.profileNumericGap,
      },
    };
    const client = new LanguageClient('etviz', 'etviz language server', serverOptions, clientOptions);
    const progress = new NotificationProgressFeature(client);
    progress.onDidChangeBusy((busy) => this.busyEmitter.fire(busy));
    client.registerFeature(progress);
    this.progress = progress;
    client.onNotification(GRAPH_READY, (params: unknown) => {
      const event = parseGraphEvent(params);
      if (event === undefined) {
        this.log.warn(`ignored a malformed ${GRAPH_READY}: ${JSON.stringify(params)}`);
        return;
      }
      this.graphEmitter.fire(event);
    });
    client.onNotification(SELECT_NODES, (params: unknown) => {
      const selection = parseNodesAtLine(params);
      if (selection === undefined || selection.nodeIds.length === 0) {
        this.log.warn(`ignored a malformed ${SELECT_NODES}: ${JSON.stringify(params)}`);
        return;
      }
      this.selectEmitter.fire(selection);
    });
    client.onDidChangeState(({ newState }) => {
      if (newState === State.Stopped && this.client === client) {
        this.startProblem = 'the server process exited';
        this.phaseEmitter.fire({ phase: 'stopped' });
      }
    });
    return client;
  }

  private async stopClient(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    this.progress?.dispose();
    this.progress = undefined;
    this.busyEmitter.fire(false);
    if (client === undefined) {
      return;
    }
    try {
      if (client.isRunning()) {
        await client.stop(5000);
      }
    } catch (error) {
      this.log.warn(`stopping the server: ${String(error)}`);
    }
    await client.dispose().catch(() => undefined);
  }

  private async executeServerCommand(command: string, ...args: unknown[]): Promise<{ result: unknown } | { error: string }> {
    // A restart can replace the client while a request is in flight (trust granted or a
    // setting changed while a restored panel asks for its graph): ask the new one once more.
    for (let attempt = 0; ; attempt++) {
      const client = await this.runningClient();
      if (client === undefined) {
        const why = this.startProblem ?? 'it stopped';
        return { error: `the etviz language server is not running: ${why} (see etviz: Show Logs)` };
      }
      try {
        return { result: await client.sendRequest(ExecuteCommandRequest.type, { command, arguments: args }) };
      } catch (error) {
        if (error instanceof ResponseError && error.code === LSPErrorCodes.RequestCancelled) {
          this.log.info(`${command}: cancelled`);
          return { result: null }; // the user pressed Cancel: nothing to report
        }
        if (attempt === 0 && client !== this.client) {
          this.log.info(`${command}: the server was restarted during the request; asking the new one`);
          continue;
        }
        return { error: error instanceof ResponseError ? error.message : String(error) };
      }
    }
  }

  /** The started client, after any start or restart queued meanwhile has finished. */
  private async runningClient(): Promise<LanguageClient | undefined> {
    await this.ensureStarted();
    await this.queue;
    return this.client?.isRunning() ? this.client : undefined;
  }

  /** `<data>/Machine/settings.json` of the machine the extension host runs on. */
  private machineSettings(): vscode.Uri | undefined {
    return this.globalStorage ? vscode.Uri.file(machineSettingsFile(this.globalStorage.fsPath)) : undefined;
  }

  /** Another build answered (issue 27): one message, and no server that would fail oddly. */
  private async refuseOtherBuild(problem: string): Promise<void> {
    this.log.error(problem);
    this.startProblem = problem;
    await this.stopClient();
    this.phaseEmitter.fire({ phase: 'failed', problem });
    void this.offerInterpreter(problem, 'error');
  }

  /** The server runs without torch, ExecuTorch or Model Explorer (it needs none of them);
   * what the interpreter lacks is said once, before the first command would fail on it. */
  private reportLacks(report: InterpreterReport, remoteAdvice?: string): void {
    this.log.info(`${report.python}: Python ${report.version}, bundled etviz-lsp ${report.server}`);
    if (report.message !== null) {
      this.log.warn(report.message);
      void this.offerInterpreter(report.message, 'warning', remoteAdvice);
    }
  }

  private async offerInterpreter(problem: string, severity: 'error' | 'warning', remoteAdvice?: string): Promise<void> {
    const select = 'Select Interpreter';
    const settings = 'Open Settings';
    const remote = 'Open Remote Settings';
    const choices = [...(remoteAdvice ? [remote] : []), ...(pythonExtensionInstalled() ? [select] : []), settings];
    const text = `etviz: ${problem}.${remoteAdvice ? ` ${remoteAdvice}` : ''}`;
    const show = severity === 'error' ? vscode.window.showErrorMessage : vscode.window.showWarningMessage;
    const choice = await show(text, ...choices);
    if (choice === remote) {
      await this.openRemoteSettings();
    } else if (choice === select) {
      await vscode.commands.executeCommand('python.setInterpreter');
    } else if (choice === settings) {
      await vscode.commands.executeCommand('workbench.action.openSettings', 'etviz.pythonPath');
    }
  }

  /** The Remote settings (JSON) of this window; the Machine settings file itself when the
   * workbench has no such command. */
  private async openRemoteSettings(): Promise<void> {
    try {
      await vscode.commands.executeCommand('workbench.action.openRemoteSettingsFile');
      return;
    } catch (error) {
      this.log.warn(`workbench.action.openRemoteSettingsFile: ${String(error)}`);
    }
    const file = this.machineSettings();
    if (file !== undefined) {
      await vscode.window.showTextDocument(file);
    }
  }
}
