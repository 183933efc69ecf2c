// The explorer, served by `linkstyle serve` on a free loopback port and used in headless
// Chromium: it loads, a slider move changes the image, a counterfactual gives a path, two tabs
// work at once, and bad requests get a 4xx with a reason while the server goes on.
// Usage: node explorer.test.mjs <linkstyle binary> <study folder> <artifacts folder>
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { launch, watch, runChecks } from './browser.mjs';

const [linkstyle, study, artifacts] = process.argv.slice(2);
fs.mkdirSync(artifacts, { recursive: true });

const server = spawn(linkstyle, ['serve', '--study', study, '--port', '0'], { stdio: ['ignore', 'pipe', 'inherit'] });
const base = await new Promise((resolve, reject) => {
  let text = '';
  const timer = setTimeout(() => reject(new Error('the server did not start within 60 s')), 60000);
  server.stdout.on('data', (chunk) => {
    text += chunk;
    const found = text.match(/http:\/\/127\.0\.0\.1:(\d+)\//);
    if (found) { clearTimeout(timer); resolve(found[0].slice(0, -1)); }
  });
  server.on('exit', (code) => reject(new Error('the server exited with ' + code)));
});

const browser = await launch();
const page = await browser.newPage({ viewport: { width: 1280, height: 860 } });
const problems = watch(page, [base + '/', 'data:']);
const renders = (p) => p.evaluate(() => Number(document.body.dataset.renders || 0));
async function ready(p) {
  await p.goto(base + '/');
  await p.waitForFunction(() => document.body.dataset.ready === 'true' && Number(document.body.dataset.renders || 0) >= 1);
}
async function post(url, body, type = 'application/json') {
  const response = await fetch(base + url, { method: 'POST', body, headers: { 'Content-Type': type } });
  return { status: response.status, body: await response.json() };
}

const failed = await runChecks([
  ['the explorer loads and shows an image, its parts and the top classes', async () => {
    await ready(page);
    assert.match(await page.getAttribute('#image', 'src'), /^data:image\/png;base64,/);
    assert.match(await page.getAttribute('#parts', 'src'), /^data:image\/png;base64,/);
    assert.equal(await page.locator('#top-classes tr').count(), 5);
  }],
  ['a slider move changes the image', async () => {
    await page.fill('#unit-search', '3');
    await page.locator('#unit-results button').first().click();
    await page.waitForSelector('#slider-3');
    await page.waitForFunction(() => document.body.dataset.busy === 'false');
    const before = await page.getAttribute('#image', 'src');
    const count = await renders(page);
    await page.locator('#slider-3').evaluate((slider) => {
      slider.value = slider.max;
      slider.dispatchEvent(new Event('input', { bubbles: true }));
    });
    await page.waitForFunction((n) => Number(document.body.dataset.renders) > n && document.body.dataset.busy === 'false', count);
    assert.notEqual(await page.getAttribute('#image', 'src'), before);
    await page.screenshot({ path: path.join(artifacts, 'explorer.png') });
  }],
  ['a counterfactual runs and its path can be stepped', async () => {
    await page.selectOption('#target-select', { label: 'tree' });
    await page.click('#run-counterfactual');
    await page.waitForSelector('#path-controls:not([hidden])', { timeout: 120000 });
    const last = await page.getAttribute('#path-image', 'src');
    await page.locator('#path-slider').evaluate((slider) => {
      slider.value = 0;
      slider.dispatchEvent(new Event('input', { bubbles: true }));
    });
    assert.notEqual(await page.getAttribute('#path-image', 'src'), last);
    assert.match(await page.locator('#path-caption').innerText(), /alpha 0\.00/);
    await page.screenshot({ path: path.join(artifacts, 'explorer-counterfactual.png') });
  }],
  ['two tabs render at once', async () => {
    const other = await browser.newPage();
    const otherProblems = watch(other, [base + '/', 'data:']);
    await Promise.all([ready(other), page.reload().then(() => ready(page))]);
    await other.close();
    assert.deepEqual(otherProblems, []);
  }],
  ['bad requests get a 4xx with a reason and the server goes on', async () => {
    const unknown = await post('/api/render', JSON.stringify({ sample: 0, units: { 99999: 1 } }));
    assert.equal(unknown.status, 400);
    assert.match(unknown.body.error, /unknown unit/);
    const notANumber = await post('/api/render', '{"sample": 0, "units": {"3": NaN}}');
    assert.equal(notANumber.status, 400);
    const text = await post('/api/render', JSON.stringify({ sample: 0, units: { 3: 'NaN' } }));
    assert.equal(text.status, 400);
    assert.match(text.body.error, /finite number/);
    const sample = await post('/api/render', JSON.stringify({ sample: 1e6 }));
    assert.equal(sample.status, 400);
    const huge = await post('/api/upload', new Uint8Array(20 << 20), 'image/png');
    assert.equal(huge.status, 413);
    const corrupt = await post('/api/upload', 'not an image', 'image/png');
    assert.equal(corrupt.status, 400);
    const outside = await fetch(base + '/files/..%2F..%2F..%2Fetc%2Fpasswd');
    assert.equal(outside.status, 403);
    assert.match((await outside.json()).error, /outside the study/);
    const missing = await fetch(base + '/nothing-here');
    assert.equal(missing.status, 404);
    const alive = await fetch(base + '/api/study');
    assert.equal(alive.status, 200);
  }],
  ['an uploaded image is explained', async () => {
    const png = fs.readFileSync(path.join(study, 'real', 'shapes-1-car.png'));
    const uploaded = await post('/api/upload', png, 'image/png');
    assert.equal(uploaded.status, 200);
    const rendered = await post('/api/render', JSON.stringify({ upload: uploaded.body.upload, units: {} }));
    assert.equal(rendered.status, 200);
    assert.match(rendered.body.image, /^data:image\/png;base64,/);
  }],
  ['the page made no error and no outside request', async () => assert.deepEqual(problems, [])],
]);
await browser.close();
server.kill('SIGTERM');
const code = await new Promise((resolve) => server.on('exit', (c, signal) => resolve(c ?? signal)));
if (code !== 0) console.log('FAIL the server stopped with ' + code);
process.exit(failed || code !== 0 ? 1 : 0);
