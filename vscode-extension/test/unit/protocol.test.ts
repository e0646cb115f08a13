import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  buildInitializationOptions,
  buildLiveSettings,
  parseGraphEvent,
  parseNodesAtLine,
  parseRefreshErrors,
  parseSourceLine,
  shownGraphId,
  totalNodes,
} from '../../src/protocol';

const settings = { autoRefresh: true, allowPickle: false, timeout: 120, port: 0, numeric: 'onRun' as const, notDelegatedDiagnostics: true, prestartWorker: true, workerMode: 'auto' as const };

test('initializationOptions carry trust, interpreter, settings and the editor pid', () => {
  assert.deepEqual(buildInitializationOptions(settings, '/ws/.venv/bin/python', false, 4242), {
    trusted: false,
    allowPickle: false,
    pythonPath: '/ws/.venv/bin/python',
    autoRefresh: true,
    timeout: 120,
    clientPid: 4242,
    numeric: 'onRun',
    notDelegatedDiagnostics: true,
    prestartWorker: true,
    workerMode: 'auto',
  });
  const portable = buildInitializationOptions({ ...settings, workerMode: 'portable' }, 'python3', true, 1);
  assert.equal(portable.workerMode, 'portable'); // the server's worker then never forks
  const off = buildInitializationOptions({ ...settings, prestartWorker: false }, 'python3', true, 1);
  assert.equal(off.prestartWorker, false); // the server then starts its worker at the first run
});

test('allowPickle is sent only when the user opted in and the workspace is trusted', () => {
  const optedIn = { ...settings, allowPickle: true };
  assert.equal(buildInitializationOptions(optedIn, 'python3', true, 1).allowPickle, true);
  assert.equal(buildInitializationOptions(optedIn, 'python3', false, 1).allowPickle, false);
  assert.equal(buildInitializationOptions(settings, 'python3', true, 1).allowPickle, false);
});

test('port 0 means any port: not sent; a fixed port is', () => {
  assert.equal('port' in buildInitializationOptions(settings, 'python3', true, 1), false);
  assert.equal(buildInitializationOptions({ ...settings, port: 9100 }, 'python3', true, 1).port, 9100);
});

test('a visualize result without source takes the file it was asked for', () => {
  const event = parseGraphEvent(
    { url: 'http://127.0.0.1:1/?data=x', graphs: [{ id: 'forward', nodeCount: 57 }], elapsedMs: 812 },
    'file:///ws/export.py',
  );
  assert.deepEqual(event, {
    source: 'file:///ws/export.py',
    url: 'http://127.0.0.1:1/?data=x',
    graphs: [{ id: 'forward', nodeCount: 57 }],
    elapsedMs: 812,
    stale: false,
    inProgress: false,
  });
});

test('a failed rebuild keeps the stale graph and its error', () => {
  const event = parseGraphEvent({
    source: 'file:///ws/export.py',
    url: 'http://127.0.0.1:1/?data=x',
    graphs: [{ id: 'forward', nodeCount: 57 }],
    elapsedMs: 5,
    stale: true,
    error: 'export.py:7: ValueError: boom',
  });
  assert.equal(event?.stale, true);
  assert.equal(event?.error, 'export.py:7: ValueError: boom');
});

test('stages made so far are marked in progress', () => {
  const event = parseGraphEvent({ source: 'file:///ws/a.py', url: 'http://127.0.0.1:1/?data=p', graphs: [{ id: 'exported', nodeCount: 3 }], inProgress: true });
  assert.equal(event?.inProgress, true);
});

test('an error without any graph yet is still an event', () => {
  const event = parseGraphEvent({ source: 'file:///ws/a.py', url: '', graphs: [], error: 'a.py:1: SyntaxError' });
  assert.equal(event?.error, 'a.py:1: SyntaxError');
});

test('malformed payloads are rejected, not half-read', () => {
  for (const bad of [
    null,
    'x',
    [],
    { url: 'u', graphs: [] }, // no source at all
    { source: 's', url: 'u', graphs: [{ id: 1, nodeCount: 2 }] },
    { source: 's', url: 'u', graphs: 'many' },
    { source: 's', url: '', graphs: [] }, // nothing to show, nothing to report
  ]) {
    assert.equal(parseGraphEvent(bad), undefined, JSON.stringify(bad));
  }
});

test('totalNodes adds every graph of the collection', () => {
  assert.equal(totalNodes([{ id: 'a', nodeCount: 3 }, { id: 'b', nodeCount: 4 }]), 7);
  assert.equal(totalNodes([]), 0);
});

