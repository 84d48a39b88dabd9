// OAuth.ConsentBrowserE2E: a person in a real browser (Debian's chromium, headless, driven by
// playwright-core) signs in at the IdP and answers Custody's consent page by clicking.
//
// What the person sees: the application's name, the agent it acts as, the scopes. What the page
// does: every request a page makes goes to its own origin (Custody's pages load nothing from
// elsewhere), and Custody's cookie is HttpOnly, Secure and SameSite as the browser itself
// records it. Allow comes back to the client with code, state and RFC 9207 iss; Deny (another
// person, so no remembered consent) with error=access_denied and no code. A screenshot of the
// consent page goes to the build directory (argv[4]) for people to look at.
import assert from 'node:assert/strict';
import { createServer as createHttpServer } from 'node:http';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { freePort, startWorld } from './harness.mjs';

let chromium;
try {
  ({ chromium } = await import('playwright-core'));
} catch (e) {
  console.error('FAIL: cannot load playwright-core; run `npm ci` in tests/oauth (' + e.message + ')');
  process.exit(1);
}

const here = dirname(fileURLToPath(import.meta.url));
const custody = process.argv[2];
const sourceRoot = process.argv[3] ?? join(here, '..', '..');
const shotDir = process.argv[4] ?? join(sourceRoot, 'build');
if (!custody) {
  console.error('usage: node consent_browser_e2e.mjs /path/to/custody [source root] [screenshot dir]');
  process.exit(2);
}
const CHROMIUM = process.env.CUSTODY_CHROMIUM ?? '/usr/bin/chromium';

const AGENT = 'desk-helper';
const CLIENT_ID = 'browser-e2e-client';
const CLIENT_NAME = 'Browser E2E Client';
const cbPort = await freePort();
const REDIRECT = `http://127.0.0.1:${cbPort}/callback`;
// The client's redirect URI: a page that says it got the answer.
const callback = createHttpServer((req, res) => {
  res.writeHead(200, { 'content-type': 'text/html' });
  res.end('<!doctype html><title>client</title><p>back at the client</p>');
});
await new Promise((r) => callback.listen(cbPort, '127.0.0.1', r));

