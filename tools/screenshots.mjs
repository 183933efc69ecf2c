// The README's pictures of the report and the explorer, from a study with a report (make demo):
//   node tools/screenshots.mjs <linkstyle binary> <study folder> <output folder>
// writes report-units.png (the units gallery, filtered to "area"), report-unit.png (a unit page)
// and explorer.png (the explorer after a slider move and a counterfactual).
import { spawn } from 'node:child_process';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { launch } from '../tests/browser/browser.mjs';

const [linkstyle, study, out] = process.argv.slice(2);
const browser = await launch();
const page = await browser.newPage({ viewport: { width: 1280, height: 820 } });
const report = pathToFileURL(path.resolve(study, 'report') + path.sep).href;
await page.goto(report + 'units.html');
await page.fill('#filter-label', 'area');
await page.selectOption('#sort', 'correlation');
await page.screenshot({ path: path.join(out, 'report-units.png') });
const first = await page.locator('#gallery .card').first().getAttribute('href');
await page.goto(report + first);
await page.screenshot({ path: path.join(out, 'report-unit.png') });

const server = spawn(linkstyle, ['serve', '--study', study, '--port', '0'], { stdio: ['ignore', 'pipe', 'inherit'] });
const base = await new Promise((resolve) => {
  let text = '';
  server.stdout.on('data', (chunk) => {
    text += chunk;
    const found = text.match(/http:\/\/127\.0\.0\.1:\d+/);
    if (found) resolve(found[0]);
  });
});
await page.goto(base + '/');
await page.waitForFunction(() => document.body.dataset.ready === 'true' && document.body.dataset.busy === 'false');
const unit = first.match(/unit-(\d+)/)[1].replace(/^0+(?=\d)/, '');
await page.fill('#unit-search', unit);
await page.locator('#unit-results button').first().click();
await page.waitForFunction(() => document.body.dataset.busy === 'false');
// The unit at the top of its range over the tuning samples (the slider reaches 50% beyond).
const top = await page.evaluate((u) => fetch('/api/study').then((r) => r.json()).then((d) => d.units[u].max), Number(unit));
await page.locator('#slider-' + unit).evaluate((s, v) => { s.value = v; s.dispatchEvent(new Event('input')); }, top);
await page.waitForFunction(() => document.body.dataset.busy === 'false');
await page.selectOption('#target-select', { index: 4 });
await page.click('#run-counterfactual');
await page.waitForSelector('#path-controls:not([hidden])', { timeout: 120000 });
await page.screenshot({ path: path.join(out, 'explorer.png') });
await browser.close();
server.kill('SIGTERM');
