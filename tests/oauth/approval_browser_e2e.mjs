// OAuth.ApprovalBrowserE2E: people decide an approval in a real browser (Debian's chromium,
// headless, driven by playwright-core) after signing in at the company IdP (oidc-provider), the
// `[login]` sign-in of MCP clients (docs/APPROVALS.md, "Approving in the browser").
//
// alice starts an agent's session (the authorization code flow, as an MCP client would); the
// agent asks for an action an `@approval("finance")` forbid holds and gets approval_required with
// the approval's link. In the browser, on that link: carol (not in finance) signs in and is
// refused (403, nothing changes); alice (in finance, but she started the session) is refused for
// separation of duties; a form posted without the page's CSRF token is refused; bob (in finance)
// approves with a reason, and denies another approval in the same session. The agent's retry is
// allowed under the approval, which the API shows used, approved by bob, verified_by
// oidc:<the IdP>. A screenshot of the page goes to argv[4].
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { join } from 'node:path';

import { Browser as FormBrowser } from './browser.mjs';
import { browserTest, finishBrowserTest, freePort, startWorld } from './harness.mjs';

const { custody, sourceRoot, shotDir, launch } = await browserTest('approval_browser_e2e.mjs');

const AGENT = 'pay-helper';
const CLIENT_ID = 'approval-e2e-client';
// The client's redirect URI: nothing listens there, the form browser stops at the redirect.
const REDIRECT = `http://127.0.0.1:${await freePort()}/callback`;
const POLICIES =
  '@id("fake-tools") permit(principal, action == Action::"call_tool", resource in Server::"fake");\n' +
  '@id("big-echo") @approval("finance")\n' +
  'forbid(principal, action == Action::"call_tool", resource == Tool::"fake/echo")\n' +
  '  when { context.arguments has amount && context.arguments.amount > 100 };\n';
const member = (id) => ({ uid: { type: 'User', id }, attrs: {}, parents: [{ type: 'Group', id: 'finance' }] });
const ENTITIES = [{ uid: { type: 'Group', id: 'finance' }, attrs: {}, parents: [] },
  member('alice'), member('bob'), { uid: { type: 'User', id: 'carol' }, attrs: {}, parents: [] }];

