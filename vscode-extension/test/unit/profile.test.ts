import assert from 'node:assert/strict';
import { test } from 'node:test';
import { nodeDataOf, parseProfileAnswer, profileMessage, profileSettings } from '../../src/profile';

const data = { models: [{ url: '/c/m.json', adapterId: 'builtin_json' }], nodeData: ['/c/m.data/latency-avg.json'], nodeDataTargets: ['m'] };
const url = `http://127.0.0.1:8123/?etviz_token=t&data=${encodeURIComponent(JSON.stringify(data))}`;
const answer = {
  source: 'file:///w/q.py',
  url,
  graphs: [{ id: 'et @ q.py:31 (program)', nodeCount: 4 }],
  elapsedMs: 900,
  stale: false,
  inProgress: false,
  profile: { runs: 7 },
  summary: '7 runs on this machine, 84 events attributed, 0 not attributed; slowest op XNNConv2d',
};

test('profile settings: the three modes, anything else is "command"; iterations a positive integer', () => {
  assert.deepEqual(profileSettings('onSave', 5), { profile: 'onSave', profileIterations: 5, profileNumericGap: false });
  assert.deepEqual(profileSettings('off', 1, true), { profile: 'off', profileIterations: 1, profileNumericGap: true });
  assert.deepEqual(profileSettings('always', 0, 'yes'), { profile: 'command', profileIterations: 20, profileNumericGap: false });
  assert.deepEqual(profileSettings(undefined, 2.5), { profile: 'command', profileIterations: 20, profileNumericGap: false });
});

test('a profile answer is a graph event plus its summary; the URL names the node data', () => {
  const parsed = parseProfileAnswer(answer, 'file:///w/q.py');
  assert.ok(parsed !== undefined);
  assert.equal(parsed.event.url, url);
  assert.equal(parsed.summary, answer.summary);
  assert.deepEqual(nodeDataOf(parsed.event.url), ['/c/m.data/latency-avg.json']);
  assert.equal(profileMessage('q.py', parsed), `etviz: profiled q.py: ${answer.summary}`);
});

test('an answer with no page or a URL without node data says so, never half-read', () => {
  assert.equal(parseProfileAnswer({ ...answer, url: '' }, 'file:///w/q.py'), undefined);
  assert.equal(parseProfileAnswer('nonsense', 'file:///w/q.py'), undefined);
  const plain = parseProfileAnswer({ ...answer, url: 'http://127.0.0.1:1/?data=%7B%7D', summary: 3 }, 'file:///w/q.py');
  assert.ok(plain !== undefined);
  assert.equal(profileMessage('q.py', plain), 'etviz: profiled q.py: done (no latency data to show)');
  assert.deepEqual(nodeDataOf('not a url'), []);
});
