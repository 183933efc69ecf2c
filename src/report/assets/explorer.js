'use strict';
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
