// Opens a page holding a notebook cell's output (test_notebook.py, and the executed notebook
// of docs/make_notebook_screenshot.py), waits until the Model Explorer iframe in it has drawn
// its graph, saves a screenshot and prints {"saved", "frameUrl", "opNodeCount"}.
//   node check_inline_frame.mjs PAGE_URL OUT.png
// Needs playwright-core (npm, found in $NODE_MODULES_DIR) and Debian's chromium.
import { createRequire } from 'node:module';

const require = createRequire(`${process.env.NODE_MODULES_DIR}/`);
const { chromium } = require('playwright-core');

const [notebookUrl, out] = process.argv.slice(2);
const TIMEOUT = 120_000;
const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
try {
  const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
  page.on('console', (m) => { if (m.type() === 'error') console.error(`page: ${m.text()}`); });
  const frame = page.frameLocator('iframe.etviz-graph');
  // Seen once in ~20 runs: the frame drew its graph (the failure screenshot shows it) but
  // Playwright never saw the frame attach (page.frames() held only the page), so the locator
  // waited forever. A fresh load of the page is what a user would do; three tries at most.
  for (let attempt = 1; ; attempt += 1) {
    await page.goto(notebookUrl);
    try {
      await frame.getByText('op node count').first().waitFor({ timeout: TIMEOUT / 2 });
      break;
    } catch (error) {
      await page.screenshot({ path: out.replace(/\.png$/, `-failed-${attempt}.png`), fullPage: true });
      console.error(`attempt ${attempt}: frames ${page.frames().map((f) => f.url().slice(0, 80)).join(' | ')}`);
      if (attempt === 3) throw error;
    }
  }
  await frame.locator('canvas').first().waitFor({ timeout: TIMEOUT });
  await page.waitForTimeout(3000);
  await page.screenshot({ path: out, fullPage: true });
  const graphFrame = page.frames().find((f) => f !== page.mainFrame() && f.url().startsWith('http'));
  const row = frame.locator('tr', { has: frame.locator('td.key', { hasText: /^\s*op node count\s*$/ }) });
  const opNodeCount = (await row.locator('td.value').first().innerText()).trim();
  console.log(JSON.stringify({ saved: out, frameUrl: graphFrame?.url() ?? '', opNodeCount }));
} finally {
  await browser.close();
}
