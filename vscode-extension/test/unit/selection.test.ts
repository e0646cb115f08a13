import assert from 'node:assert/strict';
import { test } from 'node:test';
import { EchoFilter, noSourceNote, planSelection, selectionNote } from '../../src/selection';

const block = {
  graphId: 'exported',
  nodeIds: ['conv2d_1', 'batch_norm', 'relu', 'add'],
  namespaces: ['stages/0 (Block)/body (Sequential)/0 (Conv2d)', '', '', ''],
  url: 'http://127.0.0.1:8123/?data=reveal',
};

test('nodes of the graph on screen are selected by message (Model Explorer expands their layers)', () => {
  assert.deepEqual(planSelection(block, 'exported'), { kind: 'post', nodeId: 'conv2d_1' });
  // Not known which graph the page opened on (no URL yet): try the message.
  assert.deepEqual(planSelection(block, undefined), { kind: 'post', nodeId: 'conv2d_1' });
});

test('nodes of another graph of the collection: load the server URL that selects them', () => {
  assert.deepEqual(planSelection(block, 'lowered'), { kind: 'navigate', url: block.url, nodeId: 'conv2d_1' });
  const noUrl = { ...block, url: undefined };
  const plan = planSelection(noUrl, 'lowered');
  assert.equal(plan.kind, 'none');
  assert.match(plan.kind === 'none' ? plan.why : '', /conv2d_1 is in graph exported, not in lowered/);
});

test('a line with no node plans nothing', () => {
  assert.equal(planSelection({ graphId: '', nodeIds: [], namespaces: [] }, 'exported').kind, 'none');
});

test('status notes: several nodes say how many and which was selected; lines count from 1', () => {
  assert.equal(selectionNote(block, 16), 'etviz: line 17 made 4 ops in exported; selected the first, conv2d_1');
  assert.equal(selectionNote({ ...block, nodeIds: ['linear'] }, 31), 'etviz: selected linear in exported');
  assert.equal(selectionNote({ graphId: '', nodeIds: [], namespaces: [] }, 2), 'etviz: line 3 made no op in the graph');
  assert.equal(selectionNote(block, undefined), 'etviz: this line made 4 ops in exported; selected the first, conv2d_1');
  assert.equal(noSourceNote('p_head_weight', 'no recorded source'), 'etviz: p_head_weight: no recorded source');
});

test('the page announcing the node we selected is an echo, once; the user clicking is not', () => {
  const echoes = new EchoFilter(1000);
  assert.equal(echoes.isEcho('relu', 0), false, 'nothing expected');
  echoes.expect('relu', 0);
  assert.equal(echoes.isEcho('relu', 500), true);
  assert.equal(echoes.isEcho('relu', 600), false, 'consumed: a second announcement is the user');
  echoes.expect('relu', 0);
  assert.equal(echoes.isEcho('linear', 100), false, 'another node: the user');
  echoes.expect('relu', 0);
  assert.equal(echoes.isEcho('relu', 1001), false, 'too late: the user clicked it again');
  echoes.expect('relu', 0, 30000);
  assert.equal(echoes.isEcho('relu', 20000), true, 'a longer window while a page loads');
});
