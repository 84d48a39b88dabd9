// Gateway overhead per tools/call (and per resources/read and prompts/get, decided, recorded and
// forwarded the same way): the same request made directly to an upstream and through
// `custody serve` (token check, policy, durable decision, outcome queued, receipts), at several
// concurrencies, over loopback. Two upstreams, both fast and dependency-free:
// - src/mcp/testdata/fake_http_server.mjs over Streamable HTTP: the client speaks the same
//   transport (node:http, keep-alive) to the upstream directly and to Custody, so the overhead
//   is Custody's own cost plus the one extra loopback hop;
// - src/mcp/testdata/fake_server.mjs over stdio: direct is a pipe, so the overhead also
//   includes the client's HTTP.
//   node overhead_bench.mjs /path/to/custody [source root] [calls per level] [--await-outcome]
// BENCH_CONFIG adds top-level config lines (e.g. BENCH_CONFIG='worker_threads = 1').
// METHODS=tools/call,resources/read,prompts/get picks the requests (default tools/call only):
// the echo tool, the resource fake://echo, the prompt echo. Each level measures every method,
// direct then gateway, before the next level; the policy permits call_tool and the chosen methods.
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
const levels = (process.env.LEVELS ?? "1,4,16").split(",").map(Number);  // LEVELS=1,4 to choose
// What each method asks, the Cedar action that must permit it, the capability a server declares
// for it, and what a direct answer must contain.
const kinds = {
  'tools/call': { params: { name: 'echo', arguments: { text: 'benchmark' } }, action: 'call_tool',
    capability: 'tools', mark: 'benchmark' },
  'resources/read': { params: { uri: 'fake://echo' }, action: 'read_resource',
    capability: 'resources', mark: 'echo resource' },
  'prompts/get': { params: { name: 'echo', arguments: { text: 'benchmark' } }, action: 'get_prompt',
    capability: 'prompts', mark: 'benchmark' },
};
const methods = (process.env.METHODS ?? 'tools/call').split(',');
for (const m of methods) {
  if (!kinds[m]) {
    console.error(`METHODS: unknown method ${m} (known: ${Object.keys(kinds).join(', ')})`);
    process.exit(2);
  }
}
const fake = join(sourceRoot, 'src/mcp/testdata/fake_server.mjs');
if (!custody) {
  console.error('usage: [METHODS=tools/call,resources/read,prompts/get] [LEVELS=1,4,16] node overhead_bench.mjs ' +
    '/path/to/custody [source root] [calls per level] [--await-outcome]');
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

// One POST (or `method`) of a JSON-RPC body over a keep-alive agent; resolves with the response
// text.
function post(agent, target, headers, body, method = 'POST') {
  return new Promise((resolve, reject) => {
    const req = http.request({ hostname: target.hostname, port: target.port, path: target.pathname,
      method, agent, headers: { ...headers, 'content-type': 'application/json',
        'content-length': Buffer.byteLength(body) } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { text += d; });
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

// The fake Streamable HTTP server (src/mcp/testdata/fake_http_server.mjs); resolves with its URL.
async function startHttpUpstream() {
  const child = spawn(process.execPath, [join(sourceRoot, 'src/mcp/testdata/fake_http_server.mjs')],
    { stdio: ['ignore', 'pipe', 'ignore'] });
  for await (const line of createInterface({ input: child.stdout })) {
    return { child, url: `http://127.0.0.1:${line.trim()}/mcp` };
  }
  throw new Error('fake_http_server.mjs did not print its port');
}

const initBody = (id) => JSON.stringify({ jsonrpc: '2.0', id, method: 'initialize',
  params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'bench', version: '1' } } });
const callBody = (method) => JSON.stringify({ jsonrpc: '2.0', id: 2, method, params: kinds[method].params });

const dir = mkdtempSync(join(tmpdir(), 'custody-mcp-bench-'));
let started;
let httpUpstream;
try {
  const direct = await directClient();
  httpUpstream = await startHttpUpstream();
  started = await startCustody(custody, dir, `${process.env.BENCH_CONFIG ?? ''}
[mcp]
await_outcome = ${awaitOutcome}
[mcp.servers.fake]
command = ${JSON.stringify(process.execPath)}
args = [${JSON.stringify(fake)}]
env = { FAKE_MARKER_FILE = ${JSON.stringify(join(dir, 'marker'))} }
[mcp.servers.remote]
url = ${JSON.stringify(httpUpstream.url)}
`, 'warn');
  const { url, adminToken } = started;
  const { session } = await registerAgent(url, adminToken, 'bench-agent', ['fake/*', 'remote/*']);
  const token = await session();
  // call_tool always (the containment rounds below call the slow tool), plus what METHODS adds;
  // with METHODS unset, the same two policies as before methods could be chosen.
  const permitted = ['tools/call', ...methods.filter((m) => m !== 'tools/call')];
  const policies = permitted.flatMap((m) => {
    const { action } = kinds[m];
    const suffix = m === 'tools/call' ? '' : `-${action}`;
    return [`@id("bench${suffix}") permit(principal, action == Action::"${action}", resource in Server::"fake");`,
      `@id("bench-remote${suffix}") permit(principal, action == Action::"${action}", resource in Server::"remote");`];
  });
  const pub = await request(url, '/v1/policies', { token: adminToken, body: { policies: policies.join('\n') } });
  if (pub.status !== 200) throw new Error(pub.text);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  const accept = { accept: 'application/json, text/event-stream' };

  // An MCP session on `endpoint` (with `auth` headers); returns, per method, a caller that
  // checks the answer (the method's mark and `mark`, if given, must be in it: the gateway puts
  // its receipt in an upstream's error too). The gateway offers resources and prompts only once
  // the server behind has declared them in its initialize answer, which may come after
  // `custody serve` listens: until the session offers what METHODS needs, it is ended and
  // another is opened (5 s at most).
  const mcpSession = async (endpoint, auth, mark) => {
    const target = new URL(endpoint);
    const needed = [...new Set(methods.map((m) => kinds[m].capability))];
    let h;
    for (let attempt = 0; ; attempt++) {
      const init = await post(agent, target, { ...accept, ...auth }, initBody(0));
      if (init.status !== 200) throw new Error(`initialize on ${endpoint}: ${init.status} ${init.text}`);
      h = { ...accept, ...auth, 'mcp-protocol-version': '2025-06-18' };
      if (init.headers['mcp-session-id']) h['mcp-session-id'] = init.headers['mcp-session-id'];
      const offered = JSON.parse(init.text).result?.capabilities ?? {};
      const missing = needed.filter((c) => !offered[c]);
      if (missing.length === 0) break;
      if (attempt === 250) throw new Error(`${endpoint} does not offer ${missing.join(', ')}: ${init.text}`);
      await post(agent, target, h, '', 'DELETE');
      await new Promise((r) => setTimeout(r, 20));
    }
    await post(agent, target, h, JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }));
    await post(agent, target, h, JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }));
    return Object.fromEntries(methods.map((m) => {
      const body = callBody(m);
      const want = kinds[m].mark;
      return [m, async () => {
        const r = await post(agent, target, h, body);
        if (r.status !== 200 || !r.text.includes(want) || (mark && !r.text.includes(mark))) {
          throw new Error(`${endpoint} ${m}: ${r.status} ${r.text}`);
        }
      }];
    }));
  };
  const auth = { authorization: `Bearer ${token}` };
  const viaGatewayStdio = await mcpSession(`${url}/mcp/fake`, auth, '"dev.custody/receipt"');
  const viaGatewayHttp = await mcpSession(`${url}/mcp/remote`, auth, '"dev.custody/receipt"');
  const directHttp = await mcpSession(httpUpstream.url, {});
  const viaStdio = Object.fromEntries(methods.map((m) => [m, async () => {
    const r = await direct.call(m, kinds[m].params);
    if (!r.result) throw new Error(`fake_server.mjs ${m}: ${JSON.stringify(r)}`);
  }]));
  for (let i = 0; i < 200; i++) {  // warm up
    for (const m of methods) {
      await viaGatewayStdio[m](); await viaStdio[m](); await viaGatewayHttp[m](); await directHttp[m]();
    }
  }

  console.log(`calls per level: ${calls}; methods: ${methods.join(', ')}; custody: ${custody}; ` +
    `mcp.await_outcome = ${awaitOutcome}`);
  const width = Math.max(6, ...methods.map((m) => m.length));
  const table = async (title, directFns, gatewayFns) => {
    console.log(`\n${title}`);
    console.log(`${'method'.padEnd(width)} | concurrency | direct p50 / p99 ms | gateway p50 / p99 ms | ` +
      'overhead p50 ms | gateway calls/s');
    for (const c of levels) {
      for (const m of methods) {
        const d = await drive(directFns[m], c);
        const g = await drive(gatewayFns[m], c);
        console.log(`${m.padEnd(width)} | ${String(c).padStart(11)} | ${d.p50.toFixed(3)} / ${d.p99.toFixed(3)} | ` +
          `${g.p50.toFixed(3)} / ${g.p99.toFixed(3)} | ${(g.p50 - d.p50).toFixed(3)} | ${g.rate.toFixed(0)}`);
      }
    }
  };
  await table('Streamable HTTP upstream: node:http -> fake_http_server.mjs, versus node:http -> custody -> HttpUpstream -> fake_http_server.mjs',
    directHttp, viaGatewayHttp);
  await table('stdio upstream: stdio -> fake_server.mjs, versus node:http -> custody -> StdioUpstream -> fake_server.mjs',
    viaStdio, viaGatewayStdio);
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
  httpUpstream?.child.kill();
  rmSync(dir, { recursive: true, force: true });
}
