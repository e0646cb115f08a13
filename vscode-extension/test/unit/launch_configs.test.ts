// launch.json as the Python debugger reads it: which configurations are Python runs, how
// their variables, args, cwd and env resolve, and which one "Visualize" uses for a file.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  type RunConfig,
  appliesTo,
  chooseRun,
  describeRun,
  parseEnvFile,
  pythonLaunchConfigs,
  resolveRunConfig,
  splitArgs,
} from '../../src/launch_configs';

const ws = '/home/u/proj';
const context = { workspaceFolder: ws, file: `${ws}/tools/export.py`, env: { HOME: '/home/u', MODEL: 'tiny' }, home: '/home/u' };
const noFiles = () => undefined;

function resolved(config: Record<string, unknown>, files: Record<string, string> = {}): RunConfig {
  const [parsed] = pythonLaunchConfigs([{ name: 'c', type: 'debugpy', request: 'launch', ...config }]);
  assert.ok(parsed, 'a Python launch configuration');
  const run = resolveRunConfig(parsed, context, (file) => files[file]);
  assert.ok(!('error' in run), JSON.stringify(run));
  return run;
}

test('only launchable Python configurations with a program or a module are offered', () => {
  const configs = pythonLaunchConfigs([
    { name: 'script', type: 'debugpy', request: 'launch', program: '${file}' },
    { name: 'old type', type: 'python', request: 'launch', module: 'pkg.export' },
    { name: 'node', type: 'node', request: 'launch', program: 'x.js' },
    { name: 'attach', type: 'debugpy', request: 'attach', connect: { port: 5678 } },
    { name: 'both', type: 'debugpy', request: 'launch', program: 'a.py', module: 'a' },
    { name: 'neither', type: 'debugpy', request: 'launch' },
    { type: 'debugpy', request: 'launch', program: 'nameless.py' },
    'not an object',
  ]);
  assert.deepEqual(configs.map((c) => c.name), ['script', 'old type']);
  assert.deepEqual(pythonLaunchConfigs(undefined), []);
});

test('program, cwd and args resolve against the workspace folder, with variables', () => {
  const run = resolved({ program: '${workspaceFolder}/tools/export.py', args: ['--out', '${fileDirname}/m.pte', '--model=${env:MODEL}'] });
  assert.equal(run.program, `${ws}/tools/export.py`);
  assert.equal(run.cwd, ws, 'the debugger runs in the workspace folder by default');
  assert.deepEqual(run.args, ['--out', `${ws}/tools/m.pte`, '--model=tiny']);
});

test('a relative program resolves against the configured cwd', () => {
  const run = resolved({ program: 'export.py', cwd: '${workspaceFolder}/tools' });
  assert.equal(run.cwd, `${ws}/tools`);
  assert.equal(run.program, `${ws}/tools/export.py`);
});

test('file variables name the file being visualized', () => {
  const run = resolved({ program: '${file}', args: ['${fileBasenameNoExtension}', '${relativeFile}', '${workspaceFolderBasename}'] });
  assert.equal(run.program, context.file);
  assert.deepEqual(run.args, ['export', 'tools/export.py', 'proj']);
});

test('args given as one string are split like a shell would', () => {
  assert.deepEqual(resolved({ module: 'm', args: '--name "two words" --q=\'a b\' x\\ y' }).args, ['--name', 'two words', '--q=a b', 'x y']);
  assert.deepEqual(splitArgs('  '), []);
  assert.deepEqual(splitArgs('"" a'), ['', 'a']);
});

test('envFile is read (relative to cwd) and env overrides it', () => {
  const files = { [`${ws}/.env`]: '# comment\nexport A=1\nB="x y"\nC=${A}-${HOME}\nD=plain # trailing\n' };
  const run = resolved({ module: 'pkg.export', envFile: '.env', env: { A: 'override', E: '${env:MODEL}' } }, files);
  assert.deepEqual(run.env, { A: 'override', B: 'x y', C: '1-/home/u', D: 'plain', E: 'tiny' });
  assert.equal(run.module, 'pkg.export');
});

test('a missing envFile or a variable only the debugger knows is a clear error', () => {
  const [withEnvFile] = pythonLaunchConfigs([{ name: 'needs env', type: 'debugpy', request: 'launch', module: 'm', envFile: '${workspaceFolder}/missing.env' }]);
  assert.deepEqual(resolveRunConfig(withEnvFile, context, noFiles), {
    error: `launch configuration "needs env": cannot read its envFile ${ws}/missing.env`,
  });
  const [prompt] = pythonLaunchConfigs([{ name: 'asks', type: 'debugpy', request: 'launch', program: 'a.py', args: ['${input:modelName}'] }]);
  const result = resolveRunConfig(prompt, context, noFiles);
  assert.ok('error' in result && /"asks": \$\{input:modelName\} cannot be resolved/.test(result.error), JSON.stringify(result));
});

test('single-quoted envFile values are taken literally', () => {
  assert.deepEqual(parseEnvFile("A='${HOME} # not a comment'\nnot a line\n", { HOME: '/h' }), { A: '${HOME} # not a comment' });
});

test('a configuration applies to its program, or to its module under its cwd', () => {
  const script = resolved({ program: '${workspaceFolder}/tools/../tools/export.py' });
  assert.ok(appliesTo(script, `${ws}/tools/export.py`));
  assert.ok(!appliesTo(script, `${ws}/tools/other.py`));
  const module = resolved({ module: 'pkg.export' });
  assert.ok(appliesTo(module, `${ws}/pkg/export.py`));
  assert.ok(appliesTo(resolved({ module: 'pkg' }), `${ws}/pkg/__main__.py`));
  assert.ok(!appliesTo(module, `${ws}/pkg/model.py`));
});

test('the command line shown for a configuration', () => {
  assert.equal(describeRun(resolved({ program: '${file}', args: ['--blocks', '3', 'a b'] }), ws), "python tools/export.py --blocks 3 'a b'");
  assert.equal(describeRun(resolved({ module: 'pkg.export' }), ws), 'python -m pkg.export');
});

test('Visualize uses the remembered choice, the only configuration, or asks', () => {
  const a = resolved({ program: '${file}', args: ['a'] });
  const b = { ...resolved({ program: '${file}', args: ['b'] }), name: 'b' };
  assert.deepEqual(chooseRun([], undefined), { run: null }, 'no configuration: the file as is');
  assert.deepEqual(chooseRun([a], undefined), { run: a });
  assert.deepEqual(chooseRun([a, b], undefined), { ask: [a, b] });
  assert.deepEqual(chooseRun([a, b], 'b'), { run: b });
  assert.deepEqual(chooseRun([a, b], null), { run: null }, '"no configuration" was chosen');
  assert.deepEqual(chooseRun([a, b], 'renamed since'), { ask: [a, b] });
});
