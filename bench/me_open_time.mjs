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

// Runs in the page before its own scripts: records worker messages and instanced draws.
function instrument() {
  const probe = { worker: [], draws: 0, instances: 0, firstDrawAt: null, frameAt: null };
  window.__etvizProbe = probe;
  const NativeWorker = window.Worker;
  window.Worker = class extends NativeWorker {
    constructor(...args) {
      super(...args);
      this.addEventListener('message', (event) => {
        const data = event.data || {};
        probe.worker.push({ t: performance.now(), type: data.eventType, label: data.label || '' });
      });
    }
  };
  const graphArrived = () => probe.worker.some((m) => m.type === 1);
  const wrap = (proto, name, countArg) => {
    const native = proto[name];
    if (!native) return;
    proto[name] = function (...args) {
      const visible = this.canvas && this.canvas.clientWidth > 0;
      if (visible && graphArrived()) {
        probe.draws += 1;
        if (probe.frameAt === null) probe.instances += Number(args[countArg]) || 0;
        if (probe.firstDrawAt === null) {
          probe.firstDrawAt = performance.now();
          requestAnimationFrame(() => requestAnimationFrame(() => { probe.frameAt = performance.now(); }));
        }
      }
      return native.apply(this, args);
    };
  };
  for (const proto of [window.WebGL2RenderingContext && WebGL2RenderingContext.prototype]) {
    if (!proto) continue;
    wrap(proto, 'drawElementsInstanced', 4);
    wrap(proto, 'drawArraysInstanced', 3);
  }
}

function withTimeout(promise, ms, fallback) {
  let timer;
  const late = new Promise((resolve) => { timer = setTimeout(() => resolve(fallback), ms); });
  return Promise.race([promise.catch(() => fallback), late]).finally(() => clearTimeout(timer));
}

async function pageFacts(page) {
  return page.evaluate(() => {
    const probe = window.__etvizProbe;
    const text = document.body ? document.body.innerText : '';
    const count = /op node count\s*([\d,]+)/.exec(text);
    const fetches = performance.getEntriesByType('resource')
      .filter((e) => e.name.includes('read_text_file') || e.name.includes('load_graphs_json'))
      .map((e) => ({ start: e.startTime, end: e.responseEnd, bytes: e.encodedBodySize }));
    return {
      probe, fetches,
      opNodeCount: count ? Number(count[1].replace(/,/g, '')) : null,
      unsupported: text.includes('Unsupported JSON format'),
      processing: text.includes('Processing graph'),
    };
  });
}

const report = { url, deadlineMs: DEADLINE, drawn: false };
const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS });
try {
  const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
  await context.addInitScript(instrument);
  const page = await context.newPage();
  page.setDefaultTimeout(DEADLINE);
  await page.goto(url, { timeout: DEADLINE });
  const drawn = page.waitForFunction(() => window.__etvizProbe.frameAt !== null,
    null, { timeout: DEADLINE, polling: 100 });
  report.drawn = await withTimeout(drawn.then(() => true), DEADLINE + GRACE, false);
  const facts = await withTimeout(pageFacts(page), GRACE, null);
  Object.assign(report, facts || { busy: true });
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