test('refresh errors are read from the answer; anything else means none', () => {
  assert.deepEqual(parseRefreshErrors({ refreshed: [], errors: ['a.py:3: ValueError: x', 7] }), ['a.py:3: ValueError: x']);
  assert.deepEqual(parseRefreshErrors({ refreshed: [{}] }), []);
  assert.deepEqual(parseRefreshErrors(null), []);
});

test('nodeAt answers the server really sends: nodes, namespaces, reveal URL; none on the line', () => {
  const url = 'http://127.0.0.1:8123/?data=x';
  assert.deepEqual(
    parseNodesAtLine({
      source: 'file:///w/export.py', graphId: 'g', nodeIds: ['conv2d', 7, '', 'relu'],
      namespaces: ['stem (Conv2d)', ''], graphs: [{ graphId: 'g', count: 2 }], url,
    }),
    { graphId: 'g', nodeIds: ['conv2d', 'relu'], namespaces: ['stem (Conv2d)', ''], source: 'file:///w/export.py', url },
  );
  // A line that made nothing: the server's empty answer has graphId null.
  assert.deepEqual(
    parseNodesAtLine({ source: null, graphId: null, nodeIds: [], namespaces: [], graphs: [] }),
    { graphId: '', nodeIds: [], namespaces: [] },
  );
  assert.equal(parseNodesAtLine({ nodeIds: ['a'] }), undefined, 'nodes of no graph');
  assert.equal(parseNodesAtLine(null), undefined);
  assert.equal(parseNodesAtLine({ graphId: 'g', nodeIds: ['a'], url: 'javascript:alert(1)' })?.url, undefined);
});

test('sourceOf answers: a file and a 0-based line, or the reason there is none', () => {
  assert.deepEqual(parseSourceLine({ uri: 'file:///w/model.py', line: 12, graphId: 'g' }), { uri: 'file:///w/model.py', line: 12 });
  assert.deepEqual(parseSourceLine({ uri: null, reason: 'no recorded source', graphId: 'g' }), { reason: 'no recorded source' });
  assert.deepEqual(
    parseSourceLine({ uri: null, reason: 'source file not found: /gone/net.py:3' }),
    { reason: 'source file not found: /gone/net.py:3' },
  );
  assert.deepEqual(parseSourceLine(null), { reason: 'no recorded source' });
  assert.deepEqual(parseSourceLine({ uri: 'file:///w/model.py', line: -1 }), { reason: 'no recorded source' });
  assert.deepEqual(parseSourceLine({ uri: 'file:///w/model.py', line: 1.5 }), { reason: 'no recorded source' });
  assert.deepEqual(parseSourceLine({ uri: '', line: 3 }), { reason: 'no recorded source' });
});

test('the graph a URL shows: its uiState, else the first graph', () => {
  const graphs = [{ id: 'exported', nodeCount: 3 }, { id: 'lowered', nodeCount: 2 }];
  const data = encodeURIComponent(JSON.stringify({ models: [], uiState: { paneStates: [{ selectedGraphId: 'lowered' }] } }));
  assert.equal(shownGraphId(`http://127.0.0.1:1/?etviz_token=t&data=${data}`, graphs), 'lowered');
  assert.equal(shownGraphId(`http://127.0.0.1:1/?data=${encodeURIComponent('{"models":[]}')}`, graphs), 'exported');
  assert.equal(shownGraphId('http://127.0.0.1:1/?data=%7Bbroken', graphs), 'exported');
  assert.equal(shownGraphId('not a url', []), undefined);
});

test('live settings carry timeout, auto-refresh, numeric, not-delegated diagnostics, and port 0 as "any free port"', () => {
  const live0 = { autoRefresh: false, timeout: 30, port: 0, numeric: 'off' as const, notDelegatedDiagnostics: false };
  assert.deepEqual(buildLiveSettings(live0), {
    etviz: { autoRefresh: false, timeout: 30, port: null, numeric: 'off', notDelegatedDiagnostics: false },
  });
  const live = buildLiveSettings({ ...live0, timeout: 600, port: 8123, numeric: 'onRun', notDelegatedDiagnostics: true });
  assert.equal(live.etviz.port, 8123);
});

test('a graph with a memory plan names its timeline; one without names none', () => {
  const base = { source: 'file:///ws/a.py', url: 'http://127.0.0.1:1/?data=p', graphs: [{ id: 'forward', nodeCount: 3 }] };
  assert.equal(parseGraphEvent({ ...base, memorySvg: '/cache/a.memory.svg' })?.memorySvg, '/cache/a.memory.svg');
  assert.equal(parseGraphEvent(base)?.memorySvg, undefined);
  assert.equal(parseGraphEvent({ ...base, memorySvg: 7 })?.memorySvg, undefined);
});
