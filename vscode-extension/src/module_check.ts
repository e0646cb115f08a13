// Whether `etviz_lsp` can be imported by an interpreter, checked before starting the
// server so a missing install becomes a clear message instead of a crash loop.
// find_spec does not import the package, so this costs only the interpreter's start.

import { execFile } from 'node:child_process';

export type ModuleCheck =
  | { kind: 'ok' }
  | { kind: 'missing' }
  | { kind: 'no-python'; message: string }
  | { kind: 'error'; message: string };

const MISSING_EXIT = 3;

function probe(moduleName: string): string {
  return `import importlib.util, sys; sys.exit(0 if importlib.util.find_spec(${JSON.stringify(moduleName)}) else ${MISSING_EXIT})`;
}

export interface CheckOptions {
  moduleName?: string;
  timeoutMs?: number;
  env?: NodeJS.ProcessEnv;
  /** The server's working folder: `-c` and `-m` both put it first on sys.path, so the
   * check must run there to see what the server will (an etviz_lsp beside the editor's
   * own working folder is not one the server imports). */
  cwd?: string;
}

export function checkModule(python: string, options: CheckOptions = {}): Promise<ModuleCheck> {
  const { moduleName = 'etviz_lsp', timeoutMs = 20000, env = process.env, cwd } = options;
  return new Promise((resolve) => {
    execFile(python, ['-c', probe(moduleName)], { timeout: timeoutMs, env, cwd }, (error, _stdout, stderr) => {
      if (error === null) {
        resolve({ kind: 'ok' });
        return;
      }
      // A spawn failure carries an errno string, a non-zero exit its number.
      const code = (error as { code?: unknown }).code;
      if (code === 'ENOENT' || code === 'EACCES') {
        resolve({ kind: 'no-python', message: `${python}: ${code === 'ENOENT' ? 'not found' : 'not executable'}` });
      } else if (code === MISSING_EXIT) {
        resolve({ kind: 'missing' });
      } else {
        const detail = stderr.trim().split('\n').pop() || error.message;
        resolve({ kind: 'error', message: `${python}: ${detail}` });
      }
    });
  });
}

export function installCommand(python: string): string {
  const quoted = /[\s"'$`\\]/.test(python) ? `"${python.replace(/(["$`\\])/g, '\\$1')}"` : python;
  return `${quoted} -m pip install etviz-lsp`;
}
