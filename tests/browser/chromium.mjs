// The headless Chromium every driver here runs: Debian's, with the flags this machine
// needs; one JSON line per report on stdout; an error becomes a report and exit code 1.
import { chromium } from 'playwright-core';

export const CHROMIUM_ARGS = [
  '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];

export const say = (obj) => process.stdout.write(JSON.stringify(obj) + '\n');

export async function withBrowser(work) {
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS });
  try {
    await work(browser);
  } catch (error) {
    say({ phase: 'error', message: String((error && error.message) || error) });
    process.exitCode = 1;
  } finally {
    await browser.close();
    process.exit();
  }
}
