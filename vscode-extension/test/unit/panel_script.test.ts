// Runs the panel page's real script (taken from buildPanelHtml) in a vm with a minimal
// stand-in for the DOM and the webview API, and checks what it does with messages.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as vm from 'node:vm';
import { buildPanelHtml } from '../../src/webview_html';

const ORIGIN = 'http://127.0.0.1:8123';

// Objects made inside the vm have the vm's prototypes: compare plain copies.
const plain = (value: unknown): unknown => JSON.parse(JSON.stringify(value));

type Listener = (event: { data: unknown; origin: string; source: unknown }) => void;

/** `empty`: a panel with no graph yet (no URL, no Model Explorer origin). */
function loadPage(empty = false) {
  const url = empty ? undefined : `${ORIGIN}/?data=1`;
  const frameOrigin = empty ? undefined : ORIGIN;
  const html = buildPanelHtml({ source: 'file:///w/export.py', url }, frameOrigin, 'N');
  const script = /<script nonce="N">([\s\S]*?)<\/script>/.exec(html)?.[1];
  assert.ok(script);
  const toExtension: unknown[] = [];
  const toFrame: Array<{ message: unknown; targetOrigin: string }> = [];
  const states: unknown[] = [];
  const contentWindow = {
    postMessage: (message: unknown, targetOrigin: string) => toFrame.push({ message, targetOrigin }),
  };
  // The iframe on the page: the script replaces it by a clone for each URL it shows.
  interface Frame {
    src: string;
    hidden: boolean;
    contentWindow: typeof contentWindow;
    listeners: Array<() => void>;
    addEventListener: (type: string, fn: () => void) => void;
    cloneNode: () => Frame;
    replaceWith: (next: Frame) => void;
  }
  const frames: Frame[] = [];
  const makeFrame = (src: string, hidden: boolean): Frame => {
    const made: Frame = {
      src, hidden, contentWindow, listeners: [],
      addEventListener: (_type, fn) => made.listeners.push(fn),
      cloneNode: () => makeFrame(made.src, made.hidden),
      replaceWith: (next) => frames.push(next),
    };
    return made;
  };
  frames.push(makeFrame(url ?? '', url === undefined));
  const frameLoaded = () => frames.at(-1)!.listeners.forEach((fn) => fn());
  const classes = new Set<string>();
  const banner = { textContent: '', classList: { toggle: (c: string, on: boolean) => (on ? classes.add(c) : classes.delete(c)) } };
  let listener: Listener | undefined;
  const context = {
    acquireVsCodeApi: () => ({ postMessage: (m: unknown) => toExtension.push(m), setState: (s: unknown) => states.push(s) }),
    document: {
      getElementById: (id: string) => ({ graph: frames[0], banner, placeholder: null })[id] ?? null,
    },
    window: { addEventListener: (_type: string, fn: Listener) => (listener = fn) },
  };
  vm.runInNewContext(script, context);
  assert.ok(listener);
  const fromFrame = (data: unknown, origin = ORIGIN) => listener!({ data, origin, source: contentWindow });
  const fromExtension = (data: unknown) => listener!({ data, origin: 'vscode-webview://x', source: null });
  return { get frame() { return frames.at(-1)!; }, frames, banner, classes, toExtension, toFrame, states, fromFrame, fromExtension, frameLoaded };
}

test('the page saves its state for the serializer as soon as it loads', () => {
  const page = loadPage();
  assert.deepEqual(plain(page.states), [{ source: 'file:///w/export.py', url: `${ORIGIN}/?data=1` }]);
});

test("a node selected in Model Explorer is passed on to the extension", () => {
  const page = loadPage();
  page.fromFrame({ cmd: 'model-explorer-node-selected', nodeId: 'conv2d_1', outputTensorNames: [] });
  assert.deepEqual(plain(page.toExtension), [{ type: 'nodeSelected', nodeId: 'conv2d_1' }]);
});

test('messages from another origin, another window or of another kind are ignored', () => {
  const page = loadPage();
  page.fromFrame({ cmd: 'model-explorer-node-selected', nodeId: 'x' }, 'http://127.0.0.1:9999');
  page.fromFrame({ cmd: 'model-explorer-node-selected', nodeId: 'x' }, 'https://evil.example');
  page.fromFrame({ cmd: 'something-else', nodeId: 'x' });
  page.fromFrame({ cmd: 'model-explorer-node-selected', nodeId: 7 });
  page.fromFrame('model-explorer-node-selected');
  // The same command from outside the iframe is not Model Explorer's.
  page.fromExtension({ cmd: 'model-explorer-node-selected', nodeId: 'x' });
  assert.deepEqual(page.toExtension, []);
});

test('selecting a node from the editor goes to the Model Explorer origin only', () => {
  const page = loadPage();
  page.fromExtension({ type: 'selectNode', nodeId: 'linear' });
  assert.deepEqual(plain(page.toFrame), [
    { message: { cmd: 'model-explorer-select-node-by-node-id', nodeId: 'linear' }, targetOrigin: ORIGIN },
  ]);
});

test('the extension swaps the graph URL and sets or clears the banner', () => {
  const page = loadPage(true);
  assert.equal(page.frame.hidden, true);
  page.fromExtension({ type: 'show', url: `${ORIGIN}/?data=2`, source: 'file:///w/b.py' });
  assert.equal(page.frame.src, `${ORIGIN}/?data=2`);
  assert.equal(page.frame.hidden, false);
  assert.deepEqual(plain(page.states.at(-1)), { source: 'file:///w/b.py', url: `${ORIGIN}/?data=2` });
  // each URL in a new iframe: a reload the page being replaced starts cannot undo the swap
  page.fromExtension({ type: 'show', url: `${ORIGIN}/?data=3`, source: 'file:///w/b.py' });
  assert.deepEqual(page.frames.map((f) => f.src), ['', `${ORIGIN}/?data=2`, `${ORIGIN}/?data=3`]);
  page.fromExtension({ type: 'banner', text: 'a.py:3: ValueError: x' });
  assert.equal(page.banner.textContent, 'a.py:3: ValueError: x');
  assert.equal(page.classes.has('shown'), true);
  page.fromExtension({ type: 'banner', text: '' });
  assert.equal(page.classes.has('shown'), false);
});

test('a frame messages nothing when the page has no Model Explorer origin yet', () => {
  const page = loadPage(true);
  page.fromExtension({ type: 'selectNode', nodeId: 'linear' });
  page.fromFrame({ cmd: 'model-explorer-node-selected', nodeId: 'x' }, 'null');
  assert.deepEqual(page.toFrame, []);
  assert.deepEqual(page.toExtension, []);
});

test('the selection Model Explorer restores after a reload is not passed on again', () => {
  const page = loadPage();
  const selected = (nodeId: string) => page.fromFrame({ cmd: 'model-explorer-node-selected', nodeId });
  page.frameLoaded();
  selected('linear'); // the user
  page.frameLoaded(); // the graph was rebuilt and reloaded
  selected('linear'); // Model Explorer restoring its selection
  selected('linear'); // the user clicking it again
  page.fromExtension({ type: 'show', url: `${ORIGIN}/?data=2`, source: 'file:///w/export.py' });
  page.frameLoaded(); // the new iframe's page: its restored selection is not the user's
  selected('linear');
  page.frameLoaded();
  selected('mean'); // a different node right after a reload is the user's
  assert.deepEqual(
    plain(page.toExtension),
    ['linear', 'linear', 'mean'].map((nodeId) => ({ type: 'nodeSelected', nodeId })),
  );
});
