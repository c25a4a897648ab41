// Browser test of `deferscope scan --format html`, in Debian's headless
// Chromium driven by playwright-core (run.sh installs both and writes the
// manifest). Per binary: the report opens from a file:// URL with the
// network off and no request leaves the page; the table has one row per
// site of `deferscope scan --format json` on the same binary (the same
// function, file, line and kind); the kind, origin and package filters
// narrow it to the counts the JSON gives; sorting orders the rows; a
// function panel shows the annotated instruction at each site's pc; at
// 1400 px, disassembly columns never touch, chart labels stay inside the
// chart, cells break only between tokens and reason chips are unique
// (measured with getBoundingClientRect and Range); and a screenshot is
// saved. The page of many binaries (`scan DIR`): choosing
// each binary in the selector shows its table, with one row per site of
// that binary's document in the batch JSON, and no script error; the
// summary lists every binary. The oracle for every count is the JSON
// document, read here, not the page's own numbers.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { readFileSync, statSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import path from 'node:path';

const manifest = JSON.parse(readFileSync(process.env.HTML_TEST_MANIFEST, 'utf8'));
const require = createRequire(path.join(process.env.HTML_TEST_NODE_MODULES, 'x.js'));
const { chromium } = require('playwright-core');

const KINDS = ['open-coded', 'stack-allocated', 'heap-allocated'];

let browser;
before(async () => {
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: [
      '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      // Any request that got past the offline context would go to a closed port.
      '--proxy-server=http://127.0.0.1:9', '--proxy-bypass-list=<-loopback>',
    ],
  });
});
after(async () => { if (browser) await browser.close(); });

async function open(c) {
  const context = await browser.newContext({ offline: true, viewport: { width: 1440, height: 900 } });
  const page = await context.newPage();
  const url = pathToFileURL(c.html).href;
  const requests = [];
  const errors = [];
  page.on('request', (r) => requests.push(r.url()));
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  await page.goto(url, { waitUntil: 'load' });
  await page.waitForSelector('body[data-ready="1"]', { timeout: 30000 });
  return { context, page, url, requests, errors };
}

const rowCount = (page) => page.locator('#sites tbody tr').count();

async function setSelect(page, id, value) {
  await page.selectOption('#' + id, value);
}

// The rows' (function, file:line, kind) as sorted strings.
async function rowKeys(page) {
  return page.$$eval('#sites tbody tr', (trs) => trs.map((tr) => {
    const td = tr.querySelectorAll('td');
    return td[1].textContent + '|' + td[2].title + '|' + tr.dataset.kind;
  }));
}

