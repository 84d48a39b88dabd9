// The console from a database role back to the human (#23, docs/CONSOLE.md "Database roles"),
// in a real browser against a real PostgreSQL (the CTest fixture's cluster, CUSTODY_TEST_PG_DIR):
// `custody serve` with [credentials.postgres.orders] on a fresh database, an agent session for an
// asserted initiator issued a `read` role; a reader signed in to the console opens
// #/credential/<role>, sees the agent and the initiator, follows the link to the issuing
// decision and sees the initiator there. A reader's revoke with its console cookie + CSRF: 403.
//
// Usage: CUSTODY_TEST_PG_DIR=DIR node console_credential_e2e.mjs <custody> [source root] [shot dir]
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { request, startCustody } from '../mcp/harness.mjs';
import { agentWithSessions, createReaderToken, dataDir, finish, launch, loadChromium, signIn } from './lib.mjs';

const [custody, sourceRoot, shotDir = tmpdir()] = process.argv.slice(2);
const pgDir = process.env.CUSTODY_TEST_PG_DIR;
if (!custody || !pgDir) {
  console.error('usage: CUSTODY_TEST_PG_DIR=DIR node console_credential_e2e.mjs <custody> [source root] [shot dir]');
  process.exit(2);
}
const chromium = await loadChromium();
const port = readFileSync(join(pgDir, 'port'), 'utf8').trim();
const db = `custody_console_cred_${process.pid}`;
const psql = (dbname, sql) => execFileSync('psql', [`host=127.0.0.1 port=${port} user=custody dbname=${dbname}`, '-qc', sql]);
psql('postgres', `CREATE DATABASE ${db}`);
psql(db, "CREATE TABLE orders (id int PRIMARY KEY, item text); INSERT INTO orders VALUES (1, 'x')");
// The shared cluster trusts local connections; the key must still be set.
process.env.ORDERS_ADMIN_PASSWORD = 'unused-by-a-trusting-cluster';

const POLICY = '@id("read-orders") permit(principal, action == Action::"issue_credential", ' +
  'resource == Database::"orders") when { context.arguments.access == "read" };';
const INITIATOR = 'dana@example.com';

const dir = mkdtempSync(join(tmpdir(), 'custody-console-cred-'));
const t = { dir };
let error;
try {
  t.proc = await startCustody(custody, dir, `
[credentials.postgres.orders]
admin_url = "postgresql://custody@127.0.0.1:${port}/${db}"
admin_password_env = "ORDERS_ADMIN_PASSWORD"
max_ttl_s = 600
[credentials.postgres.orders.access.read]
grant = "GRANT SELECT ON ALL TABLES IN SCHEMA public TO {{role}}"
`);
  const { url, adminToken } = t.proc;
  const pub = await request(url, '/v1/policies', { token: adminToken, body: { policies: POLICY } });
  assert.equal(pub.status, 200, pub.text);
  const agent = await agentWithSessions(url, adminToken, 'orders-bot', ['Database:*']);
  const session = await agent.session(INITIATOR);
  const issued = await request(url, '/v1/credentials:issue', { token: session,
    body: { target: { type: 'Database', id: 'orders' }, access: 'read' } });
  assert.equal(issued.status, 201, issued.text);
  const role = issued.json.role;
  assert.equal(issued.json.initiator, INITIATOR, issued.text);

  const reader = createReaderToken(custody, dataDir(dir));
  t.browser = await launch(chromium);
  t.page = await t.browser.newPage({ viewport: { width: 1280, height: 800 } });
  const page = t.page;
  await signIn(page, url, reader);
  await page.goto(`${url}/console/#/credential/${encodeURIComponent(role)}`);
  await page.waitForSelector('[data-testid=credential-lease]');
  assert.equal(await page.textContent('[data-testid=credential-role]'), role);
  assert.equal(await page.textContent('[data-testid=credential-initiator]'), INITIATOR);
  assert.equal(await page.textContent('[data-testid=credential-agent]'), 'orders-bot');
  assert.equal(await page.textContent('[data-testid=credential-database]'), 'orders');
  assert.equal(await page.textContent('[data-testid=credential-state]'), 'active');
  await page.screenshot({ path: join(shotDir, 'console_credential.png') });

  // The issuing decision: who initiated it.
  await page.click('[data-testid=credential-action]');
  // The hash changes before the action view renders, and the credential view
  // shows the initiator too: wait for the action view's own card.
  await page.waitForFunction((who) => location.hash.startsWith('#/action/') &&
    document.querySelector('[data-testid=who-initiated]')?.innerText.includes(who), INITIATOR);
  assert.match(await page.innerText('[data-testid=action]'), /issue_credential/);

  // A reader's console session may read a lease, not revoke it.
  const si = await fetch(url + '/v1/console/session', { method: 'POST',
    headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token: reader }) });
  assert.equal(si.status, 200);
  const { csrf } = await si.json();
  const cookie = si.headers.getSetCookie().map((c) => c.split(';')[0]).join('; ');
  const asConsole = (path, method) => fetch(url + path, { method,
    headers: { cookie, 'x-custody-csrf': csrf, 'content-type': 'application/json' }, body: method === 'POST' ? '{}' : undefined });
  assert.equal((await asConsole(`/v1/credentials/${role}`, 'GET')).status, 200);
  assert.equal((await asConsole(`/v1/credentials/${role}:revoke`, 'POST')).status, 403);
  // Without its CSRF header the cookie does not count (403, as on every route).
  const bare = await fetch(`${url}/v1/credentials/${role}`, { headers: { cookie } });
  assert.equal(bare.status, 403);
  console.log(`console credential: ${role} -> ${INITIATOR}, reader revoke 403`);
} catch (e) {
  error = e;
}
try {
  await finish(t, error, join(shotDir, 'console_credential_failure.png'));
} finally {
  spawnSync('psql', [`host=127.0.0.1 port=${port} user=custody dbname=postgres`, '-qc', `DROP DATABASE IF EXISTS ${db} WITH (FORCE)`]);
}
