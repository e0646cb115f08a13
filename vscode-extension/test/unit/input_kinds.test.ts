import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DEFAULT_KINDS, describeKinds, isScript, isVisualizable, kindOf, parseInputKinds, readFilePatterns, suffixOf } from '../../src/input_kinds';

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

test('a suffix is read as the server reads it, and matched in any case', () => {
  assert.equal(suffixOf('/w/model.PTE'), '.PTE');
  assert.equal(suffixOf('C:\\w\\Model.Pt2'), '.Pt2');
  assert.equal(suffixOf('/w.d/model'), ''); // a dot in a folder name is no suffix
  assert.equal(suffixOf('/w/.pte'), ''); // a hidden file named .pte: no suffix (os.path.splitext)
  assert.equal(suffixOf('/w/..pte'), ''); // only dots before it: none either
  assert.equal(suffixOf('/w/m.tar.pte'), '.pte');
  assert.equal(kindOf('/w/model.PTE', DEFAULT_KINDS)?.suffix, '.pte');
  assert.equal(kindOf('/w/Model.Pt2', DEFAULT_KINDS)?.mayUnpickle, true);
  assert.equal(kindOf('/w/model.pte.json', DEFAULT_KINDS), undefined);
  assert.equal(isVisualizable('/w/.pte', DEFAULT_KINDS), false);
  assert.equal(isScript('/w/Export.PY'), true);
  assert.equal(isScript('/w/model.pte'), false);
  assert.equal(isScript('/w/notes.pyc'), false);
});

test('the document patterns are the kinds that are read, in any case', () => {
  assert.deepEqual(readFilePatterns(DEFAULT_KINDS), ['**/*.[pP][tT]2', '**/*.[pP][tT][eE]', '**/*.[eE][tT][rR][eE][cC][oO][rR][dD]']);
});