for (const c of manifest.cases) {
  describe(c.name, () => {
    const doc = JSON.parse(readFileSync(c.json, 'utf8'));
    const sites = doc.sites;
    let s;
    before(async () => { s = await open(c); });
    after(async () => { if (s) await s.context.close(); });

    test('opens offline from file://, no request leaves the page, no script error', async () => {
      assert.ok(await s.page.evaluate(() => navigator.onLine === false), 'context is offline');
      assert.deepEqual(s.requests.filter((u) => u !== s.url), []);
      assert.deepEqual(s.errors, []);
      console.log(`# ${c.name}: ${(statSync(c.html).size / 1024).toFixed(0)} KiB html, ${sites.length} sites in JSON`);
    });

    test('one table row per JSON site, same function, file, line and kind', async () => {
      const limit = await s.page.evaluate(() => JSON.parse(document.getElementById('data').textContent).limit);
      const n = await rowCount(s.page);
      const matching = Number(await s.page.getAttribute('#sites', 'data-matching'));
      assert.equal(matching, sites.length);
      assert.equal(n, Math.min(sites.length, limit));
      console.log(`# ${c.name}: ${n} rows in Chromium, ${sites.length} sites in JSON`);
      if (sites.length <= limit) {
        const want = sites.map((x) => `${x.function}|${x.file}:${x.line}|${x.kind}`).sort();
        assert.deepEqual((await rowKeys(s.page)).sort(), want);
      }
    });

    test('filters narrow the table to the JSON counts', async () => {
      const p = s.page;
      for (let k = 0; k < 3; k++) {
        await setSelect(p, 'f-kind', String(k));
        const want = sites.filter((x) => x.kind === KINDS[k]).length;
        assert.equal(await rowCount(p), want, `kind ${KINDS[k]}`);
        const kinds = await p.$$eval('#sites tbody tr', (trs) => [...new Set(trs.map((t) => t.dataset.kind))]);
        assert.ok(want === 0 || (kinds.length === 1 && kinds[0] === KINDS[k]));
        console.log(`# ${c.name}: kind = ${KINDS[k]}: ${want} rows`);
      }
      await setSelect(p, 'f-kind', '');
      for (const o of ['main', 'std', 'dep']) {
        await setSelect(p, 'f-origin', o);
        assert.equal(await rowCount(p), sites.filter((x) => x.origin === o).length, `origin ${o}`);
      }
      await setSelect(p, 'f-origin', '');
      // Kind and origin together.
      await setSelect(p, 'f-kind', '0');
      await setSelect(p, 'f-origin', 'main');
      assert.equal(await rowCount(p), sites.filter((x) => x.kind === 'open-coded' && x.origin === 'main').length);
      await p.click('#f-reset');
      assert.equal(await rowCount(p), Math.min(sites.length, 5000));
      // The chart's biggest package bar filters by package.
      const bar = p.locator('svg.chart .bar[data-pkg]').first();
      const pkg = await bar.getAttribute('data-pkg');
      await bar.click();
      const wantPkg = sites.filter((x) => x.package === pkg).length;
      assert.ok(wantPkg > 0);
      assert.equal(await rowCount(p), wantPkg, `package ${pkg}`);
      await p.click('#f-reset');
      // Free text: a file's base name matches exactly the sites in that file
      // (or in a function or package whose name contains it).
      const file = sites[0].file;
      const q = file.slice(Math.max(file.lastIndexOf('/'), file.lastIndexOf('\\')) + 1);
      await p.fill('#f-q', q);
      await p.waitForTimeout(400); // the text filter is debounced
      const lq = q.toLowerCase();
      const byText = sites.filter((x) => (x.function + '\n' + x.file + ':' + x.line + '\n' + x.package).toLowerCase().includes(lq));
      assert.ok(byText.length > 0);
      // Deferred-call names also match, so the table has at least these.
      assert.ok(await rowCount(p) >= Math.min(byText.length, 5000));
      await p.click('#f-reset');
    });

    test('sorting by location, function and kind', async () => {
      const p = s.page;
      const loc = async () => p.$$eval('#sites tbody tr td:nth-child(3)', (tds) => tds.map((t) => t.title));
      const split = (x) => { const i = x.lastIndexOf(':'); return [x.slice(0, i), Number(x.slice(i + 1))]; };
      const ordered = (xs, dir) => xs.every((x, i) => {
        if (i === 0) return true;
        const [fa, la] = split(xs[i - 1]); const [fb, lb] = split(x);
        const c = fa < fb ? -1 : fa > fb ? 1 : la - lb;
        return dir * c <= 0;
      });
      await p.click('#sites th[data-key="loc"]');
      assert.equal(await p.getAttribute('#sites th[data-key="loc"]', 'aria-sort'), 'ascending');
      assert.ok(ordered(await loc(), 1), 'ascending by file, line');
      await p.click('#sites th[data-key="loc"]');
      assert.equal(await p.getAttribute('#sites th[data-key="loc"]', 'aria-sort'), 'descending');
      assert.ok(ordered(await loc(), -1), 'descending by file, line');
      await p.click('#sites th[data-key="func"]');
      const names = await p.$$eval('#sites tbody tr td:nth-child(2)', (tds) => tds.map((t) => t.textContent));
      assert.deepEqual(names, [...names].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)));
      // Kind sorts most severe first on the first click, then the other way.
      for (const dir of [-1, 1]) {
        await p.click('#sites th[data-key="kind"]');
        assert.equal(await p.getAttribute('#sites th[data-key="kind"]', 'aria-sort'), dir > 0 ? 'ascending' : 'descending');
        const kinds = await p.$$eval('#sites tbody tr', (trs) => trs.map((t) => t.dataset.kind));
        const rank = kinds.map((k) => KINDS.indexOf(k));
        assert.ok(rank.every((r, i) => i === 0 || dir * (rank[i - 1] - r) <= 0), `kind ${dir}`);
      }
      await p.click('#f-reset');
      const first = await p.$$eval('#sites tbody tr', (trs) => trs.slice(0, 1).map((t) => t.dataset.kind));
      const worst = sites.some((x) => x.kind === 'heap-allocated') ? 'heap-allocated'
        : sites.some((x) => x.kind === 'stack-allocated') ? 'stack-allocated' : 'open-coded';
      assert.deepEqual(first, sites.length ? [worst] : []);
    });

    test('a function panel shows the annotated instruction at each site pc', async () => {
      const p = s.page;
      if (!sites.length) return;
      // The most severe site (first row by default); its pc is the
      // registering instruction: a CALL of runtime.deferproc* for stack and
      // heap sites, the closure store for open-coded ones (docs/json.md).
      await p.click('#sites tbody tr:first-child a.fn');
      const site = await p.$eval('#sites tbody tr:first-child', (tr) => tr.querySelector('td:nth-child(3)').title);
      const [file, line] = [site.slice(0, site.lastIndexOf(':')), Number(site.slice(site.lastIndexOf(':') + 1))];
      const fname = await p.$eval('#sites tbody tr:first-child a.fn', (a) => a.textContent);
      const want = sites.find((x) => x.function === fname && x.file === file && x.line === line);
      assert.ok(want, 'the first row is a JSON site');
      const panel = p.locator('details.fn[open]').first();
      assert.equal(await panel.locator('summary .n').textContent(), fname);
      const row = panel.locator(`.dis div[data-pc="${want.pc}"]`);
      assert.equal(await row.count(), 1, `listing has pc ${want.pc.toString(16)}`);
      const text = await row.textContent();
      if (want.kind !== 'open-coded') {
        assert.match(text, /CALL runtime\.deferproc/);
        assert.match(text, /\/\/ /, 'annotated');
      } else {
        assert.match(text, /\/\/ .*slot/);
      }
      assert.ok(await panel.locator('dl.kv dt').count() >= 2);
      await p.waitForTimeout(1800); // the panel's highlight fades
      await p.screenshot({ path: c.screenshot.replace(/\.png$/, '-panel.png') });
    });

    // An unknown callee is spelled as `deferscope explain` spells it
    // (issue 15 item 10: the table said "-").
    test('an unresolved callee reads "unresolved" in the table', async () => {
      const p = s.page;
      await p.click('#f-reset');
      const ex = JSON.parse(readFileSync(c.explain, 'utf8'));
      const unresolved = new Set(ex.sites.filter((x) => x.deferred_target == null && !x.deferred_indirect)
        .map((x) => `${x.function}|${x.file}:${x.line}`));
      const cells = await p.$$eval('#sites tbody tr', (trs) => trs.map((tr) => {
        const td = tr.querySelectorAll('td');
        return [td[1].textContent + '|' + td[2].title, td[5].firstChild ? td[5].firstChild.textContent : ''];
      }));
      const got = cells.filter(([k]) => unresolved.has(k));
      console.log(`# ${c.name}: ${got.length} rows with an unresolved callee`);
      for (const [k, t] of got) assert.equal(t, 'unresolved', k);
    });

    // Issue 15 item 9, measured in the browser at 1400 px: adjacent
    // columns of a disassembly row never touch (a long location ran into
    // the pc: "plugin_installer.go:4550x8242cb"); no chart label starts
    // left of the chart (labels were cut at the left edge); no line of a
    // function, location, package or deferred-call cell ends inside a token
    // (between two letters or digits, or between ':' and the line number:
    // "dnsclient_unix.go:1" / "75"); a function's reason chips are unique
    // ("in-loop in-loop too-many-returns").
    test('layout: columns, chart labels, line breaks, chips', async () => {
      const p = s.page;
      await p.setViewportSize({ width: 1400, height: 900 });
      await p.click('#f-reset');
      // Lay out every panel, on screen or not (details.fn has
      // content-visibility: auto), and open them all.
      await p.addStyleTag({ content: 'details.fn { content-visibility: visible !important; }' });
      await p.evaluate(() => document.querySelectorAll('details.fn').forEach((d) => { d.open = true; }));
      await p.waitForFunction(() => [...document.querySelectorAll('details.fn')].every((d) => d.dataset.built));
      const r = await p.evaluate(() => {
        const out = { dis: [], rows: 0, chart: [], labels: 0, breaks: [], cells: 0, chips: [] };
        // Disassembly: each column's box, and its text, ends before the
        // next one starts.
        const textBox = (e) => {
          const t = document.createRange();
          t.selectNodeContents(e);
          return t.getBoundingClientRect();
        };
        for (const row of document.querySelectorAll('.dis div:not(.gap)')) {
          const sp = [...row.children].map((c) => [c.className, c.getBoundingClientRect(), c.textContent, textBox(c)]);
          out.rows++;
          for (let i = 1; i < sp.length; i++) {
            const [a, b] = [sp[i - 1], sp[i]];
            const gap = b[1].left - a[1].right;
            const tgap = b[2] && a[2] ? b[3].left - a[3].right : Infinity;
            if (!(gap > 0 && tgap > 0) && out.dis.length < 5) {
              out.dis.push(`${a[0]} "${a[2]}" and ${b[0]} "${b[2]}": boxes ${gap.toFixed(1)} px apart, text ${tgap.toFixed(1)} px`);
            }
          }
        }
        // Chart labels: inside the chart, left of the bars.
        for (const svg of document.querySelectorAll('svg.chart')) {
          const box = svg.getBoundingClientRect();
          for (const g of svg.querySelectorAll('g.bar')) {
            const t = g.querySelector('text.lbl').getBoundingClientRect();
            const bar = g.querySelector('rect:not(.hit)');
            out.labels++;
            const barLeft = bar ? bar.getBoundingClientRect().left : Infinity;
            if (t.left < box.left || t.right > barLeft) {
              out.chart.push(`"${g.querySelector('text.lbl').textContent}" spans ${t.left.toFixed(1)}..${t.right.toFixed(1)}, chart starts at ${box.left.toFixed(1)}, bar at ${barLeft.toFixed(1)}`);
            }
          }
        }
        // Line breaks in cells: where a character's box starts a new line,
        // the characters either side must not be one token, unless that
        // token is wider than the cell.
        const alnum = /[A-Za-z0-9]/;
        const digit = /[0-9]/;
        const cells = document.querySelectorAll('#sites td.fn, #sites td.loc, #sites td.pkg, #sites td.tg, details.fn > summary .n, details.fn > summary .where');
        const range = document.createRange();
        for (const cell of cells) {
          out.cells++;
          const lh = parseFloat(getComputedStyle(cell).lineHeight) || 16;
          const ch = cell.getBoundingClientRect().height;
          if (ch < 1.5 * lh) continue; // one line
          // The cell's characters with their boxes; white space that is
          // collapsed or hangs at a line's end separates tokens.
          const chars = [];
          const walker = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT);
          for (let n = walker.nextNode(); n; n = walker.nextNode()) {
            for (let i = 0; i < n.data.length; i++) {
              range.setStart(n, i); range.setEnd(n, i + 1);
              const rects = range.getClientRects();
              const c = n.data[i];
              chars.push(!rects.length || /\s/.test(c) ? { c, sep: true } : { c, top: rects[0].top, w: rects[0].width });
            }
          }
          const cs = getComputedStyle(cell);
          const room = cell.clientWidth - parseFloat(cs.paddingLeft) - parseFloat(cs.paddingRight);
          let shown = '';
          const first = out.breaks.length;
          let prev = -1; // index of the last character with a box
          chars.forEach((x, i) => {
            if (x.sep) { shown += x.c; return; }
            const p = prev >= 0 ? chars[prev] : null;
            const joined = p && prev === i - 1;
            if (p && x.top > p.top + 2) {
              shown += '|';
              if (joined && ((alnum.test(p.c) && alnum.test(x.c)) || (p.c === ':' && digit.test(x.c)))) {
                // Allowed only when the token (its letters and digits, or
                // ':' and the digits) is wider than the cell: nowhere else
                // to break it.
                let a = prev; let b = i;
                const inTok = (k) => !chars[k].sep && (alnum.test(chars[k].c) || (chars[k].c === ':' && k + 1 < chars.length && digit.test(chars[k + 1].c)));
                while (a > 0 && inTok(a - 1)) a--;
                while (b + 1 < chars.length && inTok(b + 1)) b++;
                const width = chars.slice(a, b + 1).reduce((t, y) => t + (y.w || 0), 0);
                if (width <= room && out.breaks.length < 8) out.breaks.push({ at: p.c + '|' + x.c, text: cell.textContent });
              }
            }
            shown += x.c;
            prev = i;
          });
          for (const b of out.breaks.slice(first)) b.shown = shown;
        }
        // Reason chips: unique per function panel and per row.
        for (const box of document.querySelectorAll('details.fn > summary, #sites td.why')) {
          const chips = [...box.querySelectorAll('.chip.r')].map((c) => c.textContent);
          if (new Set(chips).size !== chips.length && out.chips.length < 5) out.chips.push(chips.join(' '));
        }
        return out;
      });
      console.log(`# ${c.name}: layout: ${r.rows} disassembly rows, ${r.labels} chart labels, ${r.cells} cells checked`);
      for (const b of r.breaks) console.log(`#   break inside a token ${b.at}: ${b.shown || b.text}`);
      const problems = {
        'disassembly columns that touch': r.dis,
        'chart labels outside their column': r.chart,
        'line breaks inside tokens': r.breaks.map((b) => b.at + ' in ' + (b.shown || b.text)),
        'repeated reason chips': r.chips,
      };
      assert.deepEqual(problems, Object.fromEntries(Object.keys(problems).map((k) => [k, []])));
      await p.screenshot({ path: c.screenshot.replace(/\.png$/, '-layout.png') });
      await p.setViewportSize({ width: 1440, height: 900 });
    });

    test('screenshot', async () => {
      const p = s.page;
      await p.click('#f-reset');
      await p.evaluate(() => window.scrollTo(0, 0));
      await p.screenshot({ path: c.screenshot });
      assert.ok(statSync(c.screenshot).size > 10000);
      console.log(`# ${c.name}: screenshot ${c.screenshot}`);
    });

    if (c.hostile) {
      test('markup in file paths stays text', async () => {
        const p = s.page;
        assert.equal(await p.evaluate(() => window.pwned), undefined);
        assert.equal(await p.evaluate(() => document.images.length), 0);
        assert.equal(await p.evaluate(() => document.scripts.length), 2);
        const titles = await p.$$eval('#sites tbody tr td:nth-child(3)', (tds) => tds.map((t) => t.title));
        assert.ok(titles.some((t) => t.includes('</script><img src=x onerror="window.pwned=1">&amp;')));
      });
    }
  });
}

