// deferscope HTML report: builds the sites table and the function panels
// from the JSON embedded in #data. Every string from the binary goes into
// the page through textContent or an attribute, never through innerHTML.
(function () {
  'use strict';
  var D = JSON.parse(document.getElementById('data').textContent);
  var KINDS = ['open-coded', 'stack-allocated', 'heap-allocated'];
  var ORIGIN_RANK = { main: 0, dep: 1, std: 2 };
  var FUNC_LIMIT = 300; // panels rendered before "show all"
  var files = D.files, pkgs = D.pkgs, funcs = D.funcs;

  function base(p) {
    var i = Math.max(p.lastIndexOf('/'), p.lastIndexOf('\\'));
    return i < 0 ? p : p.slice(i + 1);
  }
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  // Text with line-break opportunities (<wbr>) only at token boundaries:
  // after the characters of `after`, before those of `before`; the text
  // itself (textContent) is unchanged. The stylesheet breaks inside a
  // token (overflow-wrap: break-word) only when one does not fit a line.
  var LOC = ['/_-', ':'];       // dnsclient_unix.go:175
  var NAME = ['/.', ':(['];     // pkg/path.(*T).method.func1
  var PKG = ['/.', ''];
  function breakable(parent, text, rule) {
    var start = 0;
    for (var i = 1; i < text.length; i++) {
      if (rule[0].indexOf(text.charAt(i - 1)) >= 0 || rule[1].indexOf(text.charAt(i)) >= 0) {
        parent.appendChild(document.createTextNode(text.slice(start, i)));
        parent.appendChild(document.createElement('wbr'));
        start = i;
      }
    }
    parent.appendChild(document.createTextNode(text.slice(start)));
    return parent;
  }
  // Distinct values, in order.
  function uniq(xs) {
    var seen = {};
    return xs.filter(function (x) { return seen[x] ? false : (seen[x] = true); });
  }
  function ns(x) { return x >= 10 ? Math.round(x) + ' ns' : x.toFixed(1) + ' ns'; }
  function hex(n) { return '0x' + n.toString(16); }
  function cmpStr(a, b) { return a < b ? -1 : a > b ? 1 : 0; }

  // ---- sites, with the strings the table shows and sorts on ----
  var sites = D.sites.map(function (s, i) {
    var fn = funcs[s[0]];
    var path = files[s[1]];
    var o = {
      i: i, f: s[0], path: path, line: s[2], k: s[3], pc: s[4], ns: s[5],
      target: s[6], via: s[7], flags: s[8], cb: s[9], alloc: s[10], loop: s[11], why: s[12],
      fname: fn.n, pkg: pkgs[fn.p], origin: fn.o
    };
    o.loc = base(path) + ':' + o.line;
    o.whys = o.why.join(', ');
    o.tgt = o.target || (o.flags & 1 ? 'indirect call' : '');
    o.hay = (o.fname + '\n' + path + ':' + o.line + '\n' + o.pkg + '\n' + o.tgt).toLowerCase();
    return o;
  });
  var byFunc = funcs.map(function () { return []; });
  sites.forEach(function (s) { byFunc[s.f].push(s); });
  funcs.forEach(function (fn, i) {
    var c = [0, 0, 0];
    byFunc[i].forEach(function (s) { c[s.k]++; });
    fn.counts = c;
    fn.idx = i;
  });

  // ---- filters ----
  var $ = function (id) { return document.getElementById(id); };
  var q = $('f-q'), fk = $('f-kind'), fo = $('f-origin'), fr = $('f-reason'), fp = $('f-pkg');
  var reasons = {};
  sites.forEach(function (s) { s.why.forEach(function (r) { reasons[r] = (reasons[r] || 0) + 1; }); });
  Object.keys(reasons).sort().forEach(function (r) {
    var opt = el('option', null, r + ' (' + reasons[r] + ')');
    opt.value = r;
    fr.appendChild(opt);
  });
  var pkgCount = {};
  sites.forEach(function (s) { pkgCount[s.pkg] = (pkgCount[s.pkg] || 0) + 1; });
  Object.keys(pkgCount).sort().forEach(function (p) {
    var opt = el('option', null, p + ' (' + pkgCount[p] + ')');
    opt.value = p;
    fp.appendChild(opt);
  });

  function matches(s, st) {
    if (st.kind !== '' && s.k !== +st.kind) return false;
    if (st.origin && s.origin !== st.origin) return false;
    if (st.reason && s.why.indexOf(st.reason) < 0) return false;
    if (st.pkg && s.pkg !== st.pkg) return false;
    if (st.q && s.hay.indexOf(st.q) < 0) return false;
    return true;
  }
  function state() {
    return { q: q.value.trim().toLowerCase(), kind: fk.value, origin: fo.value, reason: fr.value, pkg: fp.value };
  }
  function unfiltered() { return !(q.value.trim() || fk.value || fo.value || fr.value || fp.value); }

  // ---- sorting ----
  var byLoc = function (a, b) { return cmpStr(a.path, b.path) || a.line - b.line || a.pc - b.pc; };
  var KEYS = {
    kind: function (a, b) { return a.k - b.k; },
    func: function (a, b) { return cmpStr(a.fname, b.fname); },
    loc: byLoc,
    pkg: function (a, b) { return cmpStr(a.pkg, b.pkg); },
    why: function (a, b) { return cmpStr(a.whys || '\uffff', b.whys || '\uffff'); },
    target: function (a, b) { return cmpStr(a.tgt || '\uffff', b.tgt || '\uffff'); },
    ns: function (a, b) { return a.ns - b.ns; }
  };
  var FIRST_DIR = { kind: -1, ns: -1 };
  var sort = { key: 'kind', dir: -1 };
  function sorter(a, b) {
    var c = KEYS[sort.key](a, b) * sort.dir;
    if (c) return c;
    return (ORIGIN_RANK[a.origin] - ORIGIN_RANK[b.origin]) || byLoc(a, b);
  }
  var ths = document.querySelectorAll('#sites th[data-key]');
  function markSort() {
    ths.forEach(function (th) {
      th.setAttribute('aria-sort', th.dataset.key !== sort.key ? 'none' : sort.dir > 0 ? 'ascending' : 'descending');
    });
  }
  ths.forEach(function (th) {
    th.addEventListener('click', function () {
      var k = th.dataset.key;
      if (sort.key === k) sort.dir = -sort.dir;
      else { sort.key = k; sort.dir = FIRST_DIR[k] || 1; }
      render(true);
    });
  });

  // ---- the table ----
  var tbody = document.querySelector('#sites tbody');
  var siteLimit = D.limit, funcLimit = FUNC_LIMIT;

  function kindChip(k) { return el('span', 'kind k' + k, KINDS[k]); }
  function siteRow(s) {
    var tr = el('tr');
    tr.dataset.kind = KINDS[s.k];
    var td = el('td'); td.appendChild(kindChip(s.k)); tr.appendChild(td);
    td = el('td', 'fn');
    var a = breakable(el('a', 'fn'), s.fname, NAME);
    a.href = '#fn-' + s.f;
    a.addEventListener('click', function (ev) { ev.preventDefault(); openFunc(s.f, s.pc); });
    td.appendChild(a); tr.appendChild(td);
    td = breakable(el('td', 'loc'), s.loc, LOC); td.title = s.path + ':' + s.line; tr.appendChild(td);
    tr.appendChild(breakable(el('td', 'pkg'), s.pkg, PKG));
    td = el('td', 'why');
    uniq(s.why).forEach(function (r) { td.appendChild(el('span', 'chip r', r)); });
    if (s.loop) {
      var lp = el('span', 'muted', 'loop ' + s.loop[1] + (s.loop[2] !== s.loop[1] ? '-' + s.loop[2] : ''));
      lp.title = files[s.loop[0]] + ':' + s.loop[1] + '-' + s.loop[2];
      td.appendChild(lp);
    }
    tr.appendChild(td);
    td = el('td', 'tg');
    if (s.tgt) td.appendChild(breakable(el('span'), s.tgt, NAME)); else td.appendChild(el('span', 'muted', 'unresolved'));
    if (s.via) td.title = 'via ' + s.via;
    if (s.flags & 2) { td.appendChild(document.createTextNode(' ')); td.appendChild(el('span', 'chip n', 'recover')); }
    if (s.cb) { td.appendChild(document.createTextNode(' ')); td.appendChild(el('span', 'chip w', s.cb + ' B closure')); }
    tr.appendChild(td);
    tr.appendChild(el('td', 'num', s.ns ? ns(s.ns) : ''));
    return tr;
  }

  var current = [];
  // sortOnly: the same rows in another order, so the panels stay.
  function render(sortOnly) {
    var st = state();
    current = sites.filter(function (s) { return matches(s, st); });
    current.sort(sorter);
    markSort();
    var frag = document.createDocumentFragment();
    var n = Math.min(current.length, siteLimit);
    for (var i = 0; i < n; i++) frag.appendChild(siteRow(current[i]));
    tbody.replaceChildren(frag);
    var table = $('sites');
    table.dataset.matching = current.length;
    table.dataset.rendered = n;
    $('count').textContent = current.length + ' of ' + sites.length + ' site' + (sites.length === 1 ? '' : 's') +
      (n < current.length ? ' (first ' + n + ' shown)' : '');
    var more = $('more-sites');
    more.replaceChildren();
    if (n < current.length) {
      var b = el('button', null, 'Show all ' + current.length + ' rows');
      b.addEventListener('click', function () { siteLimit = Infinity; render(); });
      more.appendChild(b);
    }
    document.querySelectorAll('svg.chart .bar').forEach(function (g) {
      g.classList.toggle('sel', !!st.pkg && g.dataset.pkg === st.pkg);
    });
    if (!sortOnly) renderFuncs(st);
  }

  // ---- function panels ----
  function severity(fn) { return [-fn.counts[2], -fn.counts[1], -fn.r.length, ORIGIN_RANK[fn.o]]; }
  function funcOrder(a, b) {
    var x = severity(a), y = severity(b);
    for (var i = 0; i < x.length; i++) if (x[i] !== y[i]) return x[i] - y[i];
    return cmpStr(a.n, b.n);
  }
  var funcsSorted = funcs.slice().sort(funcOrder);
  var shownFuncs = [];
  function renderFuncs(st) {
    var keep = null;
    if (!unfiltered()) {
      keep = {};
      current.forEach(function (s) { keep[s.f] = true; });
    }
    shownFuncs = funcsSorted.filter(function (fn) { return keep === null || keep[fn.idx]; });
    var box = $('funcs');
    var frag = document.createDocumentFragment();
    var n = Math.min(shownFuncs.length, funcLimit);
    for (var i = 0; i < n; i++) frag.appendChild(panel(shownFuncs[i]));
    box.replaceChildren(frag);
    $('fcount').textContent = shownFuncs.length + ' of ' + funcs.length + ' function' + (funcs.length === 1 ? '' : 's') +
      (n < shownFuncs.length ? ' (first ' + n + ' shown)' : '');
    var more = $('more-funcs');
    more.replaceChildren();
    if (n < shownFuncs.length) {
      var b = el('button', null, 'Show all ' + shownFuncs.length + ' functions');
      b.addEventListener('click', function () { funcLimit = Infinity; renderFuncs(state()); });
      more.appendChild(b);
    }
  }

  function panel(fn) {
    var d = el('details', 'fn');
    d.id = 'fn-' + fn.idx;
    var sm = el('summary');
    for (var k = 2; k >= 0; k--) {
      if (fn.counts[k]) sm.appendChild(el('span', 'kind k' + k, fn.counts[k] + ' ' + KINDS[k]));
    }
    if (!fn.counts[0] && !fn.counts[1] && !fn.counts[2]) sm.appendChild(el('span', 'chip', 'no site of its own'));
    sm.appendChild(breakable(el('span', 'n'), fn.n, NAME));
    var where = breakable(el('span', 'where'), base(files[fn.f]) + ':' + fn.l, LOC);
    where.appendChild(document.createTextNode('  '));
    sm.appendChild(breakable(where, pkgs[fn.p], PKG));
    // One chip per reason (a function has a detail per loop with a defer).
    uniq(fn.r.map(function (r) { return r[0]; })).forEach(function (r) { sm.appendChild(el('span', 'chip r', r)); });
    d.appendChild(sm);
    d.addEventListener('toggle', function () {
      if (d.open && !d.dataset.built) { d.appendChild(panelBody(fn)); d.dataset.built = '1'; }
    });
    return d;
  }

  function kv(dl, label, items) {
    if (!items.length) return;
    dl.appendChild(el('dt', null, label));
    var dd = el('dd');
    items.forEach(function (it) {
      var row = el('div');
      if (typeof it === 'string') row.textContent = it; else row.appendChild(it);
      dd.appendChild(row);
    });
    dl.appendChild(dd);
  }

  function panelBody(fn) {
    var body = el('div', 'fbody');
    var dl = el('dl', 'kv');
    // In source order (a function's code is not: inlined and moved blocks).
    var ss = byFunc[fn.idx].slice().sort(function (a, b) {
      return cmpStr(a.path, b.path) || a.line - b.line || a.pc - b.pc;
    });
    kv(dl, 'where', [files[fn.f] + ':' + fn.l, 'package ' + pkgs[fn.p] + ' (' + fn.o + '), entry ' + hex(fn.e) + ', ' + fn.z + ' bytes' +
      (fn.dc !== undefined ? ', ' + fn.dc + ' direct caller' + (fn.dc === 1 ? '' : 's') : '')]);
    kv(dl, 'why', fn.r.map(function (r) {
      var s = el('span');
      s.appendChild(el('span', 'chip r', r[0]));
      s.appendChild(document.createTextNode(r[1]));
      return s;
    }));
    var calls = ss.map(function (s) {
      var t = s.target || (s.flags & 1 ? 'an indirect call (func value or interface method)' : 'unresolved');
      var line = el('span');
      line.appendChild(kindChip(s.k));
      line.appendChild(document.createTextNode(' ' + s.loc + ' \u2192 ' + t + (s.via ? ' (via ' + s.via + ')' : '') +
        (s.flags & 2 ? ', calls recover' : '')));
      return line;
    });
    kv(dl, 'calls', calls);
    var alloc = [];
    ss.forEach(function (s) {
      if (s.alloc) alloc.push(s.loc + ': a ' + (s.cb ? s.cb + '-byte ' : '') + 'heap closure per execution (' + s.alloc + ')');
    });
    if (fn.drb) alloc.push(fn.drb + ' B of _defer records in the frame');
    if (fn.counts[2]) alloc.push(fn.counts[2] + ' heap _defer record' + (fn.counts[2] === 1 ? '' : 's') + ' (from the per-P pool)');
    if (fn.osb) alloc.push(fn.osb + ' B of frame for open-coded defers' + (fn.ecb ? ', about ' + fn.ecb + ' B of exit code' : fn.ecb === 0 ? ', no open-coded exit found' : ''));
    kv(dl, 'alloc', alloc);
    if (ss.length) {
      kv(dl, 'cost', [ss.map(function (s) { return s.loc + ' about ' + ns(s.ns); }).join(', ') +
        ' per execution; open-coded is about ' + ns(D.cost.open_coded_ns) + ' (' + D.cost.origin + ' table)']);
    }
    var fixes = [];
    fn.r.forEach(function (r) { if (fixes.indexOf(r[2]) < 0) fixes.push(r[2]); });
    kv(dl, 'fix', fixes);
    var other = [];
    if (fn.rf) other.push('encloses a range-over-func loop whose body defers (calls runtime.deferrangefunc)');
    if (fn.od !== undefined && fn.od !== fn.counts[0]) other.push('the funcdata records ' + fn.od + ' open-coded defer' + (fn.od === 1 ? '' : 's') + '; the others were removed as dead code');
    kv(dl, 'note', other);
    body.appendChild(dl);
    body.appendChild(listing(fn, ss));
    return body;
  }

  function listing(fn, ss) {
    var wrap = el('div');
    var head = el('div', 'dishead', 'Annotated disassembly ');
    var cmd = "deferscope disasm --funcs '^" + fn.n.replace(/[.*+?^${}()|[\]\\]/g, '\\$&') + "$' " + D.binary;
    if (!fn.d) {
      head.appendChild(el('span', 'muted', D.listings ? '(not listed; run ' + cmd + ')' : '(not included in this report)'));
      wrap.appendChild(head);
      return wrap;
    }
    var skipped = 0;
    fn.d.split('\n').forEach(function (l) { if (l.charAt(0) === '~') skipped += +l.slice(1); });
    head.appendChild(el('span', 'muted', fn.dm === 'full'
      ? '(the whole function; instruction bytes: ' + cmd + ')'
      : '(excerpt: the defer machinery with one instruction either side, ' + skipped + ' instructions left out; whole function: ' + cmd + ')'));
    wrap.appendChild(head);
    var sitePc = {};
    ss.forEach(function (s) { sitePc[s.pc] = s.k; });
    var pre = el('div', 'dis');
    var pos = '';
    var posWidth = 0;
    var frag = document.createDocumentFragment();
    fn.d.split('\n').forEach(function (l) {
      if (!l) return;
      if (l.charAt(0) === '~') {
        frag.appendChild(el('div', 'gap', '\u22ef ' + l.slice(1) + ' instruction' + (l.slice(1) === '1' ? '' : 's')));
        return;
      }
      var c = l.split('\t');
      if (c[0]) { pos = c[0]; posWidth = Math.max(posWidth, pos.length); }
      var pc = fn.e + parseInt(c[1], 16);
      var row = el('div');
      row.dataset.pc = pc;
      if (sitePc[pc] !== undefined) row.className = 'site k' + sitePc[pc];
      else if (c.length > 3) row.className = 'ann';
      row.appendChild(el('span', 'pos', pos));
      row.appendChild(el('span', 'pc', hex(pc)));
      row.appendChild(el('span', 'ins', c[2] || ''));
      if (c.length > 3) row.appendChild(el('span', 'cm', '// ' + c.slice(3).join(' ')));
      frag.appendChild(row);
    });
    pre.appendChild(frag);
    // The position column is as wide as its longest entry (monospace: one
    // ch a character); a margin keeps the columns apart when one is wider.
    pre.style.setProperty('--pos-width', posWidth + 'ch');
    wrap.appendChild(pre);
    return wrap;
  }

  function openFunc(idx, pc) {
    var pos = -1;
    for (var i = 0; i < shownFuncs.length; i++) if (shownFuncs[i].idx === idx) { pos = i; break; }
    if (pos >= funcLimit) { funcLimit = Infinity; renderFuncs(state()); }
    var d = $('fn-' + idx);
    if (!d) return;
    d.open = true;
    if (!d.dataset.built) { d.appendChild(panelBody(funcs[idx])); d.dataset.built = '1'; }
    d.scrollIntoView({ block: 'start' });
    d.classList.remove('flash'); void d.offsetWidth; d.classList.add('flash');
    if (pc !== undefined) {
      var row = d.querySelector('.dis div[data-pc="' + pc + '"]');
      if (row) {
        var box = row.parentNode;
        box.scrollTop = Math.max(0, row.offsetTop - box.offsetTop - 60);
      }
    }
  }

  // ---- wiring ----
  var timer = 0;
  q.addEventListener('input', function () { clearTimeout(timer); timer = setTimeout(render, 120); });
  [fk, fo, fr, fp].forEach(function (s) { s.addEventListener('change', render); });
  $('f-reset').addEventListener('click', function () {
    q.value = ''; fk.value = ''; fo.value = ''; fr.value = ''; fp.value = '';
    sort = { key: 'kind', dir: -1 };
    render();
  });
  // Chart labels are shortened to fit their column in the report's font
  // (mod.rs, chart_label); in a wider font, shorten them further from the
  // start, so none runs past the chart's left edge.
  document.querySelectorAll('svg.chart[data-label-room]').forEach(function (svg) {
    var room = +svg.getAttribute('data-label-room');
    svg.querySelectorAll('text.lbl').forEach(function (t) {
      var text = t.textContent;
      while (text.length > 2 && t.getComputedTextLength() > room) {
        text = '\u2026' + text.replace(/^\u2026/, '').slice(1);
        t.textContent = text;
      }
    });
  });
  document.querySelectorAll('svg.chart .bar[data-pkg]').forEach(function (g) {
    g.addEventListener('click', function () {
      fp.value = fp.value === g.dataset.pkg ? '' : g.dataset.pkg;
      render();
    });
  });
  render();
  document.body.dataset.ready = '1';
})();
