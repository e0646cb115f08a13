// The memory timeline page (issue 28): the SVG the server writes, inlined under the page's
// policy, and the page's real script (taken from buildMemoryHtml) run in a vm: a click on a
// bar (or on the op name drawn inside it) tells the extension which node made the tensor.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as vm from 'node:vm';
import { barClicked, barNote, buildMemoryHtml, inlineSvg } from '../../src/memory_timeline';

// As graph/memory/memory_svg.py writes it: a style element, bars with the node that made them.
const SVG =
  '<?xml version="1.0" encoding="UTF-8"?>\n' +
  '<svg xmlns="http://www.w3.org/2000/svg" width="900" height="200">' +
  '<style>rect.tensor:hover{stroke:#000;stroke-width:3px}</style>' +
  '<g class="panel"><rect class="tensor" x="10" y="20" width="50" height="10" data-node-id="aten_convolution_default" data-graph-id="forward"><title>conv out</title></rect>' +
  '<text class="op">convolution</text></g></svg>';

test('the SVG goes in without its prolog, its style allowed by the page nonce', () => {
  const inlined = inlineSvg(SVG, 'N');
  assert.ok(inlined.startsWith('<svg '));
  assert.ok(inlined.includes('<style nonce="N">rect.tensor:hover'));
  assert.ok(inlined.includes('data-node-id="aten_convolution_default"'));
});

test('no script or event handler of a file reaches the page', () => {
  const hostile = SVG.replace('<g class="panel">', '<script>alert(1)</script><g class="panel" onclick="alert(2)">');
  const html = buildMemoryHtml(hostile, 'Memory: m.pte', 'N');
  assert.ok(!html.includes('alert('));
  assert.ok(html.includes('script-src &#39;nonce-N&#39;') && html.includes('default-src &#39;none&#39;'));
  assert.equal((html.match(/<script/g) ?? []).length, 1); // ours, with the nonce
});

type Target = { closest: (selector: string) => unknown };

function loadPage() {
  const html = buildMemoryHtml(SVG, 'Memory: m.pte', 'N');
  const script = /<script nonce="N">([\s\S]*?)<\/script>/.exec(html)?.[1];
  assert.ok(script);
  const toExtension: unknown[] = [];
  let onClick: ((event: { target: Target | null }) => void) | undefined;
  const context = {
    acquireVsCodeApi: () => ({ postMessage: (m: unknown) => toExtension.push(m) }),
    document: { addEventListener: (_type: string, fn: typeof onClick) => (onClick = fn) },
  };
  vm.runInNewContext(script, context);
  assert.ok(onClick);
  return { toExtension, click: (target: Target | null) => onClick!({ target }) };
}

function element(attrs: Record<string, string>, inside?: Record<string, string>): Target {
  const bar = { getAttribute: (name: string) => attrs[name] ?? null };
  // `closest` finds the bar from the bar itself or from the op name drawn in it
  return { closest: (selector: string) => (selector === '[data-node-id]' && (attrs['data-node-id'] || inside) ? bar : null) };
}

test('a click on a bar names its node and graph to the extension', () => {
  const page = loadPage();
  page.click(element({ 'data-node-id': 'aten_convolution_default', 'data-graph-id': 'forward' }));
  const sent = JSON.parse(JSON.stringify(page.toExtension));
  assert.deepEqual(sent, [{ type: 'barClicked', nodeId: 'aten_convolution_default', graphId: 'forward' }]);
  assert.deepEqual(barClicked(sent[0]), { nodeId: 'aten_convolution_default', graphId: 'forward' });
});

test('a click beside the bars sends nothing', () => {
  const page = loadPage();
  page.click(element({}));
  page.click(null);
  assert.deepEqual(page.toExtension, []);
});

test('only a bar click with a node is taken', () => {
  assert.equal(barClicked({ type: 'barClicked', nodeId: '', graphId: 'forward' }), undefined);
  assert.equal(barClicked({ type: 'other', nodeId: 'n', graphId: 'g' }), undefined);
  assert.equal(barClicked(undefined), undefined);
  const target = { nodeId: 'n', graphId: 'g' };
  assert.equal(barNote(target, true), 'etviz: selected n in g');
  assert.ok(barNote(target, false).includes('does not show'));
});
