// The Python extension's selected interpreter, through its public API when it is
// installed. Both API spellings are read: `environments` (current) and `environment`
// (older releases).

import * as vscode from 'vscode';

interface EnvironmentPath {
  readonly id: string;
  readonly path: string;
}

interface ResolvedEnvironment {
  readonly executable: { readonly uri: vscode.Uri | undefined };
}

interface EnvironmentsApi {
  getActiveEnvironmentPath(resource?: vscode.Uri): EnvironmentPath;
  resolveEnvironment(env: EnvironmentPath | string): Promise<ResolvedEnvironment | undefined>;
  readonly onDidChangeActiveEnvironmentPath: vscode.Event<unknown>;
}

interface PythonExtensionApi {
  ready?: Promise<void>;
  environments?: EnvironmentsApi;
  environment?: EnvironmentsApi;
}

const PYTHON_EXTENSION_ID = 'ms-python.python';

async function environmentsApi(): Promise<EnvironmentsApi | undefined> {
  const extension = vscode.extensions.getExtension<PythonExtensionApi>(PYTHON_EXTENSION_ID);
  if (extension === undefined) {
    return undefined;
  }
  const api = extension.isActive ? extension.exports : await extension.activate();
  await api?.ready;
  return api?.environments ?? api?.environment;
}

export function pythonExtensionInstalled(): boolean {
  return vscode.extensions.getExtension(PYTHON_EXTENSION_ID) !== undefined;
}

/** The interpreter's executable, or undefined (no Python extension, nothing selected). */
export async function selectedInterpreter(resource: vscode.Uri | undefined, log: vscode.LogOutputChannel): Promise<string | undefined> {
  try {
    const api = await environmentsApi();
    if (api === undefined) {
      return undefined;
    }
    const resolved = await api.resolveEnvironment(api.getActiveEnvironmentPath(resource));
    return resolved?.executable.uri?.fsPath;
  } catch (error) {
    log.warn(`could not ask the Python extension for its interpreter: ${String(error)}`);
    return undefined;
  }
}

/** Fires when the user selects another interpreter in the Python extension. */
export async function onInterpreterSelected(listener: () => void): Promise<vscode.Disposable | undefined> {
  try {
    const api = await environmentsApi();
    return api?.onDidChangeActiveEnvironmentPath(() => listener());
  } catch {
    return undefined;
  }
}
