// Gateway overhead per tools/call: the same echo call made directly to an upstream over stdio,
// and through `custody serve` (token check, policy, durable decision + outcome, receipts),
// at several concurrencies, over loopback. The upstream is src/mcp/testdata/fake_server.mjs
// (fast, no dependencies), so what differs is the gateway's own cost (plus HTTP).
//   node overhead_bench.mjs /path/to/custody [source root] [calls per level] [--await-outcome]
// With --await-outcome the gateway runs with mcp.await_outcome = true (answers once the
// outcome is durable too). The gateway is driven with node:http over one keep-alive connection
// per concurrent caller (fetch adds ~0.2 ms of its own per call).
// A benchmark, not a test: it prints figures and checks nothing about time.
import { spawn } from 'node:child_process';
import http from 'node:http';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

import { registerAgent, request, startCustody } from './harness.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const awaitOutcome = process.argv.includes('--await-outcome');
const positional = process.argv.slice(2).filter((a) => !a.startsWith('--'));
const custody = positional[0];
const sourceRoot = positional[1] ?? join(here, '..', '..');
const calls = Number(positional[2] ?? 2000);
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
[mcp]
await_outcome = ${awaitOutcome}
[mcp.servers.fake]
command = ${JSON.stringify(process.execPath)}
args = [${JSON.stringify(fake)}]
env = { FAKE_MARKER_FILE = ${JSON.stringify(join(dir, 'marker'))} }
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
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  const { hostname, port } = new URL(url);
  const body = JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/call', params: echo });
  const callHeaders = { ...headers, authorization: `Bearer ${token}`, 'content-type': 'application/json',
    'content-length': Buffer.byteLength(body) };
  const viaGateway = () => new Promise((resolve, reject) => {
    const req = http.request({ hostname, port, path: '/mcp/fake', method: 'POST', agent, headers: callHeaders },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d) => { text += d; });
        res.on('end', () => {
          if (!text.includes('"dev.custody/receipt"')) reject(new Error('no receipt: ' + text));
          else resolve();
        });
      });
    req.on('error', reject);
    req.end(body);
  });
  const viaStdio = async () => { await direct.call('tools/call', echo); };
  for (let i = 0; i < 200; i++) { await viaGateway(); await viaStdio(); }  // warm up

  console.log(`calls per level: ${calls}; custody: ${custody}; mcp.await_outcome = ${awaitOutcome}`);
  console.log('concurrency | direct p50 / p99 ms | gateway p50 / p99 ms | overhead p50 ms | gateway calls/s');
  for (const c of levels) {
    const d = await drive(viaStdio, c);
    const g = await drive(viaGateway, c);
    console.log(`${String(c).padStart(11)} | ${d.p50.toFixed(3)} / ${d.p99.toFixed(3)} | ` +
      `${g.p50.toFixed(3)} / ${g.p99.toFixed(3)} | ${(g.p50 - d.p50).toFixed(3)} | ${g.rate.toFixed(0)}`);
  }
  direct.close();

  // Containment of a session with a call in flight upstream: the time from sending
  // POST /v1/contain until that call is answered (refused), and until the session's next
  // request is refused (404). Each round uses a new session.
  const rounds = 30;
  const refused = [];
  const next404 = [];
  const slowStarted = join(dir, 'marker.slow-started');
  for (let i = 0; i < rounds; i++) {
    const t = await session();
    const h = { accept: 'application/json, text/event-stream' };
    const ini = await request(url, '/mcp/fake', { token: t, headers: h, body: { jsonrpc: '2.0', id: 0,
      method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'bench', version: '1' } } } });
    h['mcp-session-id'] = ini.headers.get('mcp-session-id');
    rmSync(slowStarted, { force: true });
    const slow = request(url, '/mcp/fake', { token: t, headers: h, body: { jsonrpc: '2.0', id: 1,
      method: 'tools/call', params: { name: 'slow', arguments: { ms: 60000 } } } });
    for (let w = 0; w < 1000 && !existsSync(slowStarted); w++) await new Promise((r) => setTimeout(r, 2));
    const sid = JSON.parse(Buffer.from(t.split('.')[1], 'base64url').toString()).sid;
    const t0 = performance.now();
    const contain = request(url, '/v1/contain', { token: adminToken, body: { session: sid, reason: 'bench' } });
    const r = await slow;
    const t1 = performance.now();
    if (r.json?.error?.code !== -32001) throw new Error('in-flight call not refused: ' + r.text);
    await contain;
    const again = await request(url, '/mcp/fake', { token: t, headers: h, body: { jsonrpc: '2.0', id: 2, method: 'ping' } });
    const t2 = performance.now();
    if (again.status !== 404) throw new Error('next request not 404: ' + again.text);
    refused.push(t1 - t0);
    next404.push(t2 - t0);
  }
  refused.sort((a, b) => a - b);
  next404.sort((a, b) => a - b);
  console.log(`containment (${rounds} rounds): in-flight call refused p50 ${pct(refused, 0.5).toFixed(2)} ms, ` +
    `max ${refused[rounds - 1].toFixed(2)} ms; next request 404 p50 ${pct(next404, 0.5).toFixed(2)} ms ` +
    `(both from sending POST /v1/contain)`);
  agent.destroy();
} finally {
  if (started && started.server.exitCode === null) started.server.kill('SIGTERM');
  if (started) await new Promise((r) => (started.server.exitCode !== null ? r() : started.server.on('exit', r)));
  rmSync(dir, { recursive: true, force: true });
}
