// Shared by the browser tests: Debian's Chromium driven by playwright-core, headless, with no
// network beyond what a page asks for (the flags keep Chromium's own connections off).
import { chromium } from 'playwright-core';

export async function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'],
  });
}

// Collects what a page must not do: console errors, uncaught exceptions, and requests whose URL
// does not start with one of `allowed`.
export function watch(page, allowed) {
  const problems = [];
  page.on('console', (message) => { if (message.type() === 'error') problems.push('console: ' + message.text()); });
  page.on('pageerror', (error) => problems.push('page error: ' + error.message));
  page.on('request', (request) => {
    const url = request.url();
    if (!allowed.some((prefix) => url.startsWith(prefix))) problems.push('request outside: ' + url);
  });
  return problems;
}

// Runs named checks in order, prints one line each, and exits non-zero when any fails.
export async function runChecks(checks) {
  let failed = 0;
  for (const [name, check] of checks) {
    try {
      await check();
      console.log('ok   ' + name);
    } catch (error) {
      failed++;
      console.log('FAIL ' + name + ': ' + (error && error.stack ? error.stack : error));
    }
  }
  return failed;
}
