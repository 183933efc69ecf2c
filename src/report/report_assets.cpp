#include "report_assets.hpp"

namespace linkstyle::report {

std::string_view report_stylesheet() {
  return R"css(:root { --ink: #1d2330; --muted: #5b6472; --line: #d9dde4; --accent: #2458b3; --paper: #ffffff; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--ink); background: #f5f6f8; }
nav { display: flex; gap: 4px; align-items: center; padding: 8px 16px; background: #1d2330; position: sticky; top: 0; z-index: 2; }
nav a { color: #d8deea; text-decoration: none; padding: 4px 10px; border-radius: 4px; }
nav a.active, nav a:hover { background: #3a4458; color: #fff; }
nav .brand { color: #fff; font-weight: 700; margin-right: 12px; }
main { max-width: 1200px; margin: 0 auto; padding: 8px 20px 40px; }
h1 { font-size: 24px; margin: 16px 0 8px; }
h2 { font-size: 18px; margin: 24px 0 8px; border-bottom: 1px solid var(--line); padding-bottom: 4px; }
table { border-collapse: collapse; background: var(--paper); margin: 8px 0; font-size: 13px; }
th, td { border: 1px solid var(--line); padding: 3px 8px; text-align: left; vertical-align: top; }
th { background: #eef0f4; }
.note { color: var(--muted); font-style: italic; }
.warn { color: #b3261e; font-weight: 600; }
.charts { display: flex; flex-wrap: wrap; gap: 12px; }
svg.chart { background: var(--paper); border: 1px solid var(--line); border-radius: 4px; max-width: 100%; height: auto; }
svg .chart-title { font-size: 13px; font-weight: 600; fill: var(--ink); }
svg .tick, svg .legend { font-size: 10px; fill: var(--muted); }
svg .axis-label { font-size: 11px; fill: var(--ink); }
svg .plot-area { fill: none; stroke: var(--line); }
svg .grid { stroke: #eceef2; }
svg .axis { stroke: #777; }
svg .diagonal { stroke: #999; stroke-dasharray: 4 3; }
svg .null-band { fill: #cfd3da; }
svg .bar-up { fill: #2458b3; }
svg .bar-down { fill: #c4512d; }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(230px, 1fr)); gap: 10px; }
.cards.wide { grid-template-columns: repeat(auto-fill, minmax(380px, 1fr)); }
.card { display: block; background: var(--paper); border: 1px solid var(--line); border-radius: 6px; padding: 8px; margin: 0;
  color: inherit; text-decoration: none; font-size: 13px; }
a.card:hover { border-color: var(--accent); }
.card img, figure img { width: 100%; height: auto; image-rendering: pixelated; display: block; }
.card .unit-number { font-weight: 700; display: block; margin-top: 4px; }
.card .label { color: var(--accent); display: block; }
.card .confidence { color: var(--muted); font-size: 12px; display: block; }
.card .figures, .card .concepts { display: block; color: var(--muted); }
.filters { display: flex; flex-wrap: wrap; gap: 12px; align-items: end; background: var(--paper); padding: 8px 12px;
  border: 1px solid var(--line); border-radius: 6px; margin: 8px 0 12px; }
.filters label { display: flex; flex-direction: column; font-size: 12px; color: var(--muted); }
input, select, button { font: inherit; }
figure.strip { margin: 8px 0; max-width: 640px; }
figure.counterfactual { margin: 10px 0; }
figure.counterfactual img { display: block; margin-bottom: 4px; }
figure.counterfactual img:first-child { width: 360px; }
figure.counterfactual img + img { width: 100%; max-width: 1040px; }
section, h2 { scroll-margin-top: 52px; }
.class-chip { border: 2px solid; border-radius: 12px; padding: 1px 8px; background: var(--paper); display: inline-block; margin: 2px; }
.explorer { display: grid; grid-template-columns: 360px 1fr; gap: 16px; }
.panel { background: var(--paper); border: 1px solid var(--line); border-radius: 6px; padding: 10px 12px; margin-bottom: 12px; }
.panel h2 { margin-top: 0; font-size: 16px; }
.slider-row { display: grid; grid-template-columns: 1fr auto auto; gap: 4px; align-items: center; margin: 6px 0; font-size: 13px; }
.slider-row input[type=range] { grid-column: 1 / -1; width: 100%; }
.views { display: flex; gap: 12px; flex-wrap: wrap; }
.views figure { margin: 0; width: 300px; }
.views img { width: 300px; height: 300px; image-rendering: pixelated; background: #ddd; }
#unit-results button { display: block; width: 100%; text-align: left; margin: 2px 0; }
.part-chip { display: inline-block; border-left: 12px solid; padding: 0 6px; margin: 2px 4px 0 0; font-size: 12px; }
#status { color: var(--muted); font-size: 12px; min-height: 1.4em; }
#error { color: #b3261e; min-height: 1.4em; }
)css";
}

std::string_view gallery_script() {
  return R"js('use strict';
(function () {
  var units = JSON.parse(document.getElementById('units-data').textContent);
  var gallery = document.getElementById('gallery');
  var more = document.getElementById('show-more');
  var counter = document.getElementById('gallery-count');
  var page = 240, shown = page;
  function field(id) { return document.getElementById(id).value; }
  function pad(unit) { return ('0000' + unit).slice(-5); }
  function number(v) { return v === null || v === undefined ? 'n/a' : Number(v).toPrecision(3); }
  function matches(u) {
    var text = field('filter-label').trim().toLowerCase();
    var expressible = field('filter-expressible'), part = field('filter-part'), measure = field('filter-measure');
    if (field('filter-reliable') === 'yes' && !u.reliable) return false;
    if (text && (u.label || 'none').toLowerCase().indexOf(text) < 0 && String(u.unit) !== text) return false;
    if (expressible === 'yes' && !u.expressible) return false;
    if (expressible === 'no' && u.expressible) return false;
    if (part || measure) {
      return u.concepts.some(function (c) {
        return (!part || c.part === part) && (!measure || c.measure === measure);
      });
    }
    return true;
  }
  function key(u, name) {
    var v = u[name];
    if (v === null || v === undefined) return -Infinity;
    return name === 'label_z' ? Math.abs(v) : v;
  }
  function card(u) {
    var a = document.createElement('a');
    a.className = 'card';
    a.href = 'units/unit-' + pad(u.unit) + '.html';
    a.dataset.unit = u.unit;
    if (u.strip) {
      var img = document.createElement('img');
      img.loading = 'lazy';
      img.src = u.strip;
      img.alt = 'sweep of unit ' + u.unit;
      a.appendChild(img);
    }
    function span(cls, text) {
      var s = document.createElement('span');
      s.className = cls;
      s.textContent = text;
      a.appendChild(s);
    }
    span('unit-number', 'unit ' + u.unit);
    span('label', !u.part ? 'none' : u.reliable ? u.label : 'no reliable label');
    if (u.part) span('confidence', 'confidence ' + (u.confidence === null ? 'n/a' : Math.round(100 * u.confidence) + '%') +
                     (u.reliable ? '' : ' · ' + u.label));
    span('figures', (u.expressible ? 'expressible' : 'not expressible') + ' · gain ' + number(u.gain) +
         ' · r ' + number(u.correlation));
    span('concepts', u.concepts.slice(0, 3).map(function (c) {
      return c.part + ' ' + c.measure + ' (z ' + number(c.z) + ')';
    }).join('; '));
    return a;
  }
  function render() {
    var sortKey = field('sort');
    var list = units.filter(matches);
    if (sortKey !== 'unit') {
      list.sort(function (a, b) { return key(b, sortKey) - key(a, sortKey) || a.unit - b.unit; });
    }
    gallery.replaceChildren.apply(gallery, list.slice(0, shown).map(card));
    counter.textContent = list.length + ' of ' + units.length + ' units';
    more.hidden = list.length <= shown;
  }
  ['filter-label', 'filter-expressible', 'filter-reliable', 'filter-part', 'filter-measure', 'sort'].forEach(function (id) {
    var element = document.getElementById(id);
    element.addEventListener('input', function () { shown = page; render(); });
    element.addEventListener('change', function () { shown = page; render(); });
  });
  more.addEventListener('click', function () { shown += page; render(); });
  render();
})();
)js";
}

std::string_view explorer_page() {
  return R"html(<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>linkstyle explorer</title><link rel="icon" href="data:,"><link rel="stylesheet" href="/report.css"></head>
<body><nav><span class="brand">linkstyle</span><span style="color:#d8deea" id="study-name"></span></nav>
<main class="explorer">
<div>
  <div class="panel"><h2>Start from</h2>
    <label>class <select id="class-select"></select></label>
    <label>sample <select id="sample-select"></select></label>
    <p><label>or an image <input id="upload" type="file" accept="image/*"></label></p>
  </div>
  <div class="panel"><h2>Units</h2>
    <input id="unit-search" type="search" placeholder="search units by label or number" style="width:100%">
    <div id="unit-results"></div>
    <div id="sliders"></div>
    <button id="reset" type="button">reset all</button>
  </div>
  <div class="panel"><h2>Counterfactual</h2>
    <label>to <select id="target-select"></select></label>
    <label>method <select id="method-select"><option value="realistic">realistic</option><option value="paper">paper</option></select></label>
    <button id="run-counterfactual" type="button">run</button>
    <div id="path-controls" hidden>
      <input id="path-slider" type="range" min="0" max="0" step="1" value="0" style="width:100%">
      <div id="path-caption"></div>
    </div>
  </div>
</div>
<div>
  <div class="views">
    <figure><img id="image" alt="G(L(r))"><figcaption>G(L(r)) with the units set</figcaption></figure>
    <figure><img id="parts" alt="parts"><figcaption><span id="parts-caption">the parts</span><div id="parts-legend"></div></figcaption></figure>
    <figure id="path-figure" hidden><img id="path-image" alt="counterfactual path"><figcaption>counterfactual path</figcaption></figure>
  </div>
  <div class="panel"><h2>The classifier's top classes</h2><table id="top-classes"></table></div>
  <div id="status"></div><div id="error"></div>
</div>
</main>
<script src="/explorer.js"></script></body></html>
)html";
}

std::string_view explorer_script() {
  return R"js('use strict';
(function () {
  var study = null, upload = null, sliders = {}, pending = false, again = false, path = null;
  var $ = function (id) { return document.getElementById(id); };
  function option(value, text) { var o = document.createElement('option'); o.value = value; o.textContent = text; return o; }
  function showError(text) { $('error').textContent = text || ''; }
  function post(url, body, type) {
    return fetch(url, { method: 'POST', body: body, headers: { 'Content-Type': type || 'application/json' } })
      .then(function (response) {
        return response.json().then(function (data) {
          if (!response.ok) throw new Error(data.error || ('HTTP ' + response.status));
          return data;
        });
      });
  }
  function source() {
    if (upload) return { upload: upload };
    return { sample: Number($('sample-select').value) };
  }
  function request() {
    var body = source();
    body.units = {};
    Object.keys(sliders).forEach(function (u) { body.units[u] = sliders[u].touched ? Number(sliders[u].input.value) : null; });
    return body;
  }
  function showTop(top) {
    var table = $('top-classes');
    table.replaceChildren();
    top.forEach(function (t) {
      var row = document.createElement('tr');
      [t.name, (100 * t.probability).toFixed(1) + '%'].forEach(function (text) {
        var cell = document.createElement('td'); cell.textContent = text; row.appendChild(cell);
      });
      table.appendChild(row);
    });
  }
  function render() {
    if (pending) { again = true; return; }
    pending = true;
    document.body.dataset.busy = 'true';
    var started = performance.now();
    post('/api/render', JSON.stringify(request())).then(function (data) {
      $('image').src = data.image;
      if (data.parts) $('parts').src = data.parts;
      showTop(data.top);
      Object.keys(data.base_values).forEach(function (u) {
        var s = sliders[u];
        if (s && !s.touched) { s.input.value = data.base_values[u]; s.value.textContent = Number(data.base_values[u]).toFixed(3); }
      });
      $('status').textContent = 'updated in ' + Math.round(performance.now() - started) + ' ms (server ' +
        data.milliseconds.toFixed(1) + ' ms)';
      document.body.dataset.renders = String(Number(document.body.dataset.renders || 0) + 1);
      showError('');
    }).catch(function (error) { showError(error.message); }).finally(function () {
      pending = false;
      if (again) { again = false; render(); } else { document.body.dataset.busy = 'false'; }
    });
  }
  function addSlider(unit) {
    if (sliders[unit]) return;
    var info = study.units[unit];
    var row = document.createElement('div');
    row.className = 'slider-row';
    var name = document.createElement('span');
    name.textContent = 'unit ' + unit + (info.label && info.label !== 'none' ? ' · ' + info.label : '');
    var value = document.createElement('span');
    var input = document.createElement('input');
    input.type = 'range';
    var low = info.min, high = info.max, span = Math.max(high - low, 1e-3);
    input.min = low - 0.5 * span; input.max = high + 0.5 * span; input.step = span / 200;
    input.id = 'slider-' + unit;
    input.setAttribute('aria-label', 'unit ' + unit);
    var remove = document.createElement('button');
    remove.type = 'button'; remove.textContent = '×'; remove.title = 'remove';
    var entry = { input: input, value: value, touched: false };
    input.addEventListener('input', function () { entry.touched = true; value.textContent = Number(input.value).toFixed(3); render(); });
    remove.addEventListener('click', function () { delete sliders[unit]; row.remove(); render(); });
    row.append(name, value, remove, input);
    $('sliders').appendChild(row);
    sliders[unit] = entry;
    render();
  }
  function search() {
    var text = $('unit-search').value.trim().toLowerCase();
    var results = $('unit-results');
    results.replaceChildren();
    if (!text) return;
    study.units.filter(function (u) {
      return String(u.unit) === text || (u.label || '').toLowerCase().indexOf(text) >= 0;
    }).slice(0, 12).forEach(function (u) {
      var b = document.createElement('button');
      b.type = 'button';
      b.textContent = 'unit ' + u.unit + ' · ' + (u.label || 'none') + (u.expressible ? '' : ' (not expressible)');
      b.addEventListener('click', function () { addSlider(u.unit); });
      results.appendChild(b);
    });
  }
  function fillSamples() {
    var c = Number($('class-select').value);
    var select = $('sample-select');
    select.replaceChildren();
    study.samples.filter(function (s) { return s.class === c; }).forEach(function (s) {
      select.appendChild(option(s.sample, 'sample ' + s.sample));
    });
  }
  function showPathFrame() {
    var i = Number($('path-slider').value), frame = path.frames[i];
    $('path-image').src = frame.image;
    $('path-caption').textContent = 'alpha ' + frame.alpha.toFixed(2) + ': p(' + path.target + ') = ' +
      (100 * frame.target_probability).toFixed(1) + '%, top class ' + frame.top_name;
  }
  function runCounterfactual() {
    var body = source();
    body.to = Number($('target-select').value);
    body.method = $('method-select').value;
    $('status').textContent = 'optimising...';
    // The optimisation's progress while the request runs.
    var polling = setInterval(function () {
      fetch('/api/counterfactual/progress').then(function (r) { return r.json(); }).then(function (p) {
        if (p.running) $('status').textContent = 'optimising... step ' + p.step + ' of at most ' + p.max_steps;
      }).catch(function () {});
    }, 250);
    post('/api/counterfactual', JSON.stringify(body)).finally(function () { clearInterval(polling); }).then(function (data) {
      path = data;
      $('path-figure').hidden = false;
      $('path-controls').hidden = false;
      $('path-slider').max = data.frames.length - 1;
      // Start at alpha = 1, the counterfactual itself (the path goes on past it).
      var nearest = 0;
      data.frames.forEach(function (f, i) {
        if (Math.abs(f.alpha - 1) < Math.abs(data.frames[nearest].alpha - 1)) nearest = i;
      });
      $('path-slider').value = nearest;
      showPathFrame();
      $('status').textContent = (data.success ? 'reached ' : 'did not reach ') + data.target + ' after ' + data.steps +
        ' steps (' + data.method + ')' +
        (data.realism === null ? '' : '; realism ' + data.realism.toFixed(2) + ' (class ' + data.target +
          '\'s own up to ' + data.realism_threshold.toFixed(2) + ')') +
        '; units carrying the shift: ' + data.units.map(function (u) { return u.unit; }).join(', ');
      showError('');
    }).catch(function (error) { showError(error.message); });
  }
  fetch('/api/study').then(function (r) { return r.json(); }).then(function (data) {
    study = data;
    $('study-name').textContent = data.study;
    data.sample_classes.forEach(function (name, k) { $('class-select').appendChild(option(k, name)); });
    data.classes.forEach(function (name, k) { $('target-select').appendChild(option(k, name)); });
    $('target-select').value = data.classes.length > 1 ? 1 : 0;
    if (!data.has_parts) $('parts-caption').textContent = 'no parts in this study';
    data.part_names.forEach(function (name, k) {
      var chip = document.createElement('span');
      chip.className = 'part-chip';
      chip.style.borderLeftColor = data.part_colours[k];
      chip.textContent = name;
      $('parts-legend').appendChild(chip);
    });
    fillSamples();
    $('class-select').addEventListener('change', function () { upload = null; fillSamples(); render(); });
    $('sample-select').addEventListener('change', function () { upload = null; render(); });
    $('unit-search').addEventListener('input', search);
    $('reset').addEventListener('click', function () {
      Object.keys(sliders).forEach(function (u) { sliders[u].touched = false; });
      render();
    });
    $('upload').addEventListener('change', function () {
      var file = $('upload').files[0];
      if (!file) return;
      post('/api/upload', file, file.type || 'application/octet-stream').then(function (data) {
        upload = data.upload;
        $('status').textContent = 'uploaded: classified as ' + data.name;
        render();
      }).catch(function (error) { showError(error.message); });
    });
    $('run-counterfactual').addEventListener('click', runCounterfactual);
    $('path-slider').addEventListener('input', showPathFrame);
    document.body.dataset.ready = 'true';
    render();
  }).catch(function (error) { showError(error.message); });
})();
)js";
}

}  // namespace linkstyle::report
