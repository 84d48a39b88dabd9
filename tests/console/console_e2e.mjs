// Console.E2E: the web console (docs/CONSOLE.md) in a real browser, Debian's chromium driven
// headless by playwright-core, against a real `custody serve`.
//
// A person signs in with an admin token; an agent's action authorized (and completed) through
// the API appears in the live feed; opening it shows who initiated it, which identity executed
// it and what allowed it, and its receipt verified in the browser (WebCrypto: SHA-256, Ed25519).
// The same view turns red when the entry the server sends is tampered with (one byte of the
// event) or the receipt is (one byte of its checkpoint signature). Also: the CSP header, the
// first load under 300 KB compressed, the token in neither storage nor any URL, the cookie
// HttpOnly and SameSite=Strict as the browser keeps it, the reader role, sign-out.
// Screenshots of each view go to argv[4] (the test's build directory).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

import { registerAgent, request, startCustody, stopCleanly } from '../mcp/harness.mjs';

let chromium;
try {
  ({ chromium } = await import('playwright-core'));
} catch (e) {
  console.error('FAIL: cannot load playwright-core; run `npm ci` in tests/console (' + e.message + ')');
  process.exit(1);
}

const here = dirname(fileURLToPath(import.meta.url));
const custody = process.argv[2];
const shotDir = process.argv[4] ?? join(here, '..', '..', 'build');
if (!custody) {
  console.error('usage: node console_e2e.mjs /path/to/custody [source root] [screenshot dir]');
  process.exit(2);
}
const CHROMIUM = process.env.CUSTODY_CHROMIUM ?? '/usr/bin/chromium';
const CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
  "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";
const AGENT = 'issue-bot';
const POLICY = '@id("allow-issues") permit(principal, action == Action::"call_tool", resource in Server::"github");';

