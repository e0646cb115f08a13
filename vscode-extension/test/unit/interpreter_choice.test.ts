import assert from 'node:assert/strict';
import { test } from 'node:test';
import { chooseInterpreter, describeInterpreter, expandPythonPath, interpreterChanged } from '../../src/interpreter_choice';

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
