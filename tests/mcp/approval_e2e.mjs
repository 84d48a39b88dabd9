// Approvals through the MCP gateway end to end (docs/MCP.md, "Approvals"): the official
// TypeScript SDK client (@modelcontextprotocol/sdk, Streamable HTTP) calls a tool of
// src/mcp/testdata/fake_server.mjs (stdio) through `custody serve`, where refunds over 100 need
// the approval of a member of Group::"finance" (bob; eve is not in it). Approvers hold approver
// tokens (`custody admin token create --role approver --label PERSON`) and decide over HTTP
// (POST /v1/approvals/{id}:approve).
//   node approval_e2e.mjs /path/to/custody /path/to/source/root
// Checks: (a) a client without URL-mode elicitation is held ([approval] hold_ms), with progress
// notifications naming the approval and its page, while the approval is pending
// (GET /v1/approvals?state=pending); eve's approval is refused (403) and the call still waits;
// bob's lets it go on, and its result carries the upstream's answer and a receipt naming bob;
// (b) a client declaring elicitation {url: {}} gets -32042 (URLElicitationRequiredError) with the
// approval page as the elicitation's URL, hears notifications/elicitation/complete on its GET
// stream once bob approved, and its retry of the same call passes; other arguments (501) need a
// new approval; (c) a call refused while pending, never reaching the server; (d) a refund of 100
// or less passes without an approval.
// Exits non-zero on the first failure; needs `npm ci` in tests/mcp (scripts/test.sh does it).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import {
  ISSUER, eventually, loadSdk, registerAgent, rejection, request, startCustody, stopCleanly,
} from './harness.mjs';

const { Client, StreamableHTTPClientTransport } = await loadSdk();
const { ElicitationCompleteNotificationSchema } = await import('@modelcontextprotocol/sdk/types.js');

const here = dirname(fileURLToPath(import.meta.url));
const custody = process.argv[2];
const sourceRoot = process.argv[3] ?? join(here, '..', '..');
if (!custody) {
  console.error('usage: node approval_e2e.mjs /path/to/custody [source root]');
  process.exit(2);
}
const fake = join(sourceRoot, 'src/mcp/testdata/fake_server.mjs');
const RECEIPT = 'dev.custody/receipt';
const HOLD_MS = 20000;

const dir = mkdtempSync(join(tmpdir(), 'custody-approval-mcp-'));
let server;
let stderrOf = () => '';

const POLICIES = `
@id("pay-tools") permit(principal, action == Action::"call_tool", resource in Server::"pay");
@id("big-refunds") @approval("finance")
forbid(principal, action == Action::"call_tool", resource == Tool::"pay/echo")
  when { context.arguments.amount > 100 };
`;
const ENTITIES = [
  { uid: { type: 'Group', id: 'finance' }, attrs: {}, parents: [] },
  { uid: { type: 'User', id: 'bob' }, attrs: {}, parents: [{ type: 'Group', id: 'finance' }] },
  { uid: { type: 'User', id: 'eve' }, attrs: {}, parents: [] },
];

// An approver token for `person`, created as an operator does, on the server's data directory.
function approverToken(person) {
  const out = execFileSync(custody, ['admin', 'token', 'create', '--role', 'approver', '--label',
    person, '--data-dir', join(dir, 'data')], { encoding: 'utf8' });
  return JSON.parse(out.trim()).token;
}

