// The compare view's pure logic on a correspondence shaped as the worker writes it (the
// origins below are those of examples/quantize_and_lower.py: exported -> lowered), and the
// compare page's real script run in a vm.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as vm from 'node:vm';
import { counterparts, defaultPair, parseCompareAnswer, syncNote } from '../../src/compare';
import { buildCompareHtml } from '../../src/compare_html';

const ORIGIN = 'http://127.0.0.1:8123';
const node = (origins: string[], kind = 'op', delegated = false) => ({ origins, kind, delegated });

const answer = {
  source: 'file:///w/quantize_and_lower.py',
  stages: [
    { graphId: 'captured (exported)', stage: 'exported', url: `${ORIGIN}/?data=a` },
    { graphId: 'edge (edge)', stage: 'edge', url: `${ORIGIN}/?data=b` },
    { graphId: 'lowered (lowered)', stage: 'lowered', url: `${ORIGIN}/?data=c` },
  ],
  correspondence: {
    version: 1,
    stages: [
      { graphId: 'captured (exported)', stage: 'exported', nodes: {
        conv2d: node(['conv2d@0']), relu: node(['relu@0']), cumsum: node(['cumsum@0']), linear: node(['linear@0']),
      } },
      { graphId: 'edge (edge)', stage: 'edge', nodes: {
        aten_permute_copy_default: node(['linear@0']), aten_addmm_default: node(['linear@0']),
      } },
      { graphId: 'lowered (lowered)', stage: 'lowered', nodes: {
        'lowered_module_0/quantized_decomposed_dequantize_per_tensor_default_1': node(['relu@0'], 'qdq', true),
        'lowered_module_0/aten_convolution_default': node(['conv2d@0'], 'op', true),
        'lowered_module_0/aten_relu_default': node(['relu@0'], 'op', true),
        getitem_2: node(['relu@0'], 'wrapper'),
        aten_cumsum_default: node(['cumsum@0']),
        'lowered_module_2/aten_linear_default': node(['linear@0'], 'op', true),
      } },
    ],
    pairs: [],
  },
};

test('the answer is parsed with each stage holding its nodes; first and last are the default pair', () => {
  const parsed = parseCompareAnswer(answer);
  assert.ok(parsed);
  assert.deepEqual(parsed.stages.map((s) => s.stage), ['exported', 'edge', 'lowered']);
  assert.equal(parsed.stages[2].nodes.get('aten_cumsum_default')?.delegated, false);
  assert.deepEqual(defaultPair(parsed.stages), [0, 2]);
});

test('malformed answers are refused, and one stage is nothing to compare', () => {
  assert.equal(parseCompareAnswer(null), undefined);
  assert.equal(parseCompareAnswer({ source: 'x', stages: [{ graphId: 1 }] }), undefined);
  assert.equal(parseCompareAnswer({ ...answer, stages: answer.stages.slice(0, 1) }), undefined);
});

test('a conv of the exported graph is the conv inside the XNNPACK partition of the lowered one', () => {
  const [exported, , lowered] = parseCompareAnswer(answer)!.stages;
  assert.deepEqual(counterparts(exported, 'conv2d', lowered), ['lowered_module_0/aten_convolution_default']);
  assert.deepEqual(counterparts(lowered, 'lowered_module_0/aten_convolution_default', exported), ['conv2d']);
  assert.deepEqual(counterparts(exported, 'cumsum', lowered), ['aten_cumsum_default']);
});

test('counterparts: same kind first, then ops before q/dq; delegate wrappers are nobody\'s', () => {
  const [exported, , lowered] = parseCompareAnswer(answer)!.stages;
  assert.deepEqual(counterparts(exported, 'relu', lowered), [
    'lowered_module_0/aten_relu_default',
    'lowered_module_0/quantized_decomposed_dequantize_per_tensor_default_1',
  ]);
  // A q/dq selected in the lowered graph goes to the op it quantizes when there is no q/dq.
  assert.deepEqual(counterparts(lowered, 'lowered_module_0/quantized_decomposed_dequantize_per_tensor_default_1', exported), ['relu']);
  assert.deepEqual(counterparts(lowered, 'getitem_2', exported), ['relu']);
  assert.deepEqual(counterparts(exported, 'unknown', lowered), []);
});

test('a decomposed op maps one to many, any two stages, and the note says so', () => {
  const [exported, edge, lowered] = parseCompareAnswer(answer)!.stages;
  const parts = counterparts(exported, 'linear', edge);
  assert.deepEqual(parts, ['aten_permute_copy_default', 'aten_addmm_default']);
  assert.match(syncNote('linear', exported, parts, edge), /is aten_permute_copy_default in edge \(1 of 2/);
  assert.deepEqual(counterparts(edge, 'aten_addmm_default', lowered), ['lowered_module_2/aten_linear_default']);
  assert.match(syncNote('x', exported, [], lowered), /has no counterpart in lowered/);
});

function loadComparePage() {
  const html = buildCompareHtml([{ title: 'exported', url: `${ORIGIN}/?a` }, { title: 'lowered', url: `${ORIGIN}/?b` }], ORIGIN, 'N');
  const script = /<script nonce="N">([\s\S]*?)<\/script>/.exec(html)?.[1];
  assert.ok(script);
  assert.equal((html.match(/<iframe /g) ?? []).length, 2);
  assert.match(html, /frame-src http:\/\/127\.0\.0\.1:8123/);
  const toExtension: unknown[] = [];
  const toFrames: Array<Array<{ message: unknown; origin: string }>> = [[], []];
  const windows = toFrames.map((sink) => ({ postMessage: (message: unknown, origin: string) => sink.push({ message, origin }) }));
  let listener: ((event: { data: unknown; origin: string; source: unknown }) => void) | undefined;
  vm.runInNewContext(script, {
    acquireVsCodeApi: () => ({ postMessage: (m: unknown) => toExtension.push(m) }),
    document: { getElementById: (id: string) => ({ frame0: { contentWindow: windows[0] }, frame1: { contentWindow: windows[1] } })[id] ?? null },
    window: { addEventListener: (_type: string, fn: typeof listener) => (listener = fn) },
  });
  assert.ok(listener);
  return { toExtension, toFrames, windows, send: listener };
}

test('the compare page says which frame the user selected in, and selects in the frame asked for', () => {
  const page = loadComparePage();
  page.send({ data: { cmd: 'model-explorer-node-selected', nodeId: 'conv2d' }, origin: ORIGIN, source: page.windows[0] });
  page.send({ data: { cmd: 'model-explorer-node-selected', nodeId: 'x' }, origin: 'http://evil.example', source: page.windows[1] });
  assert.deepEqual(JSON.parse(JSON.stringify(page.toExtension)), [{ type: 'nodeSelected', side: 0, nodeId: 'conv2d' }]);
  page.send({ data: { type: 'selectNode', side: 1, nodeId: 'lowered_module_0/aten_convolution_default' }, origin: 'vscode-webview://x', source: null });
  assert.deepEqual(page.toFrames[0], []);
  assert.deepEqual(JSON.parse(JSON.stringify(page.toFrames[1])), [{
    message: { cmd: 'model-explorer-select-node-by-node-id', nodeId: 'lowered_module_0/aten_convolution_default' }, origin: ORIGIN,
  }]);
});
