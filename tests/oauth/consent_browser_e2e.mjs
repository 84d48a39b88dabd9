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
import { join } from 'node:path';
import { deflateSync } from 'node:zlib';

import { browserTest, finishBrowserTest, freePort, startWorld } from './harness.mjs';

const { custody, sourceRoot, shotDir, launch } = await browserTest('consent_browser_e2e.mjs');

// A w x h PNG (8-bit RGB, one colour), written out: signature, IHDR, IDAT, IEND.
function pngImage(w, h) {
  const crcTable = Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  const crc = (buf) => {
    let c = 0xffffffff;
    for (const b of buf) c = crcTable[(c ^ b) & 0xff] ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  };
  const chunk = (type, data) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
    const sum = Buffer.alloc(4);
    sum.writeUInt32BE(crc(body));
    return Buffer.concat([len, body, sum]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr.set([8, 2, 0, 0, 0], 8);
  const row = Buffer.concat([Buffer.from([0]), Buffer.alloc(w * 3, 0x4a)]);
  const raw = Buffer.concat(Array.from({ length: h }, () => row));
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr), chunk('IDAT', deflateSync(raw)), chunk('IEND', Buffer.alloc(0))]);
}

const AGENT = 'desk-helper';
const CLIENT_ID = 'browser-e2e-client';
const CLIENT_NAME = 'Browser E2E Client';
const cbPort = await freePort();
const REDIRECT = `http://127.0.0.1:${cbPort}/callback`;
// A second client known by its Client ID Metadata Document, served here with its logo.
const DOC_CLIENT = `http://127.0.0.1:${cbPort}/client.json`;
const DOC_NAME = 'Logo Tool';
const LOGO = pngImage(16, 16);
const logoFetches = [];  // the user agents that fetched the logo
// The client's host: its redirect URI (a page that says it got the answer), its metadata
// document and its logo.
const callback = createHttpServer((req, res) => {
  if (req.url === '/client.json') {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ client_id: DOC_CLIENT, client_name: DOC_NAME, redirect_uris: [REDIRECT],
      client_uri: 'https://logo-tool.example/about', logo_uri: `http://127.0.0.1:${cbPort}/logo.png` }));
    return;
  }
  if (req.url === '/logo.png') {
    logoFetches.push(req.headers['user-agent'] ?? '');
    res.writeHead(200, { 'content-type': 'image/png' });
    res.end(LOGO);
    return;
  }
  res.writeHead(200, { 'content-type': 'text/html' });
  res.end('<!doctype html><title>client</title><p>back at the client</p>');
});
await new Promise((r) => callback.listen(cbPort, '127.0.0.1', r));

let w;
let browser;
let error;
try {
  w = await startWorld({ custody, sourceRoot, agent: AGENT, clients: `
[oauth]
client_metadata_documents = true
client_metadata_allow_loopback = true

[oauth.clients."${DOC_CLIENT}"]
agent = "${AGENT}"

[oauth.clients."${CLIENT_ID}"]
redirect_uris = ["${REDIRECT}"]
agent = "${AGENT}"
name = "${CLIENT_NAME}"
` });
  browser = await launch();
  const custodyOrigin = new URL(w.url).origin;

  // One person's visit: a fresh browser profile, the authorization URL a client would open,
  // the IdP's login (and its own consent), up to Custody's consent page.
  const visit = async (user, state, clientId = CLIENT_ID) => {
    const context = await browser.newContext();
    // Hermetic: nothing leaves the machine (the IdP's development pages ask for web fonts).
    await context.route((u) => u.hostname !== '127.0.0.1' && u.hostname !== 'localhost',
      (route) => route.abort());
    const page = await context.newPage();
    const requests = [];
    page.on('request', (r) => requests.push({ url: r.url(), type: r.resourceType(),
      from: r.frame()?.url() ?? '' }));
    const u = new URL(`${w.url}/oauth2/authorize`);
    for (const [k, v] of Object.entries({ response_type: 'code', client_id: clientId,
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

  // --- The client's logo (its metadata document's logo_uri): fetched by Custody, served from
  // Custody's origin with its exact type and nosniff, and loaded by the browser from there.
  const doc = await visit('carol', 'state-logo', DOC_CLIENT);
  assert.match(await doc.page.innerText('body'), new RegExp(DOC_NAME));
  assert.match(await doc.page.innerText('body'), /whose site is https:\/\/logo-tool\.example\/about/,
    'the consent page does not name the client\'s site (client_uri)');
  assert.equal(await doc.page.$('a[href]'), null, 'the site is named, not linked');
  const src = await doc.page.getAttribute('img.logo', 'src');
  assert.match(src ?? '', /^\/oauth2\/logo\/[0-9a-f]{64}$/, 'no logo on the consent page');
  await doc.page.waitForFunction(() => document.querySelector('img.logo')?.complete);
  assert.equal(await doc.page.evaluate(() => document.querySelector('img.logo').naturalWidth), 16,
    'the logo did not load');
  const logoRequests = doc.requests.filter((r) => r.type === 'image');
  assert.deepEqual(logoRequests.map((r) => r.url), [`${w.url}${src}`]);
  for (const r of doc.requests.filter((r) => r.from.startsWith(custodyOrigin))) {
    assert.equal(new URL(r.url).origin, custodyOrigin, `a ${r.type} request to another origin: ${r.url}`);
  }
  assert.deepEqual(logoFetches, ['custody'], 'the logo must be fetched by Custody, never by the browser');
  const served = await fetch(`${w.url}${src}`);
  assert.equal(served.status, 200);
  assert.equal(served.headers.get('content-type'), 'image/png');
  assert.equal(served.headers.get('x-content-type-options'), 'nosniff');
  assert.ok(Buffer.from(await served.arrayBuffer()).equals(LOGO), 'the logo was altered');
  assert.equal((await fetch(`${w.url}/oauth2/logo/${'0'.repeat(64)}`)).status, 404);
  await doc.page.screenshot({ path: join(shotDir, 'consent_page_logo.png'), fullPage: true });
  await doc.context.close();
  console.log('ok the client\'s site named; its logo: fetched by Custody, served same-origin (image/png, nosniff), loaded by the browser');

  callback.close();
} catch (e) {
  error = e;
}
await finishBrowserTest(w, browser, error);
