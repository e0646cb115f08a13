// Opens one graph page of Model Explorer in headless Chromium and reports, as one JSON line on
// stdout, when the graph was really drawn. bench/me_open_time.py drives it, one process per graph.
//
//   NODE_MODULES_DIR=tests/browser/node_modules node me_open_time.mjs URL DEADLINE_MS [SHOT.png]
//
// The signal, read from the 0.1.34 web app: its layout runs in a Web Worker that posts progress
// messages (eventType 8, with a stage label) and then the laid-out graph (eventType 1); the main
// thread then builds the renderer's meshes and draws them with three.js, whose node bodies and
// labels are instanced meshes (an edge is one instance per segment of its curve). So "drawn" =
// the first instanced WebGL draw call on the visible canvas after the graph arrived; the picture
// is on screen at the frame after it: without a GPU, Chromium's compositor reads the canvas back
// (ReadPixels, in the frame's commit on the main thread), which waits until SwiftShader has run
// every draw queued, so the second animation frame after the draw starts only once that frame is
// out. All times are ms since the navigation started (the page's time origin).
import { createRequire } from 'node:module';

const require = createRequire(`${process.env.NODE_MODULES_DIR}/`);
const { chromium } = require('playwright-core');

const [url, deadlineArg, shot] = process.argv.slice(2);
const DEADLINE = Number(deadlineArg);
const GRACE = 5_000; // for reading what happened after a deadline, when the page may be busy
const CHROMIUM_ARGS = [
  '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];

// Runs in the page before its own scripts: reports worker messages, the collection's fetch, the
// first instanced draw and the frame after it to the driver as they happen (a binding: what was
// seen arrives even when the page is busy later, past the deadline).
function instrument() {
  const send = (event) => { window.__etvizEvent(event).catch(() => {}); };
  let arrived = false;
  let firstDraw = null;
  let counting = true; // until the frame: what the first picture cost
  let draws = 0;
  let instances = 0;
  const NativeWorker = window.Worker;
  window.Worker = class extends NativeWorker {
    constructor(...args) {
      super(...args);
      this.addEventListener('message', (event) => {
        const data = event.data || {};
        arrived = arrived || data.eventType === 1;
        send({ kind: 'worker', t: performance.now(), type: data.eventType, label: data.label || '' });
      });
    }
  };
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      if (e.name.includes('read_text_file') || e.name.includes('load_graphs_json')) {
        send({ kind: 'fetch', start: e.startTime, end: e.responseEnd, bytes: e.encodedBodySize });
      }
    }
  }).observe({ type: 'resource', buffered: true });
  const frame = () => send({ kind: 'frame', t: performance.now(), firstDraw, draws, instances });
  const wrap = (proto, name, countArg) => {
    const native = proto[name];
    proto[name] = function (...args) {
      if (arrived && counting && this.canvas && this.canvas.clientWidth > 0) {
        draws += 1;
        instances += Number(args[countArg]) || 0;
        if (firstDraw === null) {
          firstDraw = performance.now();
          send({ kind: 'draw', t: firstDraw });
          requestAnimationFrame(() => requestAnimationFrame(() => { counting = false; frame(); }));
        }
      }
      return native.apply(this, args);
    };
  };
  wrap(WebGL2RenderingContext.prototype, 'drawElementsInstanced', 4);
  wrap(WebGL2RenderingContext.prototype, 'drawArraysInstanced', 3);
}

function withTimeout(promise, ms, fallback) {
  let timer;
  const late = new Promise((resolve) => { timer = setTimeout(() => resolve(fallback), ms); });
  return Promise.race([promise.catch(() => fallback), late]).finally(() => clearTimeout(timer));
}

async function pageFacts(page) {
  return page.evaluate(() => {
    const text = document.body ? document.body.innerText : '';
    const count = /op node count\s*([\d,]+)/.exec(text);
    return {
      opNodeCount: count ? Number(count[1].replace(/,/g, '')) : null,
      unsupported: text.includes('Unsupported JSON format'),
      processing: text.includes('Processing graph'),
    };
  });
}

const probe = { worker: [], fetches: [], firstDrawAt: null, frameAt: null, draws: 0, instances: 0 };
let framed;
const onScreen = new Promise((resolve) => { framed = resolve; });
function seen(event) {
  if (event.kind === 'worker') probe.worker.push(event);
  if (event.kind === 'fetch') probe.fetches.push(event);
  if (event.kind === 'draw') probe.firstDrawAt = event.t;
  if (event.kind === 'frame') {
    Object.assign(probe, { frameAt: event.t, draws: event.draws, instances: event.instances });
    framed(true);
  }
}

const report = { url, deadlineMs: DEADLINE, drawn: false, probe };
const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS });
try {
  const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
  await context.exposeFunction('__etvizEvent', seen);
  await context.addInitScript(instrument);
  const page = await context.newPage();
  const started = Date.now();
  await page.goto(url, { waitUntil: 'commit', timeout: DEADLINE });
  report.drawn = await withTimeout(onScreen, DEADLINE - (Date.now() - started), false);
  Object.assign(report, (await withTimeout(pageFacts(page), GRACE, null)) || { busy: true });
  if (shot) {
    const wait = report.drawn ? DEADLINE : GRACE; // a page still laying out may never paint
    report.screenshot = await withTimeout(
      page.screenshot({ path: shot, timeout: wait }).then(() => shot), wait + GRACE, null);
  }
} catch (error) {
  report.error = String((error && error.message) || error).split('\n')[0];
} finally {
  process.stdout.write(JSON.stringify(report) + '\n');
  await withTimeout(browser.close(), GRACE, null);
  process.exit(0);
}