for (const c of manifest.batch || []) {
  describe(c.name, () => {
    const doc = JSON.parse(readFileSync(c.json, 'utf8'));
    let s;
    before(async () => { s = await open(c); });
    after(async () => { if (s) await s.context.close(); });

    test('the summary lists every binary of the JSON', async () => {
      const names = await s.page.$$eval('#batch-summary button.pick', (bs) => bs.map((b) => b.textContent));
      assert.deepEqual(names, doc.binaries.map((b) => b.binary.path));
      assert.equal(await s.page.locator('#binary-view *').count(), 0);
    });

    test('choosing each binary shows its own table, offline, without script errors', async () => {
      const p = s.page;
      for (let i = 0; i < doc.binaries.length; i++) {
        await setSelect(p, 'binary-select', String(i));
        await p.waitForSelector('body[data-ready="1"]', { timeout: 30000 });
        assert.equal(await p.locator('#binary-view h1').textContent(), doc.binaries[i].binary.path);
        const want = doc.binaries[i].sites.map((x) => `${x.function}|${x.file}:${x.line}|${x.kind}`).sort();
        assert.deepEqual((await rowKeys(p)).sort(), want, doc.binaries[i].binary.path);
        assert.equal(await p.locator('#batch-summary').isHidden(), true);
      }
      await setSelect(p, 'binary-select', '');
      assert.equal(await p.locator('#batch-summary').isVisible(), true);
      assert.deepEqual(s.requests.filter((u) => u !== s.url), []);
      assert.deepEqual(s.errors, []);
      await setSelect(p, 'binary-select', '0');
      await p.waitForSelector('body[data-ready="1"]', { timeout: 30000 });
      await p.screenshot({ path: c.screenshot, fullPage: false });
    });
  });
}
