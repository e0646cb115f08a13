import assert from 'node:assert/strict';
import { test } from 'node:test';
import { serverIdentity, versionMismatch } from '../../src/version_check';

const answer = (version: unknown, location?: unknown) => ({
  serverInfo: { name: 'etviz-lsp', version },
  capabilities: { experimental: { etviz: { inputKinds: [], ...(location === undefined ? {} : { server: { version, location } }) } } },
});

test('the same build: no message', () => {
  assert.equal(versionMismatch('0.1.0', serverIdentity(answer('0.1.0', '/ext/bundled/tool/etviz_lsp')), '/venv/bin/python'), undefined);
});

test('an older server imported first is named with where it came from', () => {
  const message = versionMismatch('0.1.0', serverIdentity(answer('0.0.9', '/venv/lib/python3.11/site-packages/etviz_lsp')), '/venv/bin/python');
  assert.equal(
    message,
    '/venv/bin/python started etviz-lsp 0.0.9 (imported from /venv/lib/python3.11/site-packages/etviz_lsp), not the etviz-lsp 0.1.0 ' +
      'this extension carries: something in that environment imports another etviz_lsp first (a sitecustomize or .pth file, PYTHONPATH). ' +
      'Remove it, or choose another interpreter',
  );
});

test('an old server that says only its version, or nothing', () => {
  assert.match(versionMismatch('0.1.0', serverIdentity(answer('0.0.5')), 'python3') ?? '', /^python3 started etviz-lsp 0\.0\.5, not the etviz-lsp 0\.1\.0/);
  assert.match(versionMismatch('0.1.0', serverIdentity({ capabilities: {} }), 'python3') ?? '', /^python3 started a server that does not say its version, not/);
  assert.deepEqual(serverIdentity(undefined), { version: undefined, location: undefined });
  assert.deepEqual(serverIdentity(answer(7, 8)), { version: undefined, location: undefined });
});
