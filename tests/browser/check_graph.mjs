// Opens a graph URL of the shared Model Explorer server in a real headless Chromium and
// reports, as JSON lines on stdout, what a person would see. pytest (test_explorer_browser.py)
// drives it and makes the assertions.
//
//   node check_graph.mjs URL LAYER_LABEL ARTIFACT_DIR
//
// Phases:
//   1. the page with Model Explorer's default WebGL renderer: graph selector text, the
//      info panel's "op node count", any "Unsupported JSON format" message; screenshot.
//   2. the same page with Model Explorer's own "Use SVG text renderer" setting, so the
//      labels drawn on the canvas also exist as text: is LAYER_LABEL on screen? screenshot.
//   3. prints {"phase": "waiting"}; pytest rewrites the graph and POSTs refresh_page;
//      pytest writes the expected new node count on stdin; the page must reload by itself
//      (server-sent event) and show that count. screenshot.
import { chromium } from 'playwright-core';
import { createInterface } from 'node:readline';
import path from 'node:path';

const [url, layerLabel, artifactDir] = process.argv.slice(2);
const TIMEOUT = Number(process.env.ETVIZ_BROWSER_TIMEOUT_MS || 90_000);
const CHROMIUM_ARGS = [
  '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];
const say = (obj) => process.stdout.write(JSON.stringify(obj) + '\n');
const stdinLines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();

async function opNodeCount(page) {
  const row = page.locator('tr', { has: page.locator('td.key', { hasText: /^\s*op node count\s*$/ }) });
  return (await row.locator('td.value').first().innerText({ timeout: TIMEOUT })).trim();
}

async function countBecomes(page, expected) {
  // textContent also holds the panel's hidden icon names: compare what is rendered.
  const deadline = Date.now() + TIMEOUT;
  while ((await opNodeCount(page)) !== expected) {
    if (Date.now() > deadline) throw new Error(`op node count never became ${expected}`);
    await page.waitForTimeout(250);
  }
}

async function graphSelector(page) {
  const value = page.locator('.mat-mdc-select-value-text', { hasText: 'nodes' }).first();
  return (await value.innerText({ timeout: TIMEOUT })).replace(/\s+/g, ' ').trim();
}

async function drawn(page) {
  // The info panel fills in once the graph is laid out; the canvas holds the drawing.
  await page.getByText('op node count').first().waitFor({ timeout: TIMEOUT });
  await page.locator('canvas').first().waitFor({ timeout: TIMEOUT });
  await page.waitForTimeout(1500); // let the WebGL frame settle before a screenshot
}

async function unsupported(page) {
  return (await page.getByText('Unsupported JSON format').count()) > 0;
}

async function labelOnScreen(page, label) {
  const texts = page.locator('svg text', { hasText: label });
  await texts.first().waitFor({ timeout: TIMEOUT });
  const box = await texts.first().boundingBox();
  const view = page.viewportSize();
  return box !== null && box.width > 0 && box.x >= 0 && box.y >= 0 &&
    box.x + box.width <= view.width && box.y + box.height <= view.height;
}

const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS });
let page;
try {
  const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
  page = await context.newPage();
  const failed = [];
  page.on('response', (r) => { if (r.status() >= 400) failed.push(`${r.status()} ${new URL(r.url()).pathname}`); });

  await page.goto(url);
  await drawn(page);
  say({
    phase: 'webgl',
    selector: await graphSelector(page),
    opNodeCount: await opNodeCount(page),
    unsupported: await unsupported(page),
    failedRequests: failed.splice(0),
  });
  await page.screenshot({ path: path.join(artifactDir, 'explorer-e2e-1-graph.png') });

  await page.evaluate(() => localStorage.setItem('model_explorer_settings',
    JSON.stringify({ use_svg_text_renderer: true })));
  await page.reload();
  await drawn(page);
  say({ phase: 'svg-text', layerLabelOnScreen: await labelOnScreen(page, layerLabel),
        failedRequests: failed.splice(0) });
  await page.screenshot({ path: path.join(artifactDir, 'explorer-e2e-2-layer-label.png') });

  const reloaded = page.waitForEvent('load', { timeout: TIMEOUT });
  say({ phase: 'waiting' });
  const expected = (await stdinLines.next()).value.trim();
  await reloaded;
  await drawn(page);
  await countBecomes(page, expected);
  say({ phase: 'refreshed', selector: await graphSelector(page), opNodeCount: await opNodeCount(page),
        failedRequests: failed.splice(0) });
  await page.screenshot({ path: path.join(artifactDir, 'explorer-e2e-3-refreshed.png') });
} catch (error) {
  if (page) await page.screenshot({ path: path.join(artifactDir, 'explorer-e2e-error.png') }).catch(() => {});
  say({ phase: 'error', message: String(error && error.message || error), url: page && page.url() });
  process.exitCode = 1;
} finally {
  await browser.close();
  process.exit();
}
