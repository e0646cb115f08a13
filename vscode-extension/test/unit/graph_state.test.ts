import assert from 'node:assert/strict';
import { test } from 'node:test';
import { canonicalUri, isSameRun, panelAction, plural, sameSource, statusView } from '../../src/graph_state';
import type { GraphEvent } from '../../src/protocol';

const A = 'file:///ws/export%20net.py';
const B = 'file:///ws/other.py';

function ev(over: Partial<GraphEvent> = {}): GraphEvent {
  return {
    source: A,
    url: 'http://127.0.0.1:9/?data=1',
    graphs: [{ id: 'forward', nodeCount: 57 }],
    elapsedMs: 900,
    stale: false,
    inProgress: false,
    ...over,
  };
}

test('one file, however its URI is spelled', () => {
  assert.equal(sameSource('file:///ws/export%20net.py', 'file:///ws/export net.py'), true);
  assert.equal(sameSource('file:///c%3A/ws/a.py', 'FILE:///C:/ws/a.py'), true);
  assert.equal(sameSource(A, B), false);
  assert.equal(sameSource(undefined, A), false);
  assert.equal(canonicalUri('not a uri %zz'), 'not a uri %zz');
});

test('the visualized file reloads the panel; other files do not', () => {
  assert.deepEqual(panelAction(A, undefined, ev(), false), { kind: 'show', url: ev().url, banner: '', navigate: true });
  assert.deepEqual(panelAction(A, undefined, ev({ source: B }), false), { kind: 'ignore' });
  assert.deepEqual(panelAction(undefined, undefined, ev(), false), { kind: 'ignore' }, 'nothing asked for yet');
});

test('an explicit visualize switches the panel to the new file', () => {
  assert.equal(panelAction(A, ev(), ev({ source: B, elapsedMs: 3 }), true).kind, 'show');
});

test('a rebuild at the same URL is left to the server page reload; a new URL navigates', () => {
  const rebuilt = ev({ elapsedMs: 1200, graphs: [{ id: 'forward', nodeCount: 69 }] });
  assert.deepEqual(panelAction(A, ev(), rebuilt, false), { kind: 'show', url: ev().url, banner: '', navigate: false });
  const moved = ev({ elapsedMs: 1200, url: 'http://127.0.0.1:10/?data=1' });
  assert.deepEqual(panelAction(A, ev(), moved, false), { kind: 'show', url: moved.url, banner: '', navigate: true });
  assert.equal((panelAction(A, undefined, rebuilt, false) as { navigate: boolean }).navigate, true, 'restored panel');
});

test('the command result and the notification of one run apply once', () => {
  assert.equal(isSameRun(ev(), ev({ source: 'file:///ws/export net.py' })), true);
  assert.deepEqual(panelAction(A, ev(), ev(), false), { kind: 'ignore' });
  assert.equal(isSameRun(ev(), ev({ graphs: [{ id: 'forward', nodeCount: 58 }] })), false);
});

test('a failed rebuild keeps the graph on screen and shows the error above it', () => {
  const failed = ev({ stale: true, error: 'export net.py:7: ValueError: boom\nTraceback...', elapsedMs: 20 });
  assert.deepEqual(panelAction(A, ev(), failed, false), {
    kind: 'banner',
    banner: 'export net.py:7: ValueError: boom\n(showing the last graph that built)',
  });
  const first = ev({ url: '', graphs: [], error: 'export net.py:1: SyntaxError: bad' });
  assert.deepEqual(panelAction(A, undefined, first, true), { kind: 'banner', banner: 'export net.py:1: SyntaxError: bad' });
});

test('stages in progress show, the final graphs replace them, a failure goes back to the last good graph', () => {
  const good = ev();
  const partial = ev({ url: 'http://127.0.0.1:9/?data=partial', graphs: [{ id: 'exported', nodeCount: 40 }], elapsedMs: 300, inProgress: true });
  assert.deepEqual(panelAction(A, good, partial, false), { kind: 'show', url: partial.url, banner: '', navigate: true });
  const more = ev({ url: partial.url, graphs: [{ id: 'exported', nodeCount: 40 }, { id: 'quantized', nodeCount: 60 }], elapsedMs: 900, inProgress: true });
  assert.equal(panelAction(A, partial, more, false).kind, 'show', 'each new stage updates the panel');
  const final = ev({ elapsedMs: 2000, graphs: more.graphs });
  assert.deepEqual(panelAction(A, more, final, false), { kind: 'show', url: final.url, banner: '', navigate: true });
  const failed = ev({ stale: true, error: 'boom', elapsedMs: 5 });
  assert.deepEqual(panelAction(A, more, failed, false), {
    kind: 'show', url: good.url, banner: 'boom\n(showing the last graph that built)', navigate: true,
  });
  assert.equal(isSameRun(partial, { ...partial, inProgress: false }), false);
});

test('status bar: stages made so far while the run goes on', () => {
  const view = statusView({ phase: 'ready', building: false, graph: ev({ inProgress: true, graphs: [{ id: 'exported', nodeCount: 40 }] }) });
  assert.equal(view.text, '$(sync~spin) etviz: 1 stage so far');
});

test('after a failure, the next good build clears the banner', () => {
  const failed = ev({ stale: true, error: 'boom', elapsedMs: 20 });
  assert.deepEqual(panelAction(A, failed, ev({ elapsedMs: 30 }), false), {
    kind: 'show',
    url: ev().url,
    banner: '',
    navigate: false,
  });
});

test('status bar: node count of the graph, tooltip per graph', () => {
  const view = statusView({ phase: 'ready', building: false, graph: ev({ graphs: [{ id: 'forward', nodeCount: 1200 }, { id: 'true_graph_0', nodeCount: 1 }] }) });
  assert.equal(view.text, '$(type-hierarchy) 1,201 nodes');
  assert.equal(view.tooltip, 'export net.py, built in 0.9 s\nforward: 1,200 nodes\ntrue_graph_0: 1 node');
  assert.equal(view.error, false);
});

test('status bar: building, error, no interpreter, starting', () => {
  assert.match(statusView({ phase: 'ready', building: true, graph: ev() }).text, /sync~spin.*building/);
  const failed = statusView({ phase: 'ready', building: false, graph: ev({ stale: true, error: 'export net.py:7: ValueError: boom' }) });
  assert.equal(failed.error, true);
  assert.equal(failed.tooltip, 'export net.py: export net.py:7: ValueError: boom (showing the last good graph)');
  const missing = statusView({ phase: 'no-interpreter', building: false, problem: '/usr/bin/python3 is Python 3.9: the etviz extension\'s server runs on Python 3.10 to 3.14' });
  assert.deepEqual(missing, { text: '$(error) etviz', tooltip: 'etviz: /usr/bin/python3 is Python 3.9: the etviz extension\'s server runs on Python 3.10 to 3.14', error: true });
  assert.match(statusView({ phase: 'starting', building: false }).text, /sync~spin/);
});

test('plural', () => {
  assert.equal(plural(1, 'node'), '1 node');
  assert.equal(plural(0, 'node'), '0 nodes');
});
