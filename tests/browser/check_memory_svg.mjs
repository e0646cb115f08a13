// Opens a memory timeline SVG (etviz's `m.memory.svg`) in a real headless Chromium and
// reports, as one JSON line on stdout, what a person would see: each tensor bar as drawn
// (its box on the screen, its data attributes, its tooltip), each peak mark's box, the
// page's size; then hovers the first bar and screenshots the page. pytest
// (test_memory_plan.py) makes the assertions.
//
//   node check_memory_svg.mjs FILE.svg SHOT.png
import { pathToFileURL } from 'node:url';
import { say, withBrowser } from './chromium.mjs';

const [svgPath, shotPath] = process.argv.slice(2);

await withBrowser(async (browser) => {
  const page = await browser.newPage({ viewport: { width: 1000, height: 800 } });
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.goto(pathToFileURL(svgPath).href);
  await page.locator('svg.memory-timeline').waitFor();
  const seen = await page.evaluate(() => {
    const box = (el) => {
      const r = el.getBoundingClientRect();
      return { x: r.x, y: r.y, width: r.width, height: r.height };
    };
    const data = (el) => Object.fromEntries([...el.attributes]
      .filter((a) => a.name.startsWith('data-')).map((a) => [a.name.slice(5), a.value]));
    const panels = [...document.querySelectorAll('g.buffer')].map((g) => ({
      ...data(g),
      bars: [...g.querySelectorAll('rect.tensor')].map((r) => ({
        ...data(r), box: box(r), title: r.querySelector('title')?.textContent || '',
        fill: getComputedStyle(r).fill,
      })),
      peaks: [...g.querySelectorAll('g.peak')].map((p) => ({
        ...data(p), band: box(p.querySelector('rect')), line: box(p.querySelector('line')),
        label: p.querySelector('text')?.textContent || '',
      })),
    }));
    const root = document.querySelector('svg.memory-timeline');
    return { panels, size: box(root), title: root.querySelector('title')?.textContent || '',
             text: root.textContent.slice(0, 4000) };
  });
  const bars = page.locator('rect.tensor');
  await page.setViewportSize({ width: Math.ceil(seen.size.width), height: Math.ceil(seen.size.height) });
  if (await bars.count()) await bars.first().hover(); // a real pointer over a bar
  await page.screenshot({ path: shotPath, timeout: 60_000 });
  say({ phase: 'svg', ...seen, errors });
});
