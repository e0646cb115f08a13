// Which Python runs the language server: the etviz.pythonPath setting, else the Python
// extension's selected interpreter, else python3 (python on Windows). Pure: the caller
// gathers the inputs. Paths follow the platform's rules (Windows: `\`, drive letters,
// a virtual environment's interpreter in `Scripts\python.exe`, not `bin/python`).

import * as os from 'node:os';
import * as path from 'node:path';

export type InterpreterSource = 'setting' | 'python-extension' | 'default';

export interface Interpreter {
  command: string;
  source: InterpreterSource;
}

export interface InterpreterInputs {
  setting: string | undefined; // etviz.pythonPath as VS Code resolved it (trust applied)
  pythonExtension: string | undefined; // the Python extension's active interpreter path
  workspaceFolder: string | undefined; // first folder's fsPath, for ${workspaceFolder}
  home?: string;
  platform?: NodeJS.Platform; // default: this process's
  // Whether a path is a folder: a setting naming a virtual environment's folder means
  // its interpreter. Default: never (the caller passes a file system check).
  isDirectory?: (path: string) => boolean;
}

export const DEFAULT_PYTHON = 'python3';

/** The interpreter tried when nothing names one: `python3`; on Windows `python`. */
export function defaultPython(platform: NodeJS.Platform = process.platform): string {
  return platform === 'win32' ? 'python' : DEFAULT_PYTHON;
}

/** A virtual environment's interpreter: `bin/python`, on Windows `Scripts\python.exe`. */
export function venvPython(folder: string, platform: NodeJS.Platform = process.platform): string {
  return platform === 'win32' ? path.win32.join(folder, 'Scripts', 'python.exe') : path.posix.join(folder, 'bin', 'python');
}

/** Expands `~`, `${workspaceFolder}` and `${userHome}`; a relative path is taken from the folder. */
export function expandPythonPath(
  value: string,
  workspaceFolder: string | undefined,
  home: string,
  platform: NodeJS.Platform = process.platform,
): string {
  const paths = platform === 'win32' ? path.win32 : path.posix;
  const separators = platform === 'win32' ? /[\\/]/ : /\//;
  let expanded = value.trim();
  if (expanded === '~' || (expanded.startsWith('~') && separators.test(expanded[1] ?? ''))) {
    expanded = home + expanded.slice(1);
  }
  expanded = expanded.replace(/\$\{userHome\}/g, home);
  if (workspaceFolder !== undefined) {
    expanded = expanded.replace(/\$\{workspaceFolder\}/g, workspaceFolder);
    // A bare command name ("python3.11") is looked up on PATH; only paths are anchored.
    if (!paths.isAbsolute(expanded) && separators.test(expanded)) {
      expanded = paths.join(workspaceFolder, expanded);
    }
  }
  return expanded;
}

export function chooseInterpreter(inputs: InterpreterInputs): Interpreter {
  const home = inputs.home ?? os.homedir();
  const platform = inputs.platform ?? process.platform;
  const setting = inputs.setting?.trim();
  if (setting) {
    const command = expandPythonPath(setting, inputs.workspaceFolder, home, platform);
    const isFolder = inputs.isDirectory?.(command) ?? false;
    return { command: isFolder ? venvPython(command, platform) : command, source: 'setting' };
  }
  const fromExtension = inputs.pythonExtension?.trim();
  if (fromExtension) {
    return { command: fromExtension, source: 'python-extension' };
  }
  return { command: defaultPython(platform), source: 'default' };
}

/**
 * Whether a newly resolved interpreter calls for a server restart. Only the command
 * matters: the same python chosen another way (setting now equal to the Python
 * extension's choice) is the same server.
 */
export function interpreterChanged(current: Interpreter | undefined, next: Interpreter): boolean {
  return current === undefined || path.normalize(current.command) !== path.normalize(next.command);
}

export function describeInterpreter(interpreter: Interpreter): string {
  const where = {
    setting: 'from etviz.pythonPath',
    'python-extension': "the Python extension's selected interpreter",
    default: 'default; set etviz.pythonPath or select an interpreter',
  }[interpreter.source];
  return `${interpreter.command} (${where})`;
}

/** What `getConfiguration('etviz').inspect('pythonPath')` saw, scope by scope. */
export interface ScopeValues {
  defaultValue?: unknown;
  globalValue?: unknown;
  workspaceValue?: unknown;
  workspaceFolderValue?: unknown;
}

/**
 * One log line naming every scope consulted, so "why python3?" can be answered from the
 * log: in a remote window `global` is the remote (Machine) settings merged over the User
 * ones for settings VS Code lets through, and a value set elsewhere shows up as unset here.
 */
export function describeScopes(values: ScopeValues | undefined, remoteName: string | undefined): string {
  const shown = (value: unknown): string => (value === undefined ? 'unset' : JSON.stringify(value));
  const window = remoteName ? `remote window (${remoteName})` : 'local window';
  if (values === undefined) {
    return `etviz.pythonPath in this ${window}: not declared (inspect() returned nothing)`;
  }
  return (
    `etviz.pythonPath in this ${window}: default ${shown(values.defaultValue)}, ` +
    `global ${shown(values.globalValue)}, workspace ${shown(values.workspaceValue)}, ` +
    `folder ${shown(values.workspaceFolderValue)}`
  );
}

/**
 * The remote machine's settings file, from the extension's global storage there
 * (`<data>/User/globalStorage/<id>` -> `<data>/Machine/settings.json`): code-server's
 * user-data-dir, `~/.vscode-server/data` for Remote-SSH, WSL and Codespaces.
 */
export function machineSettingsFile(globalStoragePath: string): string {
  return path.join(path.dirname(path.dirname(path.dirname(globalStoragePath))), 'Machine', 'settings.json');
}

/**
 * Why a remote window fell back to python3, and where the setting belongs; undefined
 * when the window is local or the interpreter came from a setting or the Python
 * extension. VS Code reads machine settings of a remote window from the remote side, so a
 * User-level etviz.pythonPath is not (reliably) seen there.
 */
export function remoteFallbackAdvice(
  interpreter: Interpreter,
  remoteName: string | undefined,
  machineFile: string | undefined,
): string | undefined {
  if (!remoteName || interpreter.source !== 'default') {
    return undefined;
  }
  const file = machineFile ? ` (the Machine settings file ${machineFile})` : '';
  return (
    `This is a remote window (${remoteName}): etviz.pythonPath in your User settings is not read here. ` +
    `Set it in the Remote settings${file}.`
  );
}
