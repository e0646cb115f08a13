// Before the server starts: can the chosen interpreter run the server this extension
// carries (bundled/launch.py: its code and libraries first on the path, nothing installed
// in the user's environment), and what does it lack for etviz's work there (torch,
// ExecuTorch, Model Explorer)? One run of the launcher with --check, which reads installed
// metadata and imports none of them.

import { execFile } from 'node:child_process';
import * as path from 'node:path';

/** What `launch.py --check` prints (etviz_lsp/run_requirements.py's report). */
export interface InterpreterReport {
  python: string; // sys.executable
  version: string; // the Python's own version
  missing: string[]; // modules missing or too old
  message: string | null; // one line naming the interpreter and what it lacks
  server: string; // the bundled etviz_lsp's version
}

export type InterpreterCheck =
  | { kind: 'ok'; report: InterpreterReport }
  | { kind: 'no-python'; message: string }
  | { kind: 'error'; message: string };

/** The server this extension carries: its launcher, and the version it must answer with. */
export interface BundledServer {
  launcher: string;
  version: string;
}

export function bundledServer(extensionPath: string, version: string): BundledServer {
  return { launcher: path.join(extensionPath, 'bundled', 'launch.py'), version };
}

export function parseReport(text: string): InterpreterReport | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text.trim().split('\n').pop() ?? '');
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null) {
    return undefined;
  }
  const r = value as Record<string, unknown>;
  const strings = ['python', 'version', 'server'].every((key) => typeof r[key] === 'string');
  const missing = Array.isArray(r.missing) && r.missing.every((m) => typeof m === 'string');
  const message = r.message === null || typeof r.message === 'string';
  return strings && missing && message ? (r as unknown as InterpreterReport) : undefined;
}

export interface CheckOptions {
  timeoutMs?: number;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

export function checkInterpreter(python: string, launcher: string, options: CheckOptions = {}): Promise<InterpreterCheck> {
  const { timeoutMs = 20000, env = process.env, cwd } = options;
  return new Promise((resolve) => {
    execFile(python, [launcher, '--check'], { timeout: timeoutMs, env, cwd }, (error, stdout, stderr) => {
      if (error === null) {
        const report = parseReport(stdout);
        resolve(report ? { kind: 'ok', report } : { kind: 'error', message: `${python}: the server's check answered ${JSON.stringify(stdout.slice(0, 200))}` });
        return;
      }
      // A spawn failure carries an errno string, a non-zero exit its number.
      const code = (error as { code?: unknown }).code;
      if (code === 'ENOENT' || code === 'EACCES') {
        resolve({ kind: 'no-python', message: `${python}: ${code === 'ENOENT' ? 'not found' : 'not executable'}` });
        return;
      }
      // The launcher's own refusal (a Python it has no libraries for) names the interpreter.
      const detail = stderr.trim().split('\n').pop() || error.message;
      resolve({ kind: 'error', message: detail.includes(python) ? detail : `${python}: ${detail}` });
    });
  });
}