let w;
let browser;
let error;
try {
  w = await startWorld({ custody, sourceRoot, agent: AGENT, clients: `
[oauth]
max_sign_ins_per_address = 3

[oauth.clients."${CLIENT_ID}"]
redirect_uris = ["${REDIRECT}"]
agent = "${AGENT}"
name = "Approval E2E"
` });
  const pub = await w.http('/v1/policies', { token: w.adminToken, body: { policies: POLICIES, entities: ENTITIES } });
  assert.equal(pub.status, 200, pub.text);

  // --- alice's session for the agent: the authorization code flow through the IdP's forms.
  const verifier = randomBytes(32).toString('base64url');
  const authorize = new URL(`${w.url}/oauth2/authorize`);
  for (const [k, v] of Object.entries({ response_type: 'code', client_id: CLIENT_ID, redirect_uri: REDIRECT,
    state: 's1', code_challenge: createHash('sha256').update(verifier).digest('base64url'),
    code_challenge_method: 'S256', resource: `${w.url}/mcp`, scope: 'fake/echo' })) {
    authorize.searchParams.set(k, v);
  }
  const flow = await new FormBrowser().navigate(authorize.href, REDIRECT, { user: 'alice' });
  assert.ok(flow.redirect, 'no code for alice: ' + JSON.stringify(flow.page?.text?.slice(0, 300)));
  const code = new URL(flow.redirect).searchParams.get('code');
  const tr = await fetch(`${w.url}/oauth2/token`, { method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'authorization_code', client_id: CLIENT_ID, code,
      redirect_uri: REDIRECT, code_verifier: verifier, resource: `${w.url}/mcp` }).toString() });
  const tokens = await tr.json();
  assert.equal(tr.status, 200, JSON.stringify(tokens));
  const agentToken = tokens.access_token;
  w.secrets.push(agentToken, tokens.refresh_token);

  // --- The agent asks; the forbid holds the action for finance.
  const ask = () => w.http('/v1/actions:authorize', { token: agentToken, body: {
    target: { server: 'fake', tool: 'echo' }, arguments: { text: 'refund order 42', amount: 500 } } });
  const asked = await ask();
  assert.equal(asked.status, 200, asked.text);
  assert.equal(asked.json.decision, 'approval_required', asked.text);
  const approval = asked.json.approval;
  assert.equal(approval.state, 'pending');
  assert.equal(approval.url, `${w.url}/approvals/${approval.id}`);
  assert.equal(approval.initiator, 'alice');
  console.log(`ok the agent's action needs finance's approval: ${approval.url}`);
  const state = async () => (await w.http(`/v1/approvals/${approval.id}`, { token: w.adminToken })).json;

  browser = await launch();
  const custodyOrigin = new URL(w.url).origin;

  // One person: a fresh browser profile opens the link, signs in at the IdP, and is back on the
  // approval page with the form.
  const signIn = async (user, link = approval.url) => {
    const context = await browser.newContext();
    await context.route((u) => u.hostname !== '127.0.0.1' && u.hostname !== 'localhost',
      (route) => route.abort());
    const page = await context.newPage();
    const requests = [];
    page.on('request', (r) => requests.push({ url: r.url(), type: r.resourceType(),
      from: r.frame()?.url() ?? '' }));
    await page.goto(link);
    assert.match(await page.innerText('body'), /Sign in to decide/);
    assert.equal(await page.locator('form').count(), 0, 'a form before signing in');
    await Promise.all([page.waitForNavigation(), page.click('text=Sign in to decide')]);
    for (let step = 0; step < 6 && new URL(page.url()).origin !== custodyOrigin; step++) {
      if (await page.locator('input[name="login"]').count()) {
        await page.fill('input[name="login"]', user);
        await page.fill('input[name="password"]', 'any');
      }
      await Promise.all([page.waitForNavigation(), page.click('button[type="submit"]')]);
    }
    assert.equal(page.url(), link, 'not back on the approval page');
    await page.waitForSelector('button[value="approve"]');
    assert.match(await page.innerText('body'), new RegExp(`Signed in as ${user}`));
    return { context, page, requests };
  };
  const decide = async (page, decision, reason) => {
    await page.fill('textarea[name="reason"]', reason);
    const [response] = await Promise.all([page.waitForNavigation(),
      page.click(`button[value="${decision}"]`)]);
    return { status: response.status(), text: await page.innerText('body') };
  };

  // --- carol: not in finance.
  const carol = await signIn('carol');
  const cookies = (await carol.context.cookies(approval.url)).filter((c) => c.name.startsWith('custody_'));
  const session = cookies.find((c) => c.name === 'custody_approver');
  assert.ok(session, 'no approver cookie: ' + JSON.stringify(cookies.map((c) => c.name)));
  assert.equal(session.path, '/approvals');
  assert.equal(session.httpOnly, true);
  assert.equal(session.secure, true);
  assert.equal(session.sameSite, 'Lax');
  console.log('ok signed in at the IdP and back on the approval page; the approver cookie is HttpOnly, Secure, SameSite=Lax, Path=/approvals');
  let r = await decide(carol.page, 'approve', 'looks fine to me');
  assert.equal(r.status, 403, r.text);
  assert.match(r.text, /carol is not a member of Group::"finance"/);
  assert.equal((await state()).state, 'pending', 'a non-member changed the approval');
  console.log('ok carol (not in finance) is refused on the page (403), the approval stays pending');

  // A form not from Custody's page (the cookie, but not the page's CSRF token) is refused.
  const forged = await fetch(approval.url, { method: 'POST', redirect: 'manual', headers: {
    'content-type': 'application/x-www-form-urlencoded', cookie: `custody_approver=${session.value}` },
  body: new URLSearchParams({ decision: 'approve', reason: 'forged', csrf: 'x'.repeat(43) }).toString() });
  assert.equal(forged.status, 403);
  assert.match(await forged.text(), /CSRF/);
  const anonymous = await fetch(approval.url, { method: 'POST', redirect: 'manual', headers: {
    'content-type': 'application/x-www-form-urlencoded' },
  body: new URLSearchParams({ decision: 'approve', reason: 'anonymous' }).toString() });
  assert.equal(anonymous.status, 401);
  assert.equal((await state()).state, 'pending');
  console.log('ok a post without the page\'s CSRF token is refused (403), without a sign-in too (401)');

  // Sign-out: not without the page's CSRF token (another site cannot sign carol out) ...
  const forgedOut = await fetch(`${approval.url}/sign-out`, { method: 'POST', redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: `custody_approver=${session.value}` },
    body: new URLSearchParams({ csrf: 'x'.repeat(43) }).toString() });
  assert.equal(forgedOut.status, 403);
  assert.match(await forgedOut.text(), /CSRF/);
  await carol.page.goto(approval.url);
  assert.match(await carol.page.innerText('body'), /Signed in as carol/, 'a forged sign-out ended the session');
  // ... with it (the page's button): the cookie cleared, the page offers the sign-in again, and
  // the session is gone at the server: the old cookie with the old CSRF token decides nothing.
  const csrf = await carol.page.getAttribute('form[action$="/sign-out"] input[name="csrf"]', 'value');
  assert.ok(csrf);
  const [out] = await Promise.all([carol.page.waitForNavigation(), carol.page.click('text=Sign out')]);
  assert.equal(out.status(), 200);
  assert.equal(carol.page.url(), approval.url);
  assert.match(await carol.page.innerText('body'), /Sign in to decide/);
  assert.equal((await carol.context.cookies(approval.url)).find((c) => c.name === 'custody_approver'), undefined,
    'the approver cookie was not cleared');
  const replayed = await fetch(approval.url, { method: 'POST', redirect: 'manual', headers: {
    'content-type': 'application/x-www-form-urlencoded', cookie: `custody_approver=${session.value}` },
  body: new URLSearchParams({ decision: 'approve', reason: 'after sign-out', csrf }).toString() });
  assert.equal(replayed.status, 401, 'the session outlived its sign-out');
  assert.equal((await state()).state, 'pending');
  console.log('ok sign-out needs the page\'s CSRF token; it clears the cookie and drops the session at the server (the old cookie is refused, 401)');
  await carol.context.close();

  // --- alice: in finance, but she started the session.
  const alice = await signIn('alice');
  r = await decide(alice.page, 'approve', 'my own agent');
  assert.equal(r.status, 403, r.text);
  assert.match(r.text, /separation of duties/);
  assert.equal((await state()).state, 'pending');
  console.log('ok alice (in finance, the session\'s initiator) is refused: separation of duties');
  await alice.context.close();

  // --- bob approves.
  const bob = await signIn('bob');
  await bob.page.screenshot({ path: join(shotDir, 'approval_page.png'), fullPage: true });
  r = await decide(bob.page, 'approve', 'refund agreed with the customer');
  assert.equal(r.status, 200, r.text);
  assert.match(r.text, /You approved this action/);
  assert.match(r.text, /Approval approved/);
  assert.match(r.text, /refund agreed with the customer/);
  // What Custody's pages asked for stayed on Custody's origin (the IdP's own pages load fonts).
  const fromCustody = bob.requests.filter((q) => q.from.startsWith(custodyOrigin));
  assert.ok(fromCustody.some((q) => q.url === approval.url && q.type === 'document'));
  for (const q of fromCustody) {
    if (q.type === 'document') continue;  // the sign-in's navigations to the IdP and back
    assert.equal(new URL(q.url).origin, custodyOrigin, `a ${q.type} request to ${q.url}`);
  }

  // Another action (other arguments: another approval); bob's session decides it too, no new
  // sign-in: he denies it.
  const other = await w.http('/v1/actions:authorize', { token: agentToken, body: {
    target: { server: 'fake', tool: 'echo' }, arguments: { text: 'refund order 43', amount: 900 } } });
  assert.equal(other.json.decision, 'approval_required', other.text);
  assert.notEqual(other.json.approval.id, approval.id);
  await bob.page.goto(other.json.approval.url);
  assert.equal(bob.page.url(), other.json.approval.url, 'signed in already: no trip to the IdP');
  r = await decide(bob.page, 'deny', 'not this one');
  assert.equal(r.status, 200, r.text);
  assert.match(r.text, /You denied this action/);
  const denied = (await w.http(`/v1/approvals/${other.json.approval.id}`, { token: w.adminToken })).json;
  assert.equal(denied.state, 'denied');
  assert.equal(denied.approver, 'bob');
  // The page of a decided approval offers nothing more.
  assert.equal(await bob.page.locator('form').count(), 0);
  console.log('ok bob\'s session decides another approval without signing in again: denied');
  await bob.context.close();

  // --- dana: in no group of the published entities, but the IdP's groups claim says finance.
  const third = await w.http('/v1/actions:authorize', { token: agentToken, body: {
    target: { server: 'fake', tool: 'echo' }, arguments: { text: 'refund order 44', amount: 700 } } });
  assert.equal(third.json.decision, 'approval_required', third.text);
  const dana = await signIn('dana', third.json.approval.url);
  r = await decide(dana.page, 'approve', 'finance on-call');
  assert.equal(r.status, 200, r.text);
  const byDana = (await w.http(`/v1/approvals/${third.json.approval.id}`, { token: w.adminToken })).json;
  assert.equal(byDana.state, 'approved');
  assert.equal(byDana.approver, 'dana');
  console.log('ok dana approves as a member of finance by the IdP\'s groups claim');
  await dana.context.close();
  let a = await state();
  assert.equal(a.state, 'approved');
  assert.equal(a.approver, 'bob');
  assert.equal(a.verified_by, `oidc:${w.idpIssuer}`);
  assert.equal(a.reason, 'refund agreed with the customer');
  console.log(`ok bob approves on the page; the approval says approver bob, verified_by ${a.verified_by}`);

  // --- The agent's retry runs under the approval.
  const retry = await ask();
  assert.equal(retry.status, 200, retry.text);
  assert.equal(retry.json.decision, 'allow', retry.text);
  assert.equal(retry.json.approval?.id, approval.id);
  assert.equal(retry.json.approval?.approver, 'bob');
  a = await state();
  assert.equal(a.state, 'used');
  assert.equal(a.verified_by, `oidc:${w.idpIssuer}`);
  assert.equal(a.used_by, retry.json.action_id ?? a.used_by);
  console.log('ok the agent\'s retry is allowed under bob\'s approval, which is now used');

  // The ledger has the approver's sign-in and the decision, never the cookie.
  const entries = [];
  for (let i = 0; ; i++) {
    const e = await w.http(`/v1/ledger/entries/${i}`, { token: w.adminToken });
    if (e.status !== 200) break;
    entries.push(e);
  }
  const events = entries.map((e) => e.json.event);
  const signIns = events.filter((e) => e.kind === 'oauth.sign_in' && e.client?.id === 'custody:approvals');
  assert.deepEqual(signIns.map((e) => e.initiator.id), ['carol', 'alice', 'bob', 'dana']);
  for (const e of signIns) assert.equal(e.initiator.issuer, w.idpIssuer);
  const approved = events.filter((e) => e.kind === 'approval.approve');
  assert.equal(approved.length, 2);
  assert.ok(JSON.stringify(approved[0]).includes(`"oidc:${w.idpIssuer}"`), JSON.stringify(approved[0]));
  assert.ok(!entries.some((e) => e.text.includes(session.value)), 'an approver cookie in the ledger');
  console.log(`ok the ledger (${entries.length} entries) has the approvers' sign-ins and the approval, no cookie`);
  // carol's sign-out is on the record as her sign-in is: the person, the IdP, the pages; never
  // the cookie or the page's CSRF token.
  const signOuts = events.filter((e) => e.kind === 'oauth.sign_out');
  assert.deepEqual(signOuts.map((e) => [e.initiator.id, e.initiator.issuer, e.initiator.verification, e.client.id]),
    [['carol', w.idpIssuer, 'verified', 'custody:approvals']]);
  assert.ok(!entries.some((e) => e.text.includes(csrf)), 'a CSRF token in the ledger');
  console.log('ok carol\'s sign-out is in the ledger (oauth.sign_out: carol, the IdP, custody:approvals), no cookie or CSRF token');

  // --- One address cannot take every sign-in slot (oauth.max_sign_ins_per_address = 3): sign-ins
  // left at the IdP from 127.0.0.3 hold three, the fourth from there gets the busy page, and
  // 127.0.0.4 still goes to the IdP (Linux routes all of 127/8 to the loopback).
  const pending = await w.http('/v1/actions:authorize', { token: agentToken, body: {
    target: { server: 'fake', tool: 'echo' }, arguments: { text: 'refund order 45', amount: 800 } } });
  assert.equal(pending.json.decision, 'approval_required', pending.text);
  const signInFrom = (localAddress) => new Promise((resolve, reject) => {
    const q = httpRequest(`${pending.json.approval.url}/sign-in`, { localAddress }, (res) => {
      let body = '';
      res.on('data', (d) => { body += d; });
      res.on('end', () => resolve({ status: res.statusCode, location: res.headers.location ?? '', body }));
    });
    q.on('error', reject);
    q.end();
  });
  for (let i = 0; i < 3; i++) {
    const sent = await signInFrom('127.0.0.3');
    assert.equal(sent.status, 302, sent.body);
    assert.ok(sent.location.startsWith(w.idpIssuer), sent.location);
  }
  const busy = await signInFrom('127.0.0.3');
  assert.equal(busy.status, 503, busy.body);
  assert.match(busy.body, /from your address/);
  const elsewhere = await signInFrom('127.0.0.4');
  assert.equal(elsewhere.status, 302, elsewhere.body);
  assert.ok(elsewhere.location.startsWith(w.idpIssuer), elsewhere.location);
  console.log('ok a fourth sign-in from one address is refused (503) while another address still signs in');

} catch (e) {
  error = e;
}
await finishBrowserTest(w, browser, error);
