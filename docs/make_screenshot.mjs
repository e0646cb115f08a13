// Opens one Model Explorer URL in headless Chromium, waits until the graph is drawn and
// saves a screenshot (and a 2x close-up of the graph's top to OUT-closeup.png).
//   node make_screenshot.mjs URL OUT.png [WIDTH HEIGHT]
// Needs playwright-core (npm, found in $NODE_MODULES_DIR) and Debian's chromium;
// make_screenshot.py drives it.
import { createRequire } from 'node:module';

const require = createRequire(`${process.env.NODE_MODULES_DIR}/`);
const { chromium } = require('playwright-core');

const [url, out, width = '1200', height = '1800'] = process.argv.slice(2);
const TIMEOUT = 120_000;
const CHROMIUM_ARGS = [
  '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];
const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS });
try {
  const page = await browser.newPage({
    viewport: { width: Number(width), height: Number(height) }, deviceScaleFactor: 2,
  });
  await page.goto(url);
  // The info panel fills in once the graph is laid out; then let the WebGL frame settle.
  await page.getByText('op node count').first().waitFor({ timeout: TIMEOUT });
  await page.locator('canvas').first().waitFor({ timeout: TIMEOUT });
  // SIDE_PANEL_PX: drag the divider so the side panel (node info) is that wide.
  if (process.env.SIDE_PANEL_PX) {
    const divider = await page.locator('.resizer').first().boundingBox();
    const y = divider.y + divider.height / 2;
    await page.mouse.move(divider.x + divider.width / 2, y);
    await page.mouse.down();
    await page.mouse.move(Number(width) - Number(process.env.SIDE_PANEL_PX), y, { steps: 10 });
    await page.mouse.up();
  }
  // EXPAND_ATTRS: attribute keys (comma-separated) whose long values are unfolded first.
  for (const key of (process.env.EXPAND_ATTRS || '').split(',').filter(Boolean)) {
    const row = page.locator('tr', { has: page.locator('td.key', { hasText: key }) });
    await row.locator('.icon-container.toggle').first().click();
  }
  await page.waitForTimeout(3000);
  await page.screenshot({ path: out });
  const canvas = await page.locator('canvas').first().boundingBox();
  const closeup = out.replace(/\.png$/, '-closeup.png');
  await page.screenshot({
    path: closeup,
    clip: { x: canvas.x + canvas.width * 0.2, y: canvas.y, width: canvas.width * 0.6, height: canvas.height * 0.4 },
  });
  console.log(JSON.stringify({ saved: out, unsupported: await page.getByText('Unsupported JSON format').count() }));
} finally {
  await browser.close();
}
