// Which Python runs the language server: the etviz.pythonPath setting, else the Python
// extension's selected interpreter, else python3. Pure: the caller gathers the inputs.

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
}

export const DEFAULT_PYTHON = 'python3';

/** Expands `~`, `${workspaceFolder}` and `${userHome}`; a relative path is taken from the folder. */
export function expandPythonPath(value: string, workspaceFolder: string | undefined, home: string): string {
  let expanded = value.trim();
  if (expanded === '~' || expanded.startsWith('~/')) {
    expanded = home + expanded.slice(1);
  }
  expanded = expanded.replace(/\$\{userHome\}/g, home);
  if (workspaceFolder !== undefined) {
    expanded = expanded.replace(/\$\{workspaceFolder\}/g, workspaceFolder);
    // A bare command name ("python3.11") is looked up on PATH; only paths are anchored.
    if (!path.isAbsolute(expanded) && expanded.includes('/')) {
      expanded = path.join(workspaceFolder, expanded);
    }
  }
  return expanded;
}

export function chooseInterpreter(inputs: InterpreterInputs): Interpreter {
  const home = inputs.home ?? os.homedir();
  const setting = inputs.setting?.trim();
  if (setting) {
    return { command: expandPythonPath(setting, inputs.workspaceFolder, home), source: 'setting' };
  }
  const fromExtension = inputs.pythonExtension?.trim();
  if (fromExtension) {
    return { command: fromExtension, source: 'python-extension' };
  }
  return { command: DEFAULT_PYTHON, source: 'default' };
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
