// The report, opened from disk in headless Chromium: every page loads with no console error and
// no request outside the report folder, every link and image points at a file of the report, the
// units gallery filters and sorts, a unit page shows its strips and charts, and a file name that
// is markup stays text. Usage: node report.test.mjs <study folder> <artifacts folder>
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { launch, watch, runChecks } from './browser.mjs';

const [study, artifacts] = process.argv.slice(2);
const report = path.resolve(study, 'report');
const root = pathToFileURL(report + path.sep).href;
fs.mkdirSync(artifacts, { recursive: true });

const browser = await launch();
const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
const problems = watch(page, [root, 'data:']);
const open = async (file) => {
  await page.goto(root + file, { waitUntil: 'load' });
  return page;
};
const cardCount = () => page.locator('#gallery .card').count();

// Every href/src of the current page that is not an anchor names a file inside the report.
async function linksResolve() {
  const targets = await page.evaluate(() =>
    [...document.querySelectorAll('a[href], img[src], link[href], script[src]')].map((e) => e.href || e.src));
  for (const target of targets) {
    if (target === 'data:,') continue;  // the empty favicon
    if (!target.startsWith('file:')) throw new Error('link outside the report: ' + target);
    const file = decodeURIComponent(new URL(target).pathname);
    assert.ok(file.startsWith(report), 'link outside the report folder: ' + file);
    assert.ok(fs.existsSync(file), 'missing file: ' + file);
  }
  return targets.length;
}

const pages = ['index.html', 'reconstructions.html', 'units.html', 'concepts.html', 'counterfactuals.html',
  'shapes-world.html', 'units/unit-00000.html'];
const failed = await runChecks([
  ['every page opens with no console error, no outside request, and its links resolve', async () => {
    for (const file of pages) {
      assert.ok(fs.existsSync(path.join(report, file)), file + ' was not written');
      await open(file);
      const links = await linksResolve();
      assert.ok(links > 5, file + ' has only ' + links + ' links');
    }
    assert.deepEqual(problems, []);
  }],
  ['the overview shows the fit and both PCA charts', async () => {
    await open('index.html');
    assert.ok(await page.locator('svg.chart').count() >= 4);
    assert.match(await page.locator('main').innerText(), /R² \(overall\)/);
  }],
  ['the units gallery lists every unit and filters by label', async () => {
    await open('units.html');
    const units = JSON.parse(await page.locator('#units-data').textContent());
    assert.equal(units.length, 24);
    assert.equal(await cardCount(), 24);
    const labelled = units.find((u) => u.label && u.label !== 'none');
    assert.ok(labelled, 'no unit has a label');
    await page.fill('#filter-label', labelled.label);
    const expected = units.filter((u) => (u.label || 'none').toLowerCase().includes(labelled.label.toLowerCase()));
    assert.equal(await cardCount(), expected.length);
    // A card shows a label under the reliability bar as "no reliable label", with the label and
    // its confidence beside it.
    for (const text of await page.locator('#gallery .card').allTextContents()) {
      assert.ok(text.toLowerCase().includes(labelled.label.toLowerCase()), text);
    }
    assert.ok(expected.length < units.length, 'the filter kept every unit');
  }],
  ['the gallery shows each label with its confidence and filters the reliable ones', async () => {
    await open('units.html');
    const units = JSON.parse(await page.locator('#units-data').textContent());
    const labelled = units.filter((u) => u.part);
    assert.ok(labelled.length > 0, 'no unit has a label');
    for (const u of labelled) assert.equal(u.reliable, u.confidence !== null && u.confidence >= 0.5, JSON.stringify(u));
    assert.equal(await page.locator('#gallery .card .confidence').count(), labelled.length);
    await page.selectOption('#filter-reliable', 'yes');
    assert.equal(await cardCount(), units.filter((u) => u.reliable).length);
    for (const text of await page.locator('#gallery .card .label').allTextContents()) {
      assert.ok(!text.includes('no reliable label') && text !== 'none', text);
    }
    await page.selectOption('#filter-reliable', '');
    await page.selectOption('#sort', 'confidence');
    const shown = await page.locator('#gallery .card').evaluateAll((cards) => cards.map((c) => Number(c.dataset.unit)));
    const confidence = (unit) => { const c = units.find((u) => u.unit === unit).confidence; return c === null ? -Infinity : c; };
    for (let i = 1; i < shown.length; ++i) assert.ok(confidence(shown[i - 1]) >= confidence(shown[i]), 'not sorted');
  }],
  ['the gallery filters by expressibility and by concept, and sorts', async () => {
    await open('units.html');
    const units = JSON.parse(await page.locator('#units-data').textContent());
    await page.selectOption('#filter-expressible', 'yes');
    assert.equal(await cardCount(), units.filter((u) => u.expressible).length);
    await page.selectOption('#filter-expressible', '');
    const concept = units.flatMap((u) => u.concepts)[0];
    assert.ok(concept, 'no unit has a significant concept');
    await page.selectOption('#filter-part', concept.part);
    await page.selectOption('#filter-measure', concept.measure);
    assert.equal(await cardCount(), units.filter((u) => u.concepts.some((c) =>
      c.part === concept.part && c.measure === concept.measure)).length);
    await page.selectOption('#filter-part', '');
    await page.selectOption('#filter-measure', '');
    await page.selectOption('#sort', 'correlation');
    const best = units.reduce((a, b) => ((b.correlation ?? -Infinity) > (a.correlation ?? -Infinity) ? b : a));
    assert.equal(await page.locator('#gallery .card').first().getAttribute('data-unit'), String(best.unit));
    await page.screenshot({ path: path.join(artifacts, 'report-units.png') });
  }],
  ['a unit page shows its strips and its charts', async () => {
    await open('units.html');
    await page.locator('#gallery .card').first().click();
    await page.waitForLoadState('load');
    assert.match(page.url(), /units\/unit-00000\.html$/);
    const strips = page.locator('figure.strip img');
    assert.ok(await strips.count() >= 2);
    const widths = await strips.evaluateAll((images) => images.map((i) => i.naturalWidth));
    assert.ok(widths.every((w) => w > 0), 'a strip did not load');
    assert.ok(await page.locator('svg.chart').count() >= 3, 'cycle, logit and part charts');
    assert.ok(await page.locator('svg.chart polyline').count() >= 2);
    assert.ok(await page.locator('svg.chart rect.bar-up, svg.chart rect.bar-down').count() > 0);
    await page.screenshot({ path: path.join(artifacts, 'report-unit.png'), fullPage: true });
  }],
  ['the counterfactuals page shows its runs with images and relevant units linked', async () => {
    await open('counterfactuals.html');
    assert.ok(await page.locator('figure.counterfactual img').count() >= 2);
    assert.ok(await page.locator('a[href^="units/unit-"]').count() > 0);
  }],
  ['a file name that is markup is shown as text, not run', async () => {
    await open('reconstructions.html');
    assert.equal(await page.evaluate(() => window.__xss), undefined);
    assert.equal(await page.locator('figcaption img').count(), 0);
    assert.match(await page.locator('main').innerText(), /<img src=x onerror=window.__xss=1>/);
  }],
  ['nothing went wrong on any page', async () => assert.deepEqual(problems, [])],
]);
await browser.close();
process.exit(failed ? 1 : 0);
