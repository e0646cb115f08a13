import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  chooseInterpreter,
  describeInterpreter,
  describeScopes,
  expandPythonPath,
  venvPython,
  interpreterChanged,
  machineSettingsFile,
  remoteFallbackAdvice,
} from '../../src/interpreter_choice';

const base = { workspaceFolder: '/ws', home: '/home/u' };

test('etviz.pythonPath wins over the Python extension', () => {
  const chosen = chooseInterpreter({ ...base, setting: '/opt/py/bin/python', pythonExtension: '/ws/.venv/bin/python' });
  assert.deepEqual(chosen, { command: '/opt/py/bin/python', source: 'setting' });
});

test("the Python extension's interpreter when the setting is empty or blank", () => {
  for (const setting of [undefined, '', '   ']) {
    const chosen = chooseInterpreter({ ...base, setting, pythonExtension: '/ws/.venv/bin/python' });
    assert.deepEqual(chosen, { command: '/ws/.venv/bin/python', source: 'python-extension' });
  }
});

test('python3 when there is neither', () => {
  assert.deepEqual(chooseInterpreter({ ...base, setting: '', pythonExtension: undefined }), {
    command: 'python3',
    source: 'default',
  });
});

test('the setting expands ~, ${userHome}, ${workspaceFolder} and relative paths', () => {
  assert.equal(expandPythonPath('~/envs/a/bin/python', '/ws', '/home/u'), '/home/u/envs/a/bin/python');
  assert.equal(expandPythonPath('${userHome}/py', '/ws', '/home/u'), '/home/u/py');
  assert.equal(expandPythonPath('${workspaceFolder}/.venv/bin/python', '/ws', '/home/u'), '/ws/.venv/bin/python');
  assert.equal(expandPythonPath('.venv/bin/python', '/ws', '/home/u'), '/ws/.venv/bin/python');
  assert.equal(expandPythonPath('python3.11', '/ws', '/home/u'), 'python3.11', 'a bare name stays a PATH lookup');
});

test('restart only when the interpreter itself changes', () => {
  const first = { command: '/ws/.venv/bin/python', source: 'python-extension' as const };
  assert.equal(interpreterChanged(undefined, first), true, 'nothing running yet');
  assert.equal(interpreterChanged(first, { command: '/ws/.venv/bin/python', source: 'setting' }), false);
  assert.equal(interpreterChanged(first, { command: '/ws/.venv/./bin//python', source: 'setting' }), false);
  assert.equal(interpreterChanged(first, { command: '/ws/.venv2/bin/python', source: 'python-extension' }), true);
});

test('the log says where the interpreter came from', () => {
  assert.match(describeInterpreter({ command: 'python3', source: 'default' }), /python3 \(default; set etviz\.pythonPath/);
});

test('the log line names every scope inspect() consulted, set or not', () => {
  const line = describeScopes({ defaultValue: '', globalValue: '/opt/py/bin/python' }, 'localhost:8080');
  assert.equal(
    line,
    'etviz.pythonPath in this remote window (localhost:8080): default "", global "/opt/py/bin/python", workspace unset, folder unset',
  );
  assert.match(describeScopes({ defaultValue: '' }, undefined), /^etviz\.pythonPath in this local window: /);
  assert.match(describeScopes(undefined, undefined), /not declared/);
});

test("the Machine settings file sits beside the remote data folder's User folder", () => {
  assert.equal(
    machineSettingsFile('/home/u/.vscode-server/data/User/globalStorage/etviz.etviz-lsp'),
    '/home/u/.vscode-server/data/Machine/settings.json',
  );
  assert.equal(machineSettingsFile('/srv/cs-data/User/globalStorage/etviz.etviz-lsp'), '/srv/cs-data/Machine/settings.json');
});

test('a remote window that fell back to python3 is told where the setting goes', () => {
  const fallback = { command: 'python3', source: 'default' as const };
  const advice = remoteFallbackAdvice(fallback, 'ssh-remote+box', '/home/u/.vscode-server/data/Machine/settings.json');
  assert.ok(advice?.includes('remote window (ssh-remote+box)'), advice);
  assert.ok(advice?.includes('Remote settings (the Machine settings file /home/u/.vscode-server/data/Machine/settings.json)'), advice);
  assert.equal(remoteFallbackAdvice(fallback, undefined, undefined), undefined, 'a local window reads its User settings');
  assert.equal(remoteFallbackAdvice({ command: '/opt/py', source: 'setting' }, 'wsl', undefined), undefined);
  assert.equal(remoteFallbackAdvice({ command: '/ws/.venv/bin/python', source: 'python-extension' }, 'wsl', undefined), undefined);
});

test('Windows: backslash paths, drive letters, python as the default', () => {
  assert.equal(expandPythonPath('~\\envs\\a\\Scripts\\python.exe', 'C:\\ws', 'C:\\Users\\Zoë Li', 'win32'),
    'C:\\Users\\Zoë Li\\envs\\a\\Scripts\\python.exe');
  assert.equal(expandPythonPath('.venv\\Scripts\\python.exe', 'C:\\My Work\\proj', 'C:\\Users\\u', 'win32'),
    'C:\\My Work\\proj\\.venv\\Scripts\\python.exe');
  assert.equal(expandPythonPath('D:\\py\\python.exe', 'C:\\ws', 'C:\\Users\\u', 'win32'), 'D:\\py\\python.exe');
  assert.equal(expandPythonPath('py', 'C:\\ws', 'C:\\Users\\u', 'win32'), 'py'); // on PATH
  const none = { setting: '', pythonExtension: undefined, workspaceFolder: 'C:\\ws' };
  assert.deepEqual(chooseInterpreter({ ...none, platform: 'win32' }), { command: 'python', source: 'default' });
  assert.deepEqual(chooseInterpreter({ ...none, platform: 'darwin' }), { command: 'python3', source: 'default' });
});

test('a setting naming a virtual environment folder means its interpreter', () => {
  const folders = new Set(['C:\\ws\\.venv', '/ws/.venv']);
  const isDirectory = (candidate: string) => folders.has(candidate);
  assert.equal(venvPython('C:\\ws\\.venv', 'win32'), 'C:\\ws\\.venv\\Scripts\\python.exe');
  assert.equal(chooseInterpreter({ setting: '${workspaceFolder}\\.venv', pythonExtension: undefined, workspaceFolder: 'C:\\ws',
    platform: 'win32', isDirectory }).command, 'C:\\ws\\.venv\\Scripts\\python.exe');
  assert.equal(chooseInterpreter({ setting: '${workspaceFolder}/.venv', pythonExtension: undefined, workspaceFolder: '/ws',
    platform: 'linux', isDirectory }).command, '/ws/.venv/bin/python');
  // a file stays what it names
  assert.equal(chooseInterpreter({ setting: '/ws/.venv/bin/python', pythonExtension: undefined, workspaceFolder: '/ws',
    platform: 'linux', isDirectory }).command, '/ws/.venv/bin/python');
});
