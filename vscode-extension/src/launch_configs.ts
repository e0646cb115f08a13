// The workspace's Python launch configurations (.vscode/launch.json) as run configurations
// for the server: which ones exist, which apply to a file, and each one resolved the way
// the Python debugger would run it (variables substituted, args, cwd, env + envFile).
// Pure (no vscode import): the extension reads the `launch` section and files for it.

import * as path from 'node:path';

/** A launch configuration as written in launch.json (only the fields etviz uses). */
export interface LaunchConfig {
  name: string;
  program?: string;
  module?: string;
  args?: string[] | string;
  cwd?: string;
  env?: Record<string, string>;
  envFile?: string;
}

/** What `etviz.server.visualize` takes as `run`: a launch configuration, resolved. */
export interface RunConfig {
  name: string;
  program?: string; // absolute path of the script (exactly one of program / module)
  module?: string;
  args: string[];
  cwd: string; // absolute
  env: Record<string, string>; // the configuration's variables only (envFile, then env)
}

export interface VariableContext {
  workspaceFolder: string; // absolute path of the configuration's workspace folder
  file: string; // absolute path of the file being visualized (`${file}`)
  env: Record<string, string | undefined>; // the extension host's environment (`${env:X}`)
  home: string;
}

/** How the extension reads an envFile: its text, or undefined when it cannot be read. */
export type ReadFile = (file: string) => string | undefined;

const PYTHON_TYPES = new Set(['debugpy', 'python']);

/** The launch configurations a Python run can come from: `type` debugpy/python, `request`
 * launch, a `program` or a `module`. Anything else in the list is skipped. */
export function pythonLaunchConfigs(raw: unknown): LaunchConfig[] {
  if (!Array.isArray(raw)) {
    return [];
  }
  const found: LaunchConfig[] = [];
  for (const item of raw) {
    if (!isRecord(item) || typeof item.name !== 'string' || !PYTHON_TYPES.has(String(item.type))) {
      continue;
    }
    if ((item.request ?? 'launch') !== 'launch') {
      continue; // attach: nothing to run
    }
    const program = nonEmpty(item.program);
    const module = nonEmpty(item.module);
    if ((program === undefined) === (module === undefined)) {
      continue; // neither (a debug console config) or both (the debugger refuses it)
    }
    const config: LaunchConfig = { name: item.name, ...(program ? { program } : { module }) };
    if (Array.isArray(item.args) && item.args.every((a) => typeof a === 'string')) {
      config.args = item.args as string[];
    } else if (typeof item.args === 'string') {
      config.args = item.args;
    }
    const cwd = nonEmpty(item.cwd);
    if (cwd !== undefined) {
      config.cwd = cwd;
    }
    if (isRecord(item.env)) {
      config.env = Object.fromEntries(
        Object.entries(item.env).filter((entry): entry is [string, string] => typeof entry[1] === 'string'),
      );
    }
    const envFile = nonEmpty(item.envFile);
    if (envFile !== undefined) {
      config.envFile = envFile;
    }
    found.push(config);
  }
  return found;
}

/** The configuration with every variable substituted, paths absolute, the envFile read.
 * An error names the configuration and what could not be resolved. */
export function resolveRunConfig(config: LaunchConfig, context: VariableContext, readFile: ReadFile): RunConfig | { error: string } {
  try {
    const sub = (text: string): string => substitute(text, context);
    const cwd = path.resolve(context.workspaceFolder, sub(config.cwd ?? '${workspaceFolder}'));
    const args = typeof config.args === 'string' ? splitArgs(sub(config.args)) : (config.args ?? []).map(sub);
    const env: Record<string, string> = {};
    if (config.envFile !== undefined) {
      const envFile = path.resolve(cwd, sub(config.envFile));
      const text = readFile(envFile);
      if (text === undefined) {
        return { error: `launch configuration "${config.name}": cannot read its envFile ${envFile}` };
      }
      Object.assign(env, parseEnvFile(text, { ...context.env }));
    }
    for (const [key, value] of Object.entries(config.env ?? {})) {
      env[key] = sub(value);
    }
    const run: RunConfig = { name: config.name, args, cwd, env };
    if (config.program !== undefined) {
      run.program = path.resolve(cwd, sub(config.program));
    } else {
      run.module = sub(config.module ?? '');
    }
    return run;
  } catch (error) {
    return { error: `launch configuration "${config.name}": ${error instanceof Error ? error.message : String(error)}` };
  }
}

/** Whether running `run` is running `file`: its program, or the module's own file under
 * its cwd (`pkg.mod` -> pkg/mod.py, or pkg/mod/__main__.py for a package). */
export function appliesTo(run: RunConfig, file: string): boolean {
  const target = path.normalize(file);
  if (run.program !== undefined) {
    return path.normalize(run.program) === target;
  }
  return moduleFiles(run).some((candidate) => candidate === target);
}

/** Where the module of a module run would live under its cwd (both candidates). */
export function moduleFiles(run: RunConfig): string[] {
  if (run.module === undefined || !/^[A-Za-z_][\w.]*$/.test(run.module)) {
    return [];
  }
  const base = path.join(run.cwd, ...run.module.split('.'));
  return [`${base}.py`, path.join(base, '__main__.py')];
}