async function main() {
  const started = await startCustody(custody, dir, `
[approval]
hold_ms = ${HOLD_MS}

[mcp]
request_timeout_ms = 30000

[mcp.servers.pay]
command = ${JSON.stringify(process.execPath)}
args = [${JSON.stringify(fake)}]
`);
  server = started.server;
  stderrOf = started.stderr;
  const { url, adminToken } = started;

  const { session } = await registerAgent(url, adminToken, 'refund-agent', ['pay/*']);
  const pub = await request(url, '/v1/policies', { token: adminToken,
    body: { policies: POLICIES, entities: ENTITIES } });
  assert.equal(pub.status, 200, pub.text);
  const bob = approverToken('bob');
  const eve = approverToken('eve');

  const connect = async (capabilities = {}) => {
    const token = await session();
    const transport = new StreamableHTTPClientTransport(new URL(`${url}/mcp/pay`),
      { requestInit: { headers: { authorization: `Bearer ${token}` } } });
    const client = new Client({ name: 'custody-approval-e2e', version: '1.0.0' }, { capabilities });
    await client.connect(transport);
    return client;
  };
  const pending = async () => {
    const r = await request(url, '/v1/approvals?state=pending', { method: 'GET', token: adminToken });
    assert.equal(r.status, 200, r.text);
    return r.json.approvals;
  };
  const decide = (id, verdict, token, reason) =>
    request(url, `/v1/approvals/${id}:${verdict}`, { token, body: { reason } });
  const pageOf = (id) => `${ISSUER}/approvals/${id}`;

  // --- (d) Within the limit: no approval asked, the call passes.
  const plain = await connect();
  const small = await plain.callTool({ name: 'echo', arguments: { amount: 100 } });
  assert.equal(small.isError, undefined, JSON.stringify(small));
  assert.equal(small.structuredContent.arguments.amount, 100);
  assert.equal((await pending()).length, 0, 'a refund of 100 asked for no approval');
  console.log('ok a refund within the limit passes without an approval');

  // --- (a) Held: the call waits, with progress naming the approval, until bob approves.
  const progress = [];
  const held = plain.callTool({ name: 'echo', arguments: { amount: 500 } }, undefined,
    { onprogress: (p) => progress.push(p), timeout: HOLD_MS + 30000 });
  let asked;
  for (const end = Date.now() + 15000; !asked && Date.now() < end;) {
    asked = (await pending()).find((a) => a.target === 'pay/echo');
    if (!asked) await new Promise((r) => setTimeout(r, 50));
  }
  assert.ok(asked, 'no pending approval for pay/echo');
  assert.equal(asked.state, 'pending');
  assert.deepEqual(asked.groups, ['Group::"finance"']);
  await eventually('a progress notification', () => progress.length > 0, 10000);
  assert.equal(progress[0].message, `waiting for approval ${asked.id} at ${pageOf(asked.id)}`);
  // (c) eve is not in the group: refused, and the call still waits.
  const byEve = await decide(asked.id, 'approve', eve, 'looks fine');
  assert.equal(byEve.status, 403, byEve.text);
  const still = await request(url, `/v1/approvals/${asked.id}`, { method: 'GET', token: adminToken });
  assert.equal(still.json.state, 'pending', still.text);
  const byBob = await decide(asked.id, 'approve', bob, 'ticket FIN-7');
  assert.equal(byBob.status, 200, byBob.text);
  assert.equal(byBob.json.state, 'approved');
  const done = await held;
  assert.equal(done.isError, undefined, JSON.stringify(done));
  assert.equal(done.structuredContent.arguments.amount, 500, 'the upstream\'s own answer');
  assert.equal(done._meta[RECEIPT].decision, 'allow');
  assert.equal(done._meta[RECEIPT].approval.id, asked.id);
  assert.equal(done._meta[RECEIPT].approval.approver, 'bob');
  console.log(`ok a held call waits (${progress.length} progress notification(s) naming the approval), ` +
    'eve\'s approval is refused (403), bob\'s lets it run, its receipt names him');
  const used = await request(url, `/v1/approvals/${asked.id}`, { method: 'GET', token: adminToken });
  assert.equal(used.json.state, 'used', used.text);

  // --- (b) URL-mode elicitation: -32042 pointing at the approval page, then the retry passes.
  const eliciting = await connect({ elicitation: { url: {} } });
  const completed = [];
  eliciting.setNotificationHandler(ElicitationCompleteNotificationSchema,
    (n) => { completed.push(n.params.elicitationId); });
  const call = () => eliciting.callTool({ name: 'echo', arguments: { amount: 500 } });
  const first = await rejection(call());
  assert.equal(first.code, -32042, String(first));
  assert.equal(first.elicitations.length, 1);
  const el = first.elicitations[0];
  assert.equal(el.mode, 'url');
  assert.equal(el.url, pageOf(el.elicitationId));
  assert.match(el.message, /pay\/echo needs the approval of a member of Group::"finance"/);
  assert.notEqual(el.elicitationId, asked.id, 'a used approval is not asked again');
  const page = await fetch(el.url.replace(ISSUER, url));
  assert.equal(page.status, 200, 'the approval page is served');
  // (c) while pending, a call is refused again (the same approval), never forwarded.
  const again = await rejection(call());
  assert.equal(again.elicitations[0].elicitationId, el.elicitationId);
  assert.equal((await decide(el.elicitationId, 'approve', eve, 'me too')).status, 403);
  assert.equal((await decide(el.elicitationId, 'approve', bob, 'ticket FIN-8')).status, 200);
  await eventually('notifications/elicitation/complete', () => completed.includes(el.elicitationId), 10000);
  const retried = await call();
  assert.equal(retried.isError, undefined, JSON.stringify(retried));
  assert.equal(retried._meta[RECEIPT].approval.id, el.elicitationId);
  assert.equal(retried._meta[RECEIPT].approval.approver, 'bob');
  // Other arguments are another action: a new approval.
  const other = await rejection(eliciting.callTool({ name: 'echo', arguments: { amount: 501 } }));
  assert.equal(other.code, -32042, String(other));
  assert.notEqual(other.elicitations[0].elicitationId, el.elicitationId);
  console.log('ok a client with URL-mode elicitation gets -32042 with the approval page, is told ' +
    'when it is complete, and its retry passes; changed arguments need a new approval');

  await plain.close();
  await eliciting.close();
  await stopCleanly(server, stderrOf);
  console.log('ok custody serve stopped cleanly');
}

try {
  await main();
  rmSync(dir, { recursive: true, force: true });
} catch (e) {
  console.error('FAIL:', e);
  console.error(stderrOf().slice(-4000));
  if (server && server.exitCode === null) server.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
  process.exit(1);
}
