// Console.IdpSignInE2E: people sign in to the web console at the company IdP (oidc-provider) in a
// real browser (Debian's chromium, headless, playwright-core), the approvers' [login] sign-in
// (docs/CONSOLE.md, "Signing in with the company IdP"). [console.idp_roles] makes secops admins
// and audit readers: sam (secops) signs in and sees his name and the admin role, and his
// containment of an agent is recorded with him as the actor; rita (audit) is a reader and cannot
// contain (403); carol (in no group) is refused with a page saying why, and gets no session.
// A screenshot of the signed-in console goes to argv[4].
import assert from 'node:assert/strict';
import { join } from 'node:path';

import { browserTest, finishBrowserTest, startWorld } from './harness.mjs';

const { custody, sourceRoot, shotDir, launch } = await browserTest('console_idp_e2e.mjs');
const AGENT = 'console-helper';

let w;
let browser;
let error;
try {
  w = await startWorld({ custody, sourceRoot, agent: AGENT, clients: `
[console.idp_roles]
admin_groups = ["secops"]
reader_groups = ["audit", "secops-readonly"]
` });
  const custodyOrigin = new URL(w.url).origin;
  const methods = await w.http('/v1/console/methods');
  assert.deepEqual(methods.json.methods.find((m) => m.type === 'idp'),
    { type: 'idp', available: true, issuer: w.idpIssuer }, methods.text);

  browser = await launch();
  // One person in a fresh profile: the console's sign-in page, the IdP button, the IdP's forms,
  // and back at Custody.
  const signIn = async (user) => {
    const context = await browser.newContext();
    await context.route((u) => u.hostname !== '127.0.0.1' && u.hostname !== 'localhost',
      (route) => route.abort());
    const page = await context.newPage();
    await page.goto(`${w.url}/console/`);
    const button = page.locator('[data-testid="sign-in-idp"]');
    await button.waitFor();
    assert.equal(await button.isEnabled(), true, 'the IdP button is disabled');
    await Promise.all([page.waitForNavigation(), button.click()]);
    for (let step = 0; step < 6 && new URL(page.url()).origin !== custodyOrigin; step++) {
      if (await page.locator('input[name="login"]').count()) {
        await page.fill('input[name="login"]', user);
        await page.fill('input[name="password"]', 'any');
      }
      await Promise.all([page.waitForNavigation(), page.click('button[type="submit"]')]);
    }
    assert.equal(new URL(page.url()).origin, custodyOrigin, `${user} is not back at Custody`);
    return { context, page };
  };
  // The console's own way to call the API: the cookie, and the CSRF token its page reads.
  const asConsole = async (context) => {
    const cookie = (await context.cookies(w.url)).find((c) => c.name === 'custody_console');
    assert.ok(cookie, 'no console cookie');
    assert.equal(cookie.httpOnly, true);
    assert.equal(cookie.sameSite, 'Strict');
    const s = await fetch(`${w.url}/v1/console/session`, { headers: { cookie: `custody_console=${cookie.value}` } });
    assert.equal(s.status, 200);
    const session = await s.json();
    w.secrets.push(cookie.value, session.csrf);
    return { session, call: (path, body) => fetch(w.url + path, { method: 'POST', headers: {
      cookie: `custody_console=${cookie.value}`, 'x-custody-csrf': session.csrf,
      'content-type': 'application/json' }, body: JSON.stringify(body) }) };
  };

  // --- sam (secops): an admin, named on the console.
  const sam = await signIn('sam');
  await sam.page.waitForSelector('[data-testid="role"]');
  assert.equal(sam.page.url(), `${w.url}/console/`, 'the sign-in marker stays in the URL');
  await sam.page.waitForSelector('[data-testid="role"]');
  assert.equal((await sam.page.innerText('[data-testid="role"]')).trim(), 'admin');
  assert.equal((await sam.page.innerText('[data-testid="person"]')).trim(), 'sam');
  await sam.page.screenshot({ path: join(shotDir, 'console_idp_signed_in.png') });
  const samApi = await asConsole(sam.context);
  assert.equal(samApi.session.role, 'admin');
  assert.equal(samApi.session.subject, 'sam');
  assert.equal(samApi.session.verified_by, `oidc:${w.idpIssuer}`);
  console.log(`ok sam (secops) signs in at the IdP and the console shows him as admin, verified_by ${samApi.session.verified_by}`);

  // --- rita (audit): a reader; containing is refused.
  const rita = await signIn('rita');
  await rita.page.waitForSelector('[data-testid="role"]');
  assert.equal((await rita.page.innerText('[data-testid="role"]')).trim(), 'reader');
  const ritaApi = await asConsole(rita.context);
  const refused = await ritaApi.call('/v1/contain', { agent: AGENT, reason: 'rita tries' });
  assert.equal(refused.status, 403, await refused.text());
  console.log('ok rita (audit) is a reader: her containment is refused (403)');

  // --- sam contains the agent; the containment names him.
  const contained = await samApi.call('/v1/contain', { agent: AGENT, reason: 'incident 7' });
  const containedText = await contained.text();
  assert.equal(contained.status, 200, containedText);
  const index = JSON.parse(containedText).ledger_index;
  const entry = await w.http(`/v1/ledger/entries/${index}`, { token: w.adminToken });
  assert.equal(entry.status, 200, entry.text);
  assert.equal(entry.json.event.kind, 'containment', entry.text);
  assert.equal(entry.json.event.by, 'admin:oidc:sam', entry.text);
  console.log(`ok sam contains ${AGENT}; the ledger's containment says by ${entry.json.event.by}`);

  // --- carol: in no console group; refused with a page, no session.
  const carol = await signIn('carol');
  const text = await carol.page.innerText('body');
  assert.match(text, /Console sign-in refused/);
  assert.match(text, /None of your groups/);
  assert.equal((await carol.context.cookies(w.url)).find((c) => c.name === 'custody_console'), undefined,
    'carol got a console cookie');
  await carol.page.goto(`${w.url}/console/`);
  await carol.page.locator('[data-testid="sign-in-idp"]').waitFor();
  assert.equal(await carol.page.locator('[data-testid="role"]').count(), 0, 'carol is signed in');
  console.log('ok carol (no console group) is refused with a page saying why, and has no session');

  // The sign-ins are recorded, naming the console; never a cookie in the ledger.
  const entries = [];
  for (let i = 0; ; i++) {
    const e = await w.http(`/v1/ledger/entries/${i}`, { token: w.adminToken });
    if (e.status !== 200) break;
    entries.push(e);
  }
  const signIns = entries.map((e) => e.json.event)
    .filter((e) => e.kind === 'oauth.sign_in' && e.client?.id === 'custody:console');
  assert.deepEqual(signIns.map((e) => e.initiator.id), ['sam', 'rita', 'carol']);
  for (const s of w.secrets) assert.ok(!entries.some((e) => e.text.includes(s)), 'a secret in the ledger');
  console.log(`ok the ledger has the three console sign-ins, no cookie or CSRF token`);

} catch (e) {
  error = e;
}
await finishBrowserTest(w, browser, error);
