// The approvers' webhook end to end: `custody serve` with [approval.webhook] posts each new
// approval to a real HTTP receiver here, which verifies it with the Standard Webhooks reference
// library (npm `standardwebhooks`, pinned in this folder), not with Custody's code. The receiver
// refuses the first delivery (500): the retry carries the same webhook-id and verifies too. The
// same action asked again names the same approval and sends nothing new; a receiver holding
// another secret rejects the signature.
//
// Usage: node webhook_e2e.mjs <custody binary> <source root>
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Webhook } from 'standardwebhooks';
import {
  ISSUER, eventually, freePort, registerAgent, request, startCustody, stopCleanly,
} from '../mcp/harness.mjs';

const [custody] = process.argv.slice(2);
if (!custody) throw new Error('usage: webhook_e2e.mjs <custody> <source root>');

const dir = mkdtempSync(join(tmpdir(), 'custody-approval-webhook-'));
const secret = 'whsec_' + randomBytes(32).toString('base64');
const secretFile = join(dir, 'webhook.secret');
writeFileSync(secretFile, secret + '\n', { mode: 0o600 });

// The receiver: every delivery is kept with its headers; the first one is answered 500.
const deliveries = [];
const receiver = createServer((req, res) => {
  let body = '';
  req.on('data', (d) => { body += d; });
  req.on('end', () => {
    deliveries.push({ path: req.url, headers: req.headers, body });
    res.writeHead(deliveries.length === 1 ? 500 : 204);
    res.end();
  });
});
const hookPort = await freePort();
await new Promise((resolve) => receiver.listen(hookPort, '127.0.0.1', resolve));

let custodyProc;
try {
  const c = await startCustody(custody, dir, `
[approval]
request_ttl_ms = 600000
[approval.webhook]
url = "http://127.0.0.1:${hookPort}/hooks/custody"
secret_file = "${secretFile}"
max_attempts = 4
`);
  custodyProc = c;
  const { url, adminToken } = c;

  const published = await request(url, '/v1/policies', { token: adminToken, body: {
    policies: `@id("pay-ok") permit(principal, action == Action::"call_tool", resource in Server::"pay");
@id("big-refunds") @approval("finance")
forbid(principal, action == Action::"call_tool", resource == Tool::"pay/refund")
  when { context.arguments.amount > 100 };`,
    entities: [
      { uid: { type: 'Group', id: 'finance' }, attrs: {}, parents: [] },
      { uid: { type: 'User', id: 'bob' }, attrs: {}, parents: [{ type: 'Group', id: 'finance' }] },
    ] } });
  assert.equal(published.status, 200, published.text);

  const agent = await registerAgent(url, adminToken, 'billing-bot', ['pay/*']);
  const token = await agent.session(ISSUER);
  const ask = () => request(url, '/v1/actions:authorize', { token, body: {
    target: { server: 'pay', tool: 'refund' }, arguments: { amount: 500, order: 'o-1' } } });

  const asked = await ask();
  assert.equal(asked.status, 200, asked.text);
  assert.equal(asked.json.decision, 'approval_required', asked.text);
  const approval = asked.json.approval;
  assert.equal(approval.state, 'pending');
  assert.deepEqual(approval.groups, ['Group::"finance"']);
  assert.equal(approval.url, `${ISSUER}/approvals/${approval.id}`);

  // Refused once, delivered on the retry: two requests, one message id.
  await eventually('the retried delivery', () => deliveries.length >= 2, 15000);
  const [first, second] = deliveries;
  assert.equal(first.path, '/hooks/custody');
  assert.equal(first.headers['content-type'], 'application/json');
  assert.equal(first.headers['webhook-id'], `approval_${approval.id}`);
  assert.equal(second.headers['webhook-id'], first.headers['webhook-id']);
  assert.equal(second.body, first.body);
  for (const d of [first, second]) {
    // The reference library checks the signature and that the timestamp is recent.
    const payload = new Webhook(secret).verify(d.body, d.headers);
    assert.equal(payload.type, 'approval.requested');
    assert.equal(payload.data.id, approval.id);
    assert.equal(payload.data.state, 'pending');
    assert.equal(payload.data.target, 'pay/refund');
    assert.equal(payload.data.agent, 'billing-bot');
    assert.equal(payload.data.url, approval.url);
    assert.deepEqual(payload.data.groups, ['Group::"finance"']);
  }
  // Another secret does not verify it; nor does a changed body.
  const other = new Webhook('whsec_' + randomBytes(32).toString('base64'));
  assert.throws(() => other.verify(second.body, second.headers));
  assert.throws(() => new Webhook(secret).verify(second.body.replace('pay/refund', 'pay/refunD'),
    second.headers));

  // The same action asked again names the same approval: nothing new is sent.
  const again = await ask();
  assert.equal(again.json.approval.id, approval.id);
  await new Promise((r) => setTimeout(r, 1500));
  assert.equal(deliveries.length, 2, 'no notification for an approval already asked for');

  // Another action (changed arguments) is another approval: a new notification.
  const other_action = await request(url, '/v1/actions:authorize', { token, body: {
    target: { server: 'pay', tool: 'refund' }, arguments: { amount: 501, order: 'o-1' } } });
  assert.equal(other_action.json.decision, 'approval_required');
  assert.notEqual(other_action.json.approval.id, approval.id);
  await eventually('the second approval\'s notification', () => deliveries.length >= 3, 15000);
  const third = new Webhook(secret).verify(deliveries[2].body, deliveries[2].headers);
  assert.equal(third.data.id, other_action.json.approval.id);

  await stopCleanly(c.server, c.stderr);
  custodyProc = undefined;
  console.log('approval webhook e2e: ok (3 notifications, 1 retry, verified by standardwebhooks)');
} finally {
  if (custodyProc) custodyProc.server.kill('SIGKILL');
  receiver.close();
  rmSync(dir, { recursive: true, force: true });
}
