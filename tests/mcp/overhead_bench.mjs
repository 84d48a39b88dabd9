// Gateway overhead per tools/call: the same echo call made directly to an upstream over stdio,
// and through `custody serve` (token check, policy, durable decision + outcome, receipts),
// at several concurrencies, over loopback. The upstream is src/mcp/testdata/fake_server.mjs
// (fast, no dependencies), so what differs is the gateway's own cost (plus HTTP).
//   node overhead_bench.mjs /path/to/custody [source root] [calls per level]
// A benchmark, not a test: it prints figures and checks nothing about time.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

import { registerAgent, request, startCustody } from './harness.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const custody = process.argv[2];
const sourceRoot = process.argv[3] ?? join(here, '..', '..');
const calls = Number(process.argv[4] ?? 2000);
const levels = [1, 4, 16];
const fake = join(sourceRoot, 'src/mcp/testdata/fake_server.mjs');
if (!custody) {
  console.error('usage: node overhead_bench.mjs /path/to/custody [source root] [calls per level]');
  process.exit(2);
}

const pct = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];

// Runs `calls` calls of `one()` with `concurrency` in flight; returns latencies (ms) and rate.
async function drive(one, concurrency) {
  const lat = [];
  let next = 0;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next++ < calls) {
      const s = performance.now();
      await one();
      lat.push(performance.now() - s);
    }
  }));
  const secs = (performance.now() - t0) / 1000;
  lat.sort((a, b) => a - b);
  return { p50: pct(lat, 0.5), p99: pct(lat, 0.99), rate: calls / secs };
}

// A direct stdio client of the fake server.
async function directClient() {
  const child = spawn(process.execPath, [fake], { stdio: ['pipe', 'pipe', 'ignore'] });
  const waiting = new Map();
  let id = 0;
  (async () => {
    for await (const line of createInterface({ input: child.stdout })) {
      const m = JSON.parse(line);
      waiting.get(m.id)?.(m);
      waiting.delete(m.id);
    }
  })();
  const call = (method, params) => new Promise((resolve) => {
    const i = ++id;
    waiting.set(i, resolve);
    child.stdin.write(JSON.stringify({ jsonrpc: '2.0', id: i, method, params }) + '\n');
  });
  await call('initialize', { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'bench', version: '1' } });
  return { call, close: () => child.kill() };
}

const dir = mkdtempSync(join(tmpdir(), 'custody-mcp-bench-'));
let started;
try {
  const direct = await directClient();
  started = await startCustody(custody, dir, `
[mcp.servers.fake]
command = ${JSON.stringify(process.execPath)}
args = [${JSON.stringify(fake)}]
`, 'warn');
  const { url, adminToken } = started;
  const { session } = await registerAgent(url, adminToken, 'bench-agent', ['fake/*']);
  const token = await session();
  const pub = await request(url, '/v1/policies', { token: adminToken, body: {
    policies: '@id("bench") permit(principal, action == Action::"call_tool", resource in Server::"fake");' } });
  if (pub.status !== 200) throw new Error(pub.text);
  const headers = { accept: 'application/json, text/event-stream' };
  const init = await request(url, '/mcp/fake', { token, headers, body: { jsonrpc: '2.0', id: 0,
    method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'bench', version: '1' } } } });
  headers['mcp-session-id'] = init.headers.get('mcp-session-id');
  headers['mcp-protocol-version'] = '2025-06-18';
  await request(url, '/mcp/fake', { token, headers, body: { jsonrpc: '2.0', id: 1, method: 'tools/list' } });
  const echo = { name: 'echo', arguments: { text: 'benchmark' } };
  const viaGateway = async () => {
    const r = await request(url, '/mcp/fake', { token, headers,
      body: { jsonrpc: '2.0', id: 2, method: 'tools/call', params: echo } });
    if (!r.json?.result?._meta?.['dev.custody/receipt']) throw new Error('no receipt: ' + r.text);
  };
  const viaStdio = async () => { await direct.call('tools/call', echo); };
  for (let i = 0; i < 200; i++) { await viaGateway(); await viaStdio(); }  // warm up

  console.log(`calls per level: ${calls}; custody: ${custody}`);
  console.log('concurrency | direct p50 / p99 ms | gateway p50 / p99 ms | overhead p50 ms | gateway calls/s');
  for (const c of levels) {
    const d = await drive(viaStdio, c);
    const g = await drive(viaGateway, c);
    console.log(`${String(c).padStart(11)} | ${d.p50.toFixed(3)} / ${d.p99.toFixed(3)} | ` +
      `${g.p50.toFixed(3)} / ${g.p99.toFixed(3)} | ${(g.p50 - d.p50).toFixed(3)} | ${g.rate.toFixed(0)}`);
  }
  direct.close();
} finally {
  if (started && started.server.exitCode === null) started.server.kill('SIGTERM');
  if (started) await new Promise((r) => (started.server.exitCode !== null ? r() : started.server.on('exit', r)));
  rmSync(dir, { recursive: true, force: true });
}