const dir = mkdtempSync(join(tmpdir(), 'custody-console-e2e-'));
let custodyProc;
let browser;
let failed = false;
let current;  // the page in use, for a screenshot when something fails
try {
  const started = await startCustody(custody, dir, '');
  custodyProc = started;
  const { url, adminToken } = started;
  const pub = await request(url, '/v1/policies', { token: adminToken, body: { policies: POLICY } });
  assert.equal(pub.status, 200, pub.text);
  const { session } = await registerAgent(url, adminToken, AGENT, ['github/*']);
  const agentToken = await session();

  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
  const page = await context.newPage();
  current = page;
  const pageErrors = [];
  page.on('pageerror', (e) => pageErrors.push(String(e)));
  page.on('console', (m) => { if (m.type() === 'error') pageErrors.push(m.text()); });
  const requested = [];
  page.on('request', (r) => requested.push(r.url()));

  // --- First load: the CSP, what it costs, nothing from elsewhere.
  const loaded = [];
  page.on('response', async (r) => {
    try { loaded.push({ url: r.url(), body: await r.body() }); } catch { /* redirects */ }
  });
  const index = await page.goto(url + '/console/', { waitUntil: 'networkidle' });
  assert.equal(index.status(), 200);
  assert.equal(index.headers()['content-security-policy'], CSP);
  assert.equal(index.headers()['cache-control'], 'no-store');
  const gz = loaded.reduce((n, r) => n + gzipSync(r.body).length, 0);
  const raw = loaded.reduce((n, r) => n + r.body.length, 0);
  assert.ok(loaded.length >= 3, 'index.html, a script and a style sheet');
  assert.ok(gz < 300 * 1024, `first load is ${gz} bytes gzip`);
  for (const r of loaded) assert.ok(r.url.startsWith(url + '/'), `loaded from elsewhere: ${r.url}`);
  console.log(`ok first load: ${loaded.length} files, ${raw} bytes, ${gz} bytes gzip; CSP as required`);
  await page.screenshot({ path: join(shotDir, 'console_sign_in.png') });

  // --- Sign in.
  await page.fill('[data-testid=token]', 'cst_0000000000000000_' + 'A'.repeat(43));
  await page.click('[data-testid=sign-in]');
  await page.waitForSelector('[data-testid=sign-in-error]');
  assert.equal(await page.inputValue('[data-testid=token]'), '', 'the field is cleared');
  await page.fill('[data-testid=token]', adminToken);
  await page.click('[data-testid=sign-in]');
  await page.waitForSelector('[data-testid=feed-state]:text("live")');
  assert.equal(await page.textContent('[data-testid=role]'), 'admin');
  const cookies = await context.cookies();
  const cookie = cookies.find((c) => c.name === 'custody_console');
  assert.ok(cookie, 'the session cookie is kept');
  assert.equal(cookie.httpOnly, true);
  assert.equal(cookie.sameSite, 'Strict');
  assert.ok(!cookie.value.includes(adminToken.slice(21)), 'the cookie is not the token');
  assert.equal(await page.evaluate(() => document.cookie), '', 'scripts cannot read the cookie');
  console.log('ok signed in: HttpOnly SameSite=Strict cookie; a wrong token is refused');

  // --- An action through the API appears in the live feed.
  const auth = await request(url, '/v1/actions:authorize', { token: agentToken,
    body: { target: { server: 'github', tool: 'create_issue' }, arguments: { title: 'flaky test' } } });
  assert.equal(auth.status, 200, auth.text);
  assert.equal(auth.json.decision, 'allow', auth.text);
  const actionId = auth.json.action_id;
  const done = await request(url, `/v1/actions/${actionId}:complete`, { token: agentToken,
    body: { status: 'ok', latency_ms: 12 } });
  assert.equal(done.status, 200, done.text);
  const denied = await request(url, '/v1/actions:authorize', { token: agentToken,
    body: { target: { server: 'payments', tool: 'refund' } } });
  assert.equal(denied.json.decision, 'deny', denied.text);
  const row = `[data-testid=feed-row][data-event-id="${actionId}"]`;
  await page.waitForSelector(row);
  await page.waitForSelector(`[data-testid=feed-row][data-kind="action.outcome"]`);
  await page.waitForSelector(`[data-testid=feed-row][data-event-id="${denied.json.action_id}"]`);
  const rowText = await page.textContent(row);
  for (const want of [AGENT, 'github/create_issue', 'nightly-workflow', 'allow']) {
    assert.ok(rowText.includes(want), `feed row shows ${want}: ${rowText}`);
  }
  const outcomeText = await page.textContent('[data-testid=feed-row][data-kind="action.outcome"]');
  assert.ok(outcomeText.includes('github/create_issue') && outcomeText.includes('ok'), outcomeText);
  // Newest first: the denial (last) is above the allowed decision.
  const order = await page.$$eval('[data-testid=feed-row]', (rows) =>
    rows.sort((a, b) => parseFloat(a.style.top) - parseFloat(b.style.top)).map((r) => r.dataset.eventId));
  assert.ok(order.indexOf(denied.json.action_id) < order.indexOf(actionId), 'newest first');
  // Filters.
  await page.selectOption('[data-testid=filter-decision]', 'deny');
  await page.waitForFunction(() => document.querySelectorAll('[data-testid=feed-row]').length === 1);
  await page.selectOption('[data-testid=filter-decision]', '');
  await page.fill('[data-testid=filter-target]', 'github/');
  await page.waitForFunction(() => document.querySelectorAll('[data-testid=feed-row][data-kind="action.decision"]').length === 1);
  await page.fill('[data-testid=filter-target]', '');
  await page.fill('[data-testid=filter-agent]', 'nobody');
  await page.waitForFunction(() => document.querySelectorAll('[data-testid=feed-row]').length === 0);
  await page.fill('[data-testid=filter-agent]', '');
  await page.waitForSelector(row);
  await page.screenshot({ path: join(shotDir, 'console_feed.png') });
  console.log('ok the action appears in the live feed (decision, outcome, a denial), newest first, filterable');

  // --- The action, answered, with its receipt verified in the browser.
  await page.click(row);
  await page.waitForSelector('[data-testid=receipt]:not([data-verified="pending"])');
  assert.equal(await page.getAttribute('[data-testid=receipt]', 'data-verified'), 'true',
    await page.textContent('[data-testid=receipt]'));
  const initiated = await page.textContent('[data-testid=who-initiated]');
  const executed = await page.textContent('[data-testid=who-executed]');
  const allowed = await page.textContent('[data-testid=what-allowed]');
  assert.ok(initiated.includes('nightly-workflow') && initiated.includes('asserted'), initiated);
  assert.ok(executed.includes(AGENT) && executed.includes('spiffe://'), executed);
  assert.ok(allowed.includes('allow-issues') && /[0-9a-f]{64}/.test(allowed), allowed);
  assert.ok((await page.textContent('[data-testid=outcome]')).includes('ok'));
  assert.ok((await page.textContent('[data-testid=chain]')).includes(AGENT));
  await page.screenshot({ path: join(shotDir, 'console_action.png'), fullPage: true });
  console.log('ok the action view answers who initiated, who executed, what allowed it; receipt verified (green)');

  // --- Tampered: one byte of the event the server sends, then one byte of the signature.
  const reopen = async () => {
    await page.evaluate(() => { location.hash = '#/feed'; });
    await page.waitForSelector('[data-testid=feed-state]');
    await page.evaluate((id) => { location.hash = '#/action/' + id; }, actionId);
  };
  await page.route('**/v1/ledger/entries/*', async (route) => {
    const res = await route.fetch();
    const body = await res.text();
    const at = body.indexOf('"decision":"allow"', body.indexOf('"event":'));
    assert.ok(at > 0);
    const tampered = body.slice(0, at) + '"decision":"allox"' + body.slice(at + 18);
    await route.fulfill({ response: res, body: tampered });
  });
  await reopen();
  await page.waitForSelector('[data-testid=receipt][data-verified="false"]');
  assert.ok((await page.textContent('[data-testid=receipt]')).includes('inclusion proof'));
  await page.screenshot({ path: join(shotDir, 'console_action_tampered.png'), fullPage: true });
  await page.unroute('**/v1/ledger/entries/*');
  await page.route('**/v1/ledger/entries/*', async (route) => {
    const res = await route.fetch();
    const entry = await res.json();
    const sig = entry.receipt.lastIndexOf(' ') + 5;
    const c = entry.receipt[sig];
    entry.receipt = entry.receipt.slice(0, sig) + (c === 'A' ? 'B' : 'A') + entry.receipt.slice(sig + 1);
    await route.fulfill({ response: res, body: JSON.stringify(entry) });
  });
  await reopen();
  await page.waitForSelector('[data-testid=receipt][data-verified="false"]');
  assert.ok((await page.textContent('[data-testid=receipt]')).includes('signature'));
  await page.unroute('**/v1/ledger/entries/*');
  await reopen();
  await page.waitForSelector('[data-testid=receipt][data-verified="true"]');
  console.log('ok a tampered entry and a tampered signature are rejected (red)');

  // --- The token is nowhere the page keeps things.
  const kept = await page.evaluate(() => ({
    local: JSON.stringify({ ...localStorage }), session: JSON.stringify({ ...sessionStorage }),
    url: location.href, history: history.length }));
  for (const [where, v] of Object.entries(kept)) {
    assert.ok(!String(v).includes(adminToken), `token found in ${where}`);
  }
  for (const u of requested) assert.ok(!u.includes(adminToken.slice(4, 20)), `token in a URL: ${u}`);
  console.log('ok the token is in neither localStorage, sessionStorage, the URL nor any request URL');

  // --- Sign out ends the session.
  await page.click('[data-testid=sign-out]');
  await page.waitForSelector('[data-testid=token]');
  const after = await page.evaluate(async () => (await fetch('/v1/trace/x', { headers: {} })).status);
  assert.equal(after, 401, 'signed out: the cookie no longer works');

  // --- A reader signs in and reads; the cookie alone (no CSRF header) is refused.
  const created = spawnSync(custody, ['admin', 'token', 'create', '--role', 'reader', '--data-dir',
    join(dir, 'data')], { encoding: 'utf8' });
  assert.equal(created.status, 0, created.stderr);
  const readerToken = /cst_[0-9a-f]{16}_[A-Za-z0-9_-]{43}/.exec(created.stdout)?.[0];
  assert.ok(readerToken, created.stdout);
  await page.fill('[data-testid=token]', readerToken);
  await page.click('[data-testid=sign-in]');
  await page.waitForSelector('[data-testid=feed-state]:text("live")');
  assert.equal(await page.textContent('[data-testid=role]'), 'reader');
  await page.waitForSelector(row);
  const bare = await page.evaluate(async (id) => (await fetch('/v1/trace/' + id)).status, actionId);
  assert.equal(bare, 403, 'a cookie without its CSRF header is refused');
  assert.equal(pageErrors.filter((e) => !/status of 40[13]/.test(e)).length, 0,
    'no errors in the page: ' + pageErrors.join('\n'));
  console.log('ok a reader signs in and reads; the cookie alone is refused; signed out ends a session');
  await page.close();

  // --- A burst the feed must keep up with: 20,000 decisions in one stream response. Only the
  // visible rows are in the DOM, and scrolling shows the rows there. (The time it took is printed,
  // not asserted: tests check, benchmarks measure.)
  const N = 20000;
  const burst = await context.newPage();
  current = burst;
  let served = false;
  await burst.route('**/v1/ledger/stream*', async (route) => {
    if (served) return route.continue();
    served = true;
    let body = '';
    for (let i = 0; i < N; i++) {
      const event = { kind: 'action.decision', event_id: `burst-${i}`, time: new Date(1.8e12 + i).toISOString(),
        actor: { agent: `agent-${i % 50}`, session: `s-${i % 500}` },
        initiator: { id: 'load', verification: 'asserted' },
        request: { target: { key: `srv/tool-${i % 20}` } }, decision: i % 10 ? 'allow' : 'deny' };
      body += `event: entry\nid: ${i}\ndata: ${JSON.stringify({ index: i, event })}\n\n`;
    }
    await route.fulfill({ status: 200, headers: { 'content-type': 'text/event-stream' }, body });
  });
  await burst.goto(url + '/console/');
  await burst.fill('[data-testid=token]', adminToken);
  const t0 = Date.now();
  await burst.click('[data-testid=sign-in]');
  await burst.waitForFunction((n) => document.querySelector('[data-testid=feed-count]')?.textContent === `${n} shown`,
    N, { timeout: 60000 });
  const took = Date.now() - t0;
  const inDom = await burst.$$eval('[data-testid=feed-row]', (r) => r.length);
  assert.ok(inDom > 0 && inDom < 100, `${inDom} rows in the DOM for ${N}`);
  await burst.$eval('.rows', (el) => { el.scrollTop = 10000 * 28; el.dispatchEvent(new Event('scroll')); });
  await burst.waitForSelector('[data-testid=feed-row][data-event-id="burst-9995"]');
  await burst.selectOption('[data-testid=filter-decision]', 'deny');
  await burst.waitForFunction(() => document.querySelector('[data-testid=feed-count]')?.textContent === '2000 shown');
  console.log(`ok a burst of ${N} decisions: shown in ${took} ms (sign-in included), ${inDom} rows in the DOM, ` +
    'scrolling and filtering work');
  await burst.close();
} catch (e) {
  failed = true;
  console.error('FAIL:', e);
  await current?.screenshot({ path: join(shotDir, 'console_failure.png') }).catch(() => {});
  if (custodyProc) console.error(custodyProc.stderr().split('\n').slice(-30).join('\n'));
} finally {
  await browser?.close();
  if (custodyProc) {
    try {
      await stopCleanly(custodyProc.server, custodyProc.stderr);
    } catch (e) {
      failed = true;
      console.error('FAIL:', e);
    }
  }
  rmSync(dir, { recursive: true, force: true });
}
if (failed) process.exit(1);
console.log('PASS');