/** The command line the configuration runs, for quick pick details and messages. */
export function describeRun(run: RunConfig, workspaceFolder: string): string {
  const target = run.program !== undefined ? relativeTo(workspaceFolder, run.program) : `-m ${run.module}`;
  return ['python', target, ...run.args.map(quoteArg)].join(' ');
}

const VARIABLE = /\$\{([^}]*)\}/g;

function substitute(text: string, context: VariableContext): string {
  return text.replace(VARIABLE, (_whole, name: string) => {
    const value = variable(name, context);
    if (value === undefined) {
      throw new Error(`\${${name}} cannot be resolved outside the debugger`);
    }
    return value;
  });
}

function variable(name: string, context: VariableContext): string | undefined {
  const { workspaceFolder, file } = context;
  if (name.startsWith('env:')) {
    return context.env[name.slice(4)] ?? '';
  }
  if (name.startsWith('workspaceFolder:')) {
    // Multi-root: the named folder. Only this configuration's own folder is known here.
    return name.slice(16) === path.basename(workspaceFolder) ? workspaceFolder : undefined;
  }
  const extension = path.extname(file);
  const values: Record<string, string> = {
    workspaceFolder,
    workspaceRoot: workspaceFolder,
    workspaceFolderBasename: path.basename(workspaceFolder),
    file,
    fileBasename: path.basename(file),
    fileBasenameNoExtension: path.basename(file, extension),
    fileExtname: extension,
    fileDirname: path.dirname(file),
    fileWorkspaceFolder: workspaceFolder,
    relativeFile: path.relative(workspaceFolder, file),
    relativeFileDirname: path.relative(workspaceFolder, path.dirname(file)),
    cwd: workspaceFolder,
    userHome: context.home,
    pathSeparator: path.sep,
    '/': path.sep,
  };
  return Object.hasOwn(values, name) ? values[name] : undefined;
}

/** A `.env` file: KEY=VALUE lines (`export` allowed), # comments, quoted values, and
 * `${NAME}` references to variables defined above it or in the environment. */
export function parseEnvFile(text: string, environment: Record<string, string | undefined> = {}): Record<string, string> {
  const env: Record<string, string> = {};
  for (const raw of text.split(/\r?\n/)) {
    const match = /^\s*(?:export\s+)?([A-Za-z_][\w.]*)\s*=\s*(.*?)\s*$/.exec(raw);
    if (match === null) {
      continue;
    }
    const [, key, rawValue] = match;
    const quote = rawValue[0];
    let value: string;
    if ((quote === '"' || quote === "'") && rawValue.endsWith(quote) && rawValue.length >= 2) {
      value = rawValue.slice(1, -1);
      if (quote === '"') {
        value = value.replace(/\\n/g, '\n').replace(/\\"/g, '"');
      }
    } else {
      value = rawValue.replace(/\s+#.*$/, '');
    }
    if (quote !== "'") {
      value = value.replace(/\$\{([A-Za-z_]\w*)\}/g, (_w, name: string) => env[name] ?? environment[name] ?? '');
    }
    env[key] = value;
  }
  return env;
}

/** `args` given as one string (the debugger passes it to a shell): split like a shell
 * would on spaces, honouring single and double quotes and backslash escapes. */
export function splitArgs(text: string): string[] {
  const args: string[] = [];
  let current = '';
  let quote: string | undefined;
  let started = false;
  for (let i = 0; i < text.length; i++) {
    const char = text[i];
    if (quote !== undefined) {
      if (char === quote) {
        quote = undefined;
      } else if (char === '\\' && quote === '"' && i + 1 < text.length) {
        current += text[++i];
      } else {
        current += char;
      }
    } else if (char === '"' || char === "'") {
      quote = char;
      started = true;
    } else if (char === '\\' && i + 1 < text.length) {
      current += text[++i];
      started = true;
    } else if (/\s/.test(char)) {
      if (started) {
        args.push(current);
      }
      current = '';
      started = false;
    } else {
      current += char;
      started = true;
    }
  }
  if (started) {
    args.push(current);
  }
  return args;
}

function relativeTo(folder: string, file: string): string {
  const relative = path.relative(folder, file);
  return relative.startsWith('..') || path.isAbsolute(relative) ? file : relative;
}

function quoteArg(arg: string): string {
  return /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, "'\\''")}'`;
}

function nonEmpty(value: unknown): string | undefined {
  return typeof value === 'string' && value.trim() !== '' ? value : undefined;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** What "Visualize" does for a file: `remembered` is the configuration name chosen for it
 * last time (null: "no configuration" was chosen; undefined: never asked). */
export type RunChoice = { run: RunConfig | null } | { ask: RunConfig[] };

export function chooseRun(applicable: readonly RunConfig[], remembered: string | null | undefined): RunChoice {
  if (remembered === null) {
    return { run: null };
  }
  const same = applicable.find((run) => run.name === remembered);
  if (same !== undefined) {
    return { run: same };
  }
  if (applicable.length <= 1) {
    return { run: applicable[0] ?? null }; // the one way the user runs this file, or as is
  }
  return { ask: [...applicable] };
}
