import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DEFAULT_KINDS, describeKinds, isVisualizable, parseInputKinds } from '../../src/input_kinds';

const answer = {
  etviz: {
    inputKinds: [
      { suffix: '.py', runsScript: true, needsTrust: true, mayUnpickle: false },
      { suffix: '.pte', runsScript: false, needsTrust: false, mayUnpickle: false },
    ],
  },
};

test('the server’s kinds are read from the experimental capability', () => {
  const kinds = parseInputKinds(answer);
  assert.deepEqual(kinds?.map((k) => k.suffix), ['.py', '.pte']);
  assert.equal(kinds?.[0].needsTrust, true);
  assert.equal(isVisualizable('/w/model.pte', kinds ?? []), true);
  assert.equal(isVisualizable('/w/model.pt2', kinds ?? []), false); // this server does not say .pt2
});

test('a missing or malformed answer falls back (undefined), never half-parsed', () => {
  assert.equal(parseInputKinds(undefined), undefined);
  assert.equal(parseInputKinds({}), undefined);
  assert.equal(parseInputKinds({ etviz: { inputKinds: [] } }), undefined);
  assert.equal(parseInputKinds({ etviz: { inputKinds: [{ suffix: '../x' }] } }), undefined);
  assert.equal(parseInputKinds({ etviz: { inputKinds: [{ suffix: 3 }] } }), undefined);
});

test('the defaults match the server table and read as one sentence', () => {
  assert.deepEqual(DEFAULT_KINDS.map((k) => k.suffix), ['.py', '.pt2', '.pte', '.etrecord']);
  assert.equal(isVisualizable('/w/M.ETRECORD', DEFAULT_KINDS), true);
  assert.equal(isVisualizable('/w/model.onnx', DEFAULT_KINDS), false);
  assert.equal(describeKinds(DEFAULT_KINDS), 'a Python export script or a .pt2, .pte or .etrecord file');
});
