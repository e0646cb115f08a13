import assert from 'node:assert/strict';
import { test } from 'node:test';
import { chooseFrameUrl, mapsToRoot, originOf, originRoot } from '../../src/frame_url';

const direct = 'http://127.0.0.1:8123/?data=%7B%22models%22%3A%5B%5D%7D#x';

test('originRoot and originOf keep scheme, host and port only', () => {
  assert.equal(originRoot(direct), 'http://127.0.0.1:8123/');
  assert.equal(originOf(direct), 'http://127.0.0.1:8123');
});

test("code-server's /proxy/PORT/ is a path proxy: auto keeps the direct URL", () => {
  const external = 'https://editor.example/proxy/8123/';
  assert.equal(mapsToRoot(external), false);
  assert.equal(chooseFrameUrl(direct, external, 'auto'), direct);
});

test('a forwarded port serves the root: auto moves path, query and hash onto it', () => {
  assert.equal(
    chooseFrameUrl(direct, 'http://localhost:54321/', 'auto'),
    'http://localhost:54321/?data=%7B%22models%22%3A%5B%5D%7D#x',
  );
  assert.equal(
    chooseFrameUrl('http://127.0.0.1:8123/api/x?a=1', 'https://8123-box.app.github.dev', 'auto'),
    'https://8123-box.app.github.dev/api/x?a=1',
  );
});

test('always uses the external URL even behind a path proxy; never ignores it', () => {
  assert.equal(
    chooseFrameUrl(direct, 'https://editor.example/proxy/8123/', 'always'),
    'https://editor.example/proxy/8123/?data=%7B%22models%22%3A%5B%5D%7D#x',
  );
  assert.equal(chooseFrameUrl(direct, 'http://localhost:54321/', 'never'), direct);
});

test('no external URL (asExternalUri failed or was not asked): the direct URL', () => {
  assert.equal(chooseFrameUrl(direct, undefined, 'always'), direct);
});
