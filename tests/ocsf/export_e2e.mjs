// OCSF export end to end (docs/OCSF.md). `custody serve` runs with [export.ocsf] pointed at an
// HTTP receiver here, which acknowledges slowly (and refuses the first batch, so it is retried).
// A scenario goes through the native API: a policy set, an agent registered, its tokens, an
// allowed action and its outcome, a denied one, one held for approval, and a containment (which
// cancels the approval). Mid-stream the server is killed (SIGKILL) and restarted on the same data
// directory; more actions follow; then it stops cleanly. Checked:
//   - `custody export --format ocsf --db …` writes one record per ledger entry, in ledger order,
//     and each validates against the released OCSF schema (validate.mjs);
//   - the receiver ends up with every record exactly once by ledger index (a batch resent after
//     the kill, if any, is recognised by its indexes and is byte-identical), equal to the export.
//
// Usage: node export_e2e.mjs <custody binary> <source root>
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  ISSUER, eventually, freePort, registerAgent, request, startCustody, stopCleanly,
} from '../mcp/harness.mjs';
import { validate } from './validate.mjs';

const [custody] = process.argv.slice(2);
if (!custody) throw new Error('usage: export_e2e.mjs <custody> <source root>');
const dir = mkdtempSync(join(tmpdir(), 'custody-ocsf-export-'));

// The receiver: records by ledger index; repeats counted (they must be identical).
const received = new Map();
let posts = 0, repeats = 0;
// Until the kill, batches after the first acknowledged one are received but not acknowledged,
// so the server is still streaming when it is killed however slow this machine is.
let holdAcks = true;
const receiver = createServer((req, res) => {
  let body = '';
  req.on('data', (d) => { body += d; });
  req.on('end', () => {
    posts++;
    if (posts === 1) { res.writeHead(503); res.end(); return; }  // retried with backoff
    assert.equal(req.headers['content-type'], 'application/x-ndjson');
    const from = Number(req.headers['x-custody-ledger-from']);
    const lines = body.split('\n').filter((l) => l);
    lines.forEach((line, i) => {
      const idx = JSON.parse(line).unmapped.custody.ledger.index;
      assert.equal(idx, from + i, 'a batch is the ledger range its headers name');
      if (received.has(idx)) { repeats++; assert.equal(received.get(idx), line); }
      received.set(idx, line);
    });
    if (holdAcks && posts > 2) return;  // never acknowledged: the server is killed first
    setTimeout(() => { res.writeHead(204); res.end(); }, 40);  // a slow acknowledgement
  });
});
const port = await freePort();
await new Promise((resolve) => receiver.listen(port, '127.0.0.1', resolve));

const config = `
[export.ocsf]
url = "http://127.0.0.1:${port}/ocsf"
batch = 2
poll_ms = 20
`;
const ledgerSize = async (url) => {
  const r = await request(url, '/v1/ledger/checkpoint', { method: 'GET' });
  return Number(r.text.split('\n')[1]);
};

let proc;
try {
  proc = await startCustody(custody, dir, config);
  let { url, adminToken } = proc;
  const published = await request(url, '/v1/policies', { token: adminToken, body: {
    policies: `@id("pay-ok") permit(principal, action == Action::"call_tool", resource in Server::"pay");
@id("no-delete") forbid(principal, action == Action::"call_tool", resource == Tool::"pay/delete");
@id("big-refunds") @approval("finance")
forbid(principal, action == Action::"call_tool", resource == Tool::"pay/refund")
  when { context.arguments.amount > 100 };`,
    entities: [{ uid: { type: 'Group', id: 'finance' }, attrs: {}, parents: [] }] } });
  assert.equal(published.status, 200, published.text);
  const agent = await registerAgent(url, adminToken, 'billing-bot', ['pay/*']);
  let token = await agent.session(ISSUER);
  const act = (tool, args = {}) => request(url, '/v1/actions:authorize', { token, body: {
    target: { server: 'pay', tool }, arguments: args } });
  const allowed = await act('charge', { amount: 5 });
  assert.equal(allowed.json.decision, 'allow', allowed.text);
  const done = await request(url, `/v1/actions/${allowed.json.action_id}:complete`,
    { token, body: { status: 'ok' } });
  assert.equal(done.status, 200, done.text);
  assert.equal((await act('delete')).json.decision, 'deny');
  const held = await act('refund', { amount: 500 });
  assert.equal(held.json.decision, 'approval_required', held.text);

  // Killed mid-stream: some batches acknowledged, the rest not yet sent.
  await eventually('a first batch', () => received.size >= 2, 15000);
  const sizeBeforeKill = await ledgerSize(url);
  assert.ok(received.size < sizeBeforeKill, `still streaming (${received.size}/${sizeBeforeKill})`);
  proc.server.kill('SIGKILL');
  await new Promise((r) => (proc.server.exitCode !== null || proc.server.signalCode ? r()
    : proc.server.on('exit', r)));

  holdAcks = false;
  proc = await startCustody(custody, dir, config);
  url = proc.url;
  const contained = await request(url, '/v1/contain', { token: adminToken,
    body: { agent: 'billing-bot', reason: 'ocsf e2e' } });
  assert.equal(contained.status, 200, contained.text);
  // The containment cancels the held approval after answering (the revocation queues it): wait
  // for its approval.cancel to be in the ledger before taking the ledger's final size.
  // The state changes first; decided_index once the approval.cancel event is durable.
  let cancelIndex;
  await eventually('the held approval cancelled in the ledger', async () => {
    const a = await request(url, `/v1/approvals/${held.json.approval.id}`, { token: adminToken, method: 'GET' });
    assert.equal(a.status, 200, a.text);
    if (a.json.state === 'cancelled') cancelIndex = a.json.decided_index;
    return Number.isInteger(cancelIndex);
  }, 15000);
  const size = await ledgerSize(url);
  assert.ok(size > cancelIndex, `the cancellation (${cancelIndex}) is inside the checkpoint (${size})`);
  await eventually('every record at the receiver', () => received.size >= size, 30000);
  await stopCleanly(proc.server, proc.stderr);
  proc = undefined;

  const out = spawnSync(custody, ['export', '--format', 'ocsf', '--db', join(dir, 'data', 'ledger.db')],
    { encoding: 'utf8', maxBuffer: 64 << 20 });
  assert.equal(out.status, 0, out.stderr);
  const lines = out.stdout.split('\n').filter((l) => l);
  assert.equal(lines.length, size, 'one record per ledger entry');
  const kinds = new Set();
  lines.forEach((line, i) => {
    const r = JSON.parse(line);
    assert.equal(r.unmapped.custody.ledger.index, i, 'in ledger order');
    assert.deepEqual(validate(r), [], `record ${i} (${r.metadata.event_code}) is valid OCSF`);
    kinds.add(r.metadata.event_code);
    assert.equal(received.get(i), line, `the receiver's record ${i} is the export's`);
  });
  assert.equal(received.size, size, 'every record exactly once by ledger index');
  for (const k of ['policy.publish', 'agent.register', 'credential.issue', 'session.start',
    'action.decision', 'action.outcome', 'containment', 'approval.cancel']) {
    assert.ok(kinds.has(k), `the scenario recorded ${k}`);
  }
  console.log(`ocsf export e2e: ${size} records valid (OCSF 1.8.0), ${posts} POSTs, ` +
    `${repeats} records resent after SIGKILL (deduplicated by index), kinds: ${[...kinds].join(', ')}`);
} finally {
  if (proc) proc.server.kill('SIGKILL');
  receiver.close();
  rmSync(dir, { recursive: true, force: true });
}
