// Real interpreters running stand-in launchers (the real one is run by
// tests/test_bundled_server.py): a report is read through noise, a refusal is told in the
// launcher's own words, a missing interpreter or launcher apart.
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, test } from 'node:test';
import { bundledServer, checkInterpreter, parseReport } from '../../src/interpreter_check';

const dir = mkdtempSync(join(tmpdir(), 'etviz-interp-'));
after(() => rmSync(dir, { recursive: true, force: true }));
// out/test/unit/ -> the extension's folder
const LAUNCHER = bundledServer(resolve(__dirname, '..', '..', '..'), '0.1.0').launcher;

/** A stand-in launcher: answers like the real one's --check, or refuses like it. */
function fakeLauncher(name: string, body: string): string {
  const file = join(dir, name);
  writeFileSync(file, body);
  chmodSync(file, 0o644);
  return file;
}

test('the report of a Python that lacks torch names it, and the bundled server version', async () => {
  const launcher = fakeLauncher('report.py', [
    'import json, sys',
    'print("noise first")',
    'print(json.dumps({"python": sys.executable, "version": "3.11.7", "missing": ["torch"],',
    '  "message": sys.executable + ": torch is not installed", "server": "0.1.0"}))',
  ].join('\n'));
  const result = await checkInterpreter('python3', launcher);
  assert.equal(result.kind, 'ok');
  const report = (result as { report: { missing: string[]; message: string; server: string } }).report;
  assert.deepEqual(report.missing, ['torch']);
  assert.match(report.message, /: torch is not installed$/);
  assert.equal(report.server, '0.1.0');
});

test('a Python the launcher refuses is an error in its own words', async () => {
  const launcher = fakeLauncher('old.py', 'import sys\nsys.stderr.write(sys.executable + " is Python 3.9: too old\\n")\nsys.exit(3)\n');
  const result = await checkInterpreter('python3', launcher);
  assert.equal(result.kind, 'error');
  assert.match((result as { message: string }).message, /is Python 3\.9: too old$/);
});

test('an interpreter that does not exist is reported as such', async () => {
  const result = await checkInterpreter(join(dir, 'no-such-python'), LAUNCHER);
  assert.deepEqual(result, { kind: 'no-python', message: `${join(dir, 'no-such-python')}: not found` });
});

test('a launcher that is not there is an error naming the interpreter', async () => {
  const result = await checkInterpreter('python3', join(dir, 'missing', 'launch.py'));
  assert.equal(result.kind, 'error');
  assert.match((result as { message: string }).message, /python3: can't open file .*launch\.py/);
});

test('reports are validated', () => {
  assert.equal(parseReport('not json'), undefined);
  assert.equal(parseReport('{"python": "p", "version": "3", "missing": "torch", "message": null, "server": "1"}'), undefined);
  assert.deepEqual(parseReport('{"python": "p", "version": "3", "missing": [], "message": null, "server": "1"}'), {
    python: 'p', version: '3', missing: [], message: null, server: '1',
  });
});
