// Shared by sdk_clients_e2e.mjs and relay_e2e.mjs: what the ledger says about one action.
import assert from 'node:assert/strict';

import { request } from './harness.mjs';

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
