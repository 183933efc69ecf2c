'use strict';
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
