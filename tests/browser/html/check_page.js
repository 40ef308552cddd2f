// check_page.js: opens an HTML report in headless Chromium (Debian's) and prints what its DOM shows, as JSON, for tests/integration/test_html.sh to judge.
// usage: node check_page.js REPORT.html SCREENSHOT.png
'use strict';
const { chromium } = require('playwright-core');
const path = require('path');

async function main() {
  const [file, shot] = process.argv.slice(2);
  const url = 'file://' + path.resolve(file);
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    // Chromium's own background traffic (updates, sync) off: the page's requests are the ones that count.
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
  const out = { requests: [], console_errors: [], page_errors: [] };
  try {
    const ctx = await browser.newContext({ viewport: { width: 1400, height: 900 } });
    const page = await ctx.newPage();
    // Every request the page makes, the file itself included: anything else is a leak.
    page.on('request', (r) => out.requests.push(r.url()));
    page.on('console', (m) => { if (m.type() === 'error' || m.type() === 'warning') out.console_errors.push(m.text()); });
    page.on('pageerror', (e) => out.page_errors.push(String(e)));
    await page.addInitScript(() => {
      window.__csp = [];
      document.addEventListener('securitypolicyviolation', (e) => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));
    });
    await page.goto(url, { waitUntil: 'load' });
    await page.waitForTimeout(300);
    Object.assign(out, await page.evaluate(() => ({
      drawn: document.documentElement.getAttribute('data-drawn'),
      csp: window.__csp,
      pwned: typeof window.__pwned,
      scripts: Array.from(document.querySelectorAll('script')).map((s) => s.type || 'classic'),
      lanes: Array.from(document.querySelectorAll('.lane[data-tid]')).map((e) => ({
        tid: +e.dataset.tid, pid: +e.dataset.pid, name: e.querySelector('.tname').textContent,
        drawn: e.querySelector('canvas').width > 1 })),
      cards: Array.from(document.querySelectorAll('article.card')).map((e) => ({
        stage: e.dataset.stage, model: e.dataset.model, workers: +e.dataset.workers,
        shown_model: e.querySelector('.model').textContent, shown_workers: +e.querySelector('.workers').textContent,
        // Its perf counters' table (null when the card has none): per row the event and the cells shown.
        counters: e.querySelector('table.ctr') && Array.from(e.querySelectorAll('table.ctr tbody tr')).map((tr) => ({
          event: tr.dataset.event, cells: Array.from(tr.cells).map((c) => c.textContent),
          marks: Array.from(tr.querySelectorAll('.mark')).map((m) => m.title) })),
        counters_note: (e.querySelector('.ctrnone') || {}).textContent || null })),
      // The Counters section: every event's row (its cells), the threads' table (head and rows), each lane's tooltip.
      counter_events: Array.from(document.querySelectorAll('table.ctr-events tbody tr')).map((tr) => ({
        event: tr.dataset.event, cells: Array.from(tr.cells).map((c) => c.textContent) })),
      counter_threads: document.querySelector('table.ctr-threads') && {
        head: Array.from(document.querySelectorAll('table.ctr-threads thead th')).map((c) => c.textContent),
        rows: Array.from(document.querySelectorAll('table.ctr-threads tbody tr')).map((tr) => ({
          pid: +tr.dataset.pid, tid: +tr.dataset.tid, cells: Array.from(tr.cells).map((c) => c.textContent) })),
      },
      lane_titles: Array.from(document.querySelectorAll('.lane[data-tid]')).map((e) => e.title),
      // The lock sites table, cell by cell: its rows are the report's processes[].locks[].
      lock_sites: Array.from(document.querySelectorAll('table.lock-sites tbody tr')).map((tr) =>
        Array.from(tr.querySelectorAll('td')).map((td) => td.textContent)),
      imgs: document.querySelectorAll('img').length,
      flames: Array.from(document.querySelectorAll('.flame canvas')).map((c) => c.height),
      text: document.body.textContent,
      title: document.title,
      // A run `poolprof sweep --keep` profiled: its table's cells, and whether the curve was drawn (its points).
      sweep: document.getElementById('sweep') && {
        rows: Array.from(document.querySelectorAll('#sweep tbody tr')).map((tr) => Array.from(tr.cells).map((c) => c.textContent)),
        drawn: document.getElementById('sweepcv').width > 1,
        points: +document.getElementById('sweepcv').getAttribute('data-points'),
      },
    })));
    // The search box highlights: typing a frame of the on-CPU graph says how much matched.
    await page.fill('#search', 'python');
    out.search = await page.textContent('#matched');
    await page.fill('#search', '');
    if (shot) await page.screenshot({ path: shot, fullPage: true });
    await ctx.close();
    // Readable without script: the verdict cards and lanes are HTML from the renderer.
    const noJs = await browser.newContext({ javaScriptEnabled: false });
    const p2 = await noJs.newPage();
    await p2.goto(url);
    out.nojs = await p2.evaluate(() => ({
      cards: document.querySelectorAll('article.card').length,
      lanes: document.querySelectorAll('.lane[data-tid]').length,
      locks: document.querySelectorAll('#locks table.locks tbody tr').length,
      lock_sites: document.querySelectorAll('#locks table.lock-sites tbody tr').length,
      sweep_rows: document.querySelectorAll('#sweep tbody tr').length,
      counter_rows: document.querySelectorAll('table.ctr tbody tr, table.ctr-events tbody tr').length,
    }));
    await noJs.close();
  } finally {
    await browser.close();
  }
  process.stdout.write(JSON.stringify(out));
}

main().catch((e) => { console.error(e); process.exit(1); });
