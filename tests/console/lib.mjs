// Shared by the console's browser tests (console_e2e.mjs, console_graphs_e2e.mjs): the browser, sign-in, a
// reader token, agents with sessions for any initiator, and a generated deployment.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';

import { AUDIENCE, ISSUER, request, stopCleanly } from '../mcp/harness.mjs';

export const CHROMIUM = process.env.CUSTODY_CHROMIUM ?? '/usr/bin/chromium';

// playwright-core's chromium; a missing package fails the test (never a skip).
export async function loadChromium() {
  try {
    return (await import('playwright-core')).chromium;
  } catch (e) {
    console.error('FAIL: cannot load playwright-core; run `npm ci` in tests/console (' + e.message + ')');
    process.exit(1);
  }
}

export const launch = async (chromium) => chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });

// The end of a console test. `t` holds what the test started: `page` (the page in use), `proc`
// (startCustody's answer), `browser`, `dir` (its data directory). On `error`, a screenshot of the
// page to `failureShot` and the server's last log lines; always the browser closed, the server
// stopped cleanly (a fault there fails the test too) and the directory removed. Exits 1 on any
// failure, else prints PASS.
export async function finish(t, error, failureShot) {
  let failed = false;
  if (error !== undefined) {
    failed = true;
    console.error('FAIL:', error);
    await t.page?.screenshot({ path: failureShot }).catch(() => {});
    if (t.proc) console.error(t.proc.stderr().split('\n').slice(-30).join('\n'));
  }
  await t.browser?.close();
  if (t.proc) {
    try {
      await stopCleanly(t.proc.server, t.proc.stderr);
    } catch (e) {
      failed = true;
      console.error('FAIL:', e);
    }
  }
  if (t.dir) rmSync(t.dir, { recursive: true, force: true });
  if (failed) process.exit(1);
  console.log('PASS');
}

// Signs `page` in at `url`/console/ with `token` and waits for the signed-in shell.
export async function signIn(page, url, token) {
  await page.goto(url + '/console/', { waitUntil: 'networkidle' });
  await page.fill('[data-testid=token]', token);
  await page.click('[data-testid=sign-in]');
  await page.waitForSelector('[data-testid=role]');
}

export function createReaderToken(custody, dataDir) {
  const created = spawnSync(custody, ['admin', 'token', 'create', '--role', 'reader', '--data-dir', dataDir],
    { encoding: 'utf8' });
  assert.equal(created.status, 0, `custody admin token create: ${created.signal ?? ''} ${created.error ?? ''} ${created.stderr}`);
  const token = /cst_[0-9a-f]{16}_[A-Za-z0-9_-]{43}/.exec(created.stdout)?.[0];
  assert.ok(token, created.stdout);
  return token;
}

// Registers an agent (client secret) and returns `session(initiator)`, a root session token for
// an asserted initiator, and `delegate(parentToken)`, a child session of another session. The
// agent's client-credentials token (the actor token of every exchange) is fetched once.
export async function agentWithSessions(url, adminToken, name, grants) {
  const reg = await request(url, '/v1/agents', { token: adminToken, body: {
    name, environment: 'dev', business_owner: 'ops', technical_owner: 'platform',
    revocation_contact: 'sec@example.com', grants, permissions: ['assert_initiator'],
    client_secret: true } });
  assert.equal(reg.status, 201, `agent registration: ${reg.text}`);
  const secret = reg.json.client_secret;
  const oauth = async (params) => {
    const r = await request(url, '/oauth2/token', { form: true,
      body: { client_id: name, client_secret: secret, ...params } });
    assert.equal(r.status, 200, `token endpoint: ${r.text}`);
    return r.json.access_token;
  };
  let actor;
  const actorToken = async () => (actor ??= await oauth({ grant_type: 'client_credentials', audience: ISSUER }));
  const exchange = async (subject, subjectType) => oauth({
    grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
    subject_token: subject, subject_token_type: subjectType,
    actor_token: await actorToken(), actor_token_type: 'urn:ietf:params:oauth:token-type:jwt',
    audience: AUDIENCE, objective: 'console graphs test' });
  return {
    name,
    session: (initiator) => exchange(JSON.stringify({ sub: initiator, iss: 'ci' }),
      'urn:custody:params:oauth:token-type:initiator-assertion'),
    delegate: (parentToken) => exchange(parentToken, 'urn:ietf:params:oauth:token-type:access_token'),
  };
}

// Decisions for `targets` (tool keys "<server>/<tool>") in one AuthZEN batch request.
export async function evaluate(url, token, agent, targets) {
  const r = await request(url, '/access/v1/evaluations', { token, body: {
    subject: { type: 'agent', id: agent }, action: { name: 'call_tool' },
    evaluations: targets.map((t) => ({ resource: { type: 'tool', id: t } })) } });
  assert.equal(r.status, 200, r.text);
  return r.json.evaluations;
}

// Runs `jobs` (functions returning promises) `width` at a time.
export async function pool(jobs, width) {
  let next = 0;
  const out = new Array(jobs.length);
  await Promise.all(Array.from({ length: width }, async () => {
    while (next < jobs.length) {
      const i = next++;
      out[i] = await jobs[i]();
    }
  }));
  return out;
}

export const dataDir = (dir) => join(dir, 'data');

// Every response body `page` receives from now on, as {url, body} in `loaded`. A body is fetched
// after its response event, so `allLoaded()` waits for the fetches begun so far (and any begun
// meanwhile) before `loaded` is read. Event streams (the live feed) never end and are skipped.
export function collectBodies(page) {
  const loaded = [];
  const bodies = [];
  page.on('response', (r) => {
    if ((r.headers()['content-type'] ?? '').startsWith('text/event-stream')) return;
    bodies.push(r.body().then((body) => loaded.push({ url: r.url(), body }), () => { /* redirects */ }));
  });
  const allLoaded = async () => { for (let n = 0; n !== bodies.length;) { n = bodies.length; await Promise.all(bodies); } };
  return { loaded, allLoaded };
}
