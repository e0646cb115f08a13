// Real interpreters, real imports: the check must tell "not installed" from "no python".
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { checkModule, installCommand } from '../../src/module_check';

const dir = mkdtempSync(join(tmpdir(), 'etviz-modcheck-'));
mkdirSync(join(dir, 'etviz_probe_pkg'));
writeFileSync(join(dir, 'etviz_probe_pkg', '__init__.py'), 'raise RuntimeError("must not be imported")\n');
after(() => rmSync(dir, { recursive: true, force: true }));

test('an importable package is found without importing it', async () => {
  const env = { ...process.env, PYTHONPATH: dir };
  assert.deepEqual(await checkModule('python3', { moduleName: 'etviz_probe_pkg', env }), { kind: 'ok' });
});

test('a package the interpreter lacks is reported as missing', async () => {
  const env = { ...process.env, PYTHONPATH: dir };
  assert.deepEqual(await checkModule('python3', { moduleName: 'etviz_probe_absent', env }), { kind: 'missing' });
});

test("the check looks from the server's working folder, not the editor's", async () => {
  // A package beside the editor's own cwd is not one `python -m etviz_lsp` in the folder sees.
  const elsewhere = join(dir, 'workspace');
  mkdirSync(elsewhere, { recursive: true });
  const env = { ...process.env, PYTHONPATH: '' };
  assert.deepEqual(await checkModule('python3', { moduleName: 'etviz_probe_pkg', env, cwd: dir }), { kind: 'ok' });
  assert.deepEqual(await checkModule('python3', { moduleName: 'etviz_probe_pkg', env, cwd: elsewhere }), { kind: 'missing' });
});

test('an interpreter that does not exist is reported as such', async () => {
  const result = await checkModule(join(dir, 'no-such-python'));
  assert.equal(result.kind, 'no-python');
  assert.match((result as { message: string }).message, /no-such-python: not found/);
});

test('a program that is not python is an error with its message', async () => {
  const result = await checkModule('false');
  assert.equal(result.kind, 'error');
});

test('the install command quotes interpreter paths with spaces', () => {
  assert.equal(installCommand('/usr/bin/python3'), '/usr/bin/python3 -m pip install etviz-lsp');
  assert.equal(installCommand('/home/u/My Envs/py'), '"/home/u/My Envs/py" -m pip install etviz-lsp');
});
