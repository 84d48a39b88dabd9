// Shared by the MCP e2e tests: what the ledger says about one action, and its digests.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';

import { request } from './harness.mjs';

// RFC 8785 (JCS) for the plain JSON values here: keys sorted by UTF-16 units, numbers and strings
// as JSON.stringify writes them. The ledger's digests are sha256 of that form.
const jcs = (v) => (Array.isArray(v) ? `[${v.map(jcs).join(',')}]`
  : v !== null && typeof v === 'object'
    ? `{${Object.keys(v).sort().map((k) => `${JSON.stringify(k)}:${jcs(v[k])}`).join(',')}}`
    : JSON.stringify(v));
export const digest = (v) => 'sha256:' + createHash('sha256').update(jcs(v)).digest('hex');

// The trace of an action (GET /v1/trace/{id}) once its outcome is in the ledger: the gateway
// queues the outcome after answering the call.
export async function tracedWithOutcome(ctx, actionId) {
  let traced;
  for (let i = 0; i < 150; i++) {
    traced = await request(ctx.url, `/v1/trace/${actionId}`, { method: 'GET', token: ctx.adminToken });
    if (traced.json?.outcome) return traced.json;
    await new Promise((r) => setTimeout(r, 20));
  }
  assert.fail(`no outcome recorded for ${actionId}: ${traced.text}`);
}
