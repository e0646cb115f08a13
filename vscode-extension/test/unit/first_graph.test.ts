import assert from 'node:assert/strict';
import { test } from 'node:test';
import { eventWithFirstGraph, topLevel, withFirstGraph } from '../../src/first_graph';
import { shownGraphId } from '../../src/protocol';

const models = { models: [{ url: '/cache/export_x-abc.json', adapterId: 'builtin_json' }] };
const url = `http://127.0.0.1:8123/?etviz_token=t0k&data=${encodeURIComponent(JSON.stringify(models))}`;
const graphs = [
  { id: 'ep @ x.py:5 (exported)', nodeCount: 900 },
  { id: 'edge @ x.py:8 (edge)', nodeCount: 950 },
  { id: 'lowered @ x.py:9 (lowered)', nodeCount: 40 },
];

function dataOf(shown: string): { models: unknown; uiState?: { paneStates: { selectedGraphId: string }[] } } {
  return JSON.parse(new URL(shown).searchParams.get('data') ?? 'null');
}

test('the panel opens on the last graph made, not the biggest', () => {
  const shown = withFirstGraph(url, graphs.map((g) => g.id), 'last');
  assert.equal(dataOf(shown).uiState?.paneStates[0]?.selectedGraphId, 'lowered @ x.py:9 (lowered)');
  assert.deepEqual(dataOf(shown).models, models.models, 'the models to load are kept');
  assert.equal(new URL(shown).searchParams.get('etviz_token'), 't0k', 'the token is kept');
  assert.equal(shownGraphId(shown, graphs), 'lowered @ x.py:9 (lowered)', 'the status bar counts that graph');
});

test('"first" opens on the first graph made', () => {
  const shown = withFirstGraph(url, graphs.map((g) => g.id), 'first');
  assert.equal(dataOf(shown).uiState?.paneStates[0]?.selectedGraphId, 'ep @ x.py:5 (exported)');
});

test('a URL that already has a view state (a reveal, a selection) is left alone', () => {
  const revealed = { ...models, uiState: { paneStates: [{ selectedGraphId: 'edge @ x.py:8 (edge)', selectedNodeId: 'n' }] } };
  const reveal = `http://127.0.0.1:8123/?etviz_token=t0k&data=${encodeURIComponent(JSON.stringify(revealed))}`;
  assert.equal(withFirstGraph(reveal, graphs.map((g) => g.id), 'last'), reveal);
  assert.equal(withFirstGraph('not a url', ['a'], 'last'), 'not a url');
  assert.equal(withFirstGraph(url, [], 'last'), url, 'no graphs: nothing to select');
});

test('the same graphs give the same URL, so a rebuild reloads in place', () => {
  const event = { source: 'file:///w/x.py', url, graphs, elapsedMs: 5, stale: false, inProgress: false };
  assert.equal(eventWithFirstGraph(event, 'last').url, eventWithFirstGraph({ ...event, elapsedMs: 9 }, 'last').url);
  const failed = { ...event, url: '', graphs: [], error: 'boom' };
  assert.deepEqual(eventWithFirstGraph(failed, 'last'), failed);
});

test('graphs nested in another (a .pte method\'s XNNPACK delegates, cond branches) are never the first shown', () => {
  const ids = ['forward', 'forward/XnnpackBackend #0', 'forward/XnnpackBackend #1'];
  assert.deepEqual(topLevel(ids), ['forward']);
  const pte = `http://127.0.0.1:8123/?etviz_token=t0k&data=${encodeURIComponent(JSON.stringify(models))}`;
  const chosen = JSON.parse(new URL(withFirstGraph(pte, ids, 'last')).searchParams.get('data') ?? '{}');
  assert.equal(chosen.uiState.paneStates[0].selectedGraphId, 'forward');
  const script = ['ep @ x.py:3 (exported)', 'ep @ x.py:3 (exported)/true_graph_0', 'lowered @ x.py:9 (lowered)'];
  assert.deepEqual(topLevel(script), ['ep @ x.py:3 (exported)', 'lowered @ x.py:9 (lowered)']);
  assert.deepEqual(topLevel(['a/b', 'c']), ['a/b', 'c'], 'a slash alone does not make a graph nested');
});
