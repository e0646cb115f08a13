// Opens graph URLs that carry node data (an ETDump latency overlay) in a real headless
// Chromium and reports, one JSON line per URL on stdout, what a person would see: the node
// data providers Model Explorer lists as loaded, its "Node data" table (node, value, the
// value's colour), the files the page read. pytest (test_latency_overlay.py) makes the
// assertions.
//
//   node check_overlay.mjs SHOT_DIR NAME URL [NAME URL ...]    (screenshot SHOT_DIR/NAME.png)
import { chromium } from 'playwright-core';
import path from 'node:path';

const [shotDir, ...pairs] = process.argv.slice(2);
const TIMEOUT = Number(process.env.ETVIZ_BROWSER_TIMEOUT_MS || 90_000);
const CHROMIUM_ARGS = [
  '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];
const say = (obj) => process.stdout.write(JSON.stringify(obj) + '\n');

const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS });
let page;
try {
  const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
  page = await context.newPage();
  const failed = [];
  const nodeDataReads = [];
  page.on('response', (r) => {
    const u = new URL(r.url());
    if (r.status() >= 400) failed.push(`${r.status()} ${u.pathname}`);
    if (u.pathname.includes('read_text_file')) nodeDataReads.push(`${r.status()} ${u.searchParams.get('path') || ''}`);
  });
  for (let i = 0; i + 1 < pairs.length; i += 2) {
    const [name, url] = [pairs[i], pairs[i + 1]];
    await page.goto(url);
    await page.getByText('op node count').first().waitFor({ timeout: TIMEOUT });
    await page.locator('canvas').first().waitFor({ timeout: TIMEOUT });
    await page.getByText('NODE DATA PROVIDERS').first().waitFor({ timeout: TIMEOUT });
    await page.waitForTimeout(1500); // let the WebGL frame settle before a screenshot
    const table = await page.evaluate(() => {
      // The side panel's tables: each row's cell texts and the last cell's background.
      return [...document.querySelectorAll('tr')].map((tr) => {
        const cells = [...tr.querySelectorAll('td')];
        return {
          cells: cells.map((td) => td.innerText.trim()),
          background: cells.length ? getComputedStyle(cells[cells.length - 1]).backgroundColor : '',
        };
      }).filter((row) => row.cells.length >= 3);
    });
    const body = await page.locator('body').innerText();
    say({ phase: 'overlay', name, table, providersShown: body.includes('NODE DATA PROVIDERS'),
          bodyText: body.slice(0, 6000), reads: nodeDataReads.splice(0), failedRequests: failed.splice(0) });
    await page.screenshot({ path: path.join(shotDir, `${name}.png`) });
  }
} catch (error) {
  say({ phase: 'error', message: String(error && error.message || error) });
  process.exitCode = 1;
} finally {
  await browser.close();
  process.exit();
}