let w;
let browser;
try {
  w = await startWorld({ custody, sourceRoot, agent: AGENT, clients: `
[oauth.clients."${CLIENT_ID}"]
redirect_uris = ["${REDIRECT}"]
agent = "${AGENT}"
name = "${CLIENT_NAME}"
` });
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  const custodyOrigin = new URL(w.url).origin;

  // One person's visit: a fresh browser profile, the authorization URL a client would open,
  // the IdP's login (and its own consent), up to Custody's consent page.
  const visit = async (user, state) => {
    const context = await browser.newContext();
    // Hermetic: nothing leaves the machine (the IdP's development pages ask for web fonts).
    await context.route((u) => u.hostname !== '127.0.0.1' && u.hostname !== 'localhost',
      (route) => route.abort());
    const page = await context.newPage();
    const requests = [];
    page.on('request', (r) => requests.push({ url: r.url(), type: r.resourceType(),
      from: r.frame()?.url() ?? '' }));
    const u = new URL(`${w.url}/oauth2/authorize`);
    for (const [k, v] of Object.entries({ response_type: 'code', client_id: CLIENT_ID,
      redirect_uri: REDIRECT, state, code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM',
      code_challenge_method: 'S256', resource: `${w.url}/mcp`, scope: 'fake/echo fake/slow' })) {
      u.searchParams.set(k, v);
    }
    await page.goto(u.href);
    for (let step = 0; step < 6 && new URL(page.url()).origin !== custodyOrigin; step++) {
      if (await page.locator('input[name="login"]').count()) {
        await page.fill('input[name="login"]', user);
        await page.fill('input[name="password"]', 'any');
      }
      await Promise.all([page.waitForNavigation(), page.click('button[type="submit"]')]);
    }
    assert.equal(new URL(page.url()).origin, custodyOrigin, `not back at Custody: ${page.url()}`);
    await page.waitForSelector('button[value="allow"]');
    return { context, page, requests };
  };

  // --- Allow.
  const allow = await visit('alice', 'state-allow');
  const { page } = allow;
  const seen = await page.innerText('body');
  assert.match(seen, /Allow access\?/);
  assert.match(seen, new RegExp(CLIENT_NAME));
  assert.match(seen, new RegExp(`client ${CLIENT_ID}`));
  assert.match(seen, new RegExp(`as the agent ${AGENT}`));
  assert.match(seen, /fake\/echo/);
  assert.match(seen, /fake\/slow/);
  assert.match(seen, /alice/);
  assert.equal(await page.title(), `Allow ${CLIENT_NAME}?`);
  assert.ok(await page.locator('button[value="deny"]').isVisible());
  const shot = join(shotDir, 'consent_page.png');
  await page.screenshot({ path: shot, fullPage: true });
  console.log(`ok the consent page names the client, the agent and the scopes (screenshot: ${shot})`);

  // Cookies are not kept per port: the IdP's (also on 127.0.0.1) are in the same jar. Custody's
  // is scoped to /oauth2/.
  const cookies = (await allow.context.cookies(`${w.url}/oauth2/consent`))
    .filter((c) => c.name.startsWith('custody_'));
  const authz = cookies.find((c) => c.name === 'custody_authz');
  assert.ok(authz, 'no Custody cookie in the browser: ' + JSON.stringify(cookies.map((c) => c.name)));
  assert.equal(authz.path, '/oauth2/');
  for (const c of cookies) {
    assert.equal(c.httpOnly, true, `${c.name} is not HttpOnly`);
    assert.equal(c.secure, true, `${c.name} is not Secure`);
    assert.ok(['Lax', 'Strict'].includes(c.sameSite), `${c.name} SameSite=${c.sameSite}`);
  }
  console.log(`ok Custody's cookies as the browser keeps them: HttpOnly, Secure, SameSite=${authz.sameSite}`);

  await Promise.all([page.waitForURL((u) => u.href.startsWith(REDIRECT)),
    page.click('button[value="allow"]')]);
  const back = new URL(page.url());
  assert.ok(back.searchParams.get('code'), back.href);
  assert.equal(back.searchParams.get('state'), 'state-allow');
  assert.equal(back.searchParams.get('iss'), w.url);
  assert.equal(back.searchParams.get('error'), null);
  console.log('ok Allow: back at the client with code, state and iss');

  // Nothing a page of Custody's asked for left its origin: its own requests (the form post
  // included) and the flow's navigations that started on it (the redirect to the client).
  const fromCustody = allow.requests.filter((r) => r.from.startsWith(custodyOrigin));
  assert.ok(fromCustody.some((r) => r.url.startsWith(`${w.url}/oauth2/consent`)),
    'the consent form post was not seen: ' + JSON.stringify(fromCustody));
  for (const r of fromCustody) {
    if (r.type === 'document' && r.url.startsWith(REDIRECT)) continue;  // Allow's redirect
    assert.equal(new URL(r.url).origin, custodyOrigin,
      `a ${r.type} request from Custody's page to another origin: ${r.url}`);
  }
  console.log(`ok every request of Custody's pages is same-origin (${fromCustody.length} of ` +
    `${allow.requests.length} in the flow)`);
  await allow.context.close();

  // --- Deny: another person (alice's consent is remembered now).
  const deny = await visit('bob', 'state-deny');
  assert.match(await deny.page.innerText('body'), /bob/);
  await Promise.all([deny.page.waitForURL((u) => u.href.startsWith(REDIRECT)),
    deny.page.click('button[value="deny"]')]);
  const refused = new URL(deny.page.url());
  assert.equal(refused.searchParams.get('error'), 'access_denied', refused.href);
  assert.equal(refused.searchParams.get('code'), null);
  assert.equal(refused.searchParams.get('state'), 'state-deny');
  assert.equal(refused.searchParams.get('iss'), w.url);
  await deny.context.close();
  console.log('ok Deny: back at the client with error=access_denied, state and iss, and no code');

  await browser.close();
  await w.stop();
  callback.close();
  w.cleanup();
  console.log('PASS');
  process.exit(0);
} catch (e) {
  console.error('FAIL', e);
  console.error('--- custody stderr (tail) ---\n' + (w?.stderr ?? '').slice(-3000));
  try { await browser?.close(); } catch { /* the failure above is what matters */ }
  w?.cleanup();
  process.exit(1);
}
