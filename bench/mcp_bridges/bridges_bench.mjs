// tools/call latency and throughput of one stdio MCP server reached four ways, measured in one
// run, interleaved round by round:
// - direct:       the SDK client over stdio to the server (a pipe; the floor);
// - custody:      `custody serve` with the gateway in front of the server and a permitting
//                 policy, so every call is authorized and its decision durably recorded before
//                 it is forwarded (the default mcp.await_outcome = false);
// - supergateway: stdio -> Streamable HTTP (--outputTransport streamableHttp --stateful: one
//                 session, one server process, as Custody; its stateless mode spawns a server
//                 per request), nothing recorded;
// - mcp-proxy:    stdio -> Streamable HTTP (--server stream), nothing recorded.
// The server is src/mcp/testdata/fake_server.mjs (the one tests/mcp/overhead_bench.mjs uses);
// the client of the three HTTP targets is the official SDK client (Client +
// StreamableHTTPClientTransport, one session per target; concurrency c means c calls in flight
// on that session).
//   node bridges_bench.mjs /path/to/custody [source root] [calls per round] [rounds]
// LEVELS=1,8 picks the concurrencies. BENCH_CONFIG adds top-level Custody config lines.
// CUSTODY_BEFORE=/path/to/other/custody adds a fifth target, `custody-before`: a second Custody
// (its own data directory and server process) measured in the same interleaved rounds, so a
// change is compared with the binary before it on the same machine minute by minute.
// A benchmark, not a test: it prints figures and checks only that each answer is the echo.
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

import { registerAgent, request, startCustody } from '../../tests/mcp/harness.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const [custody, sourceRootArg, callsArg, roundsArg] = process.argv.slice(2);
if (!custody) {
  console.error('usage: node bridges_bench.mjs /path/to/custody [source root] [calls per round] [rounds]');
  process.exit(2);
}
const sourceRoot = resolve(sourceRootArg ?? join(here, '..', '..'));
const calls = Number(callsArg ?? 1000);
const rounds = Number(roundsArg ?? 5);
const levels = (process.env.LEVELS ?? '1,8').split(',').map(Number);
const fake = join(sourceRoot, 'src/mcp/testdata/fake_server.mjs');
const bin = (p) => join(here, 'node_modules', p);

const pct = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

// A port free on 127.0.0.1 now (the bridges take --port and do not report a port 0 choice).
const freePort = () => new Promise((ok, fail) => {
  const s = net.createServer();
  s.once('error', fail);
  s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => ok(port)); });
});

// Resolves once 127.0.0.1:port accepts a connection; fails if `child` exits first.
async function listening(child, port, name) {
  for (let i = 0; i < 1500; i++) {
    if (child.exitCode !== null) throw new Error(`${name} exited (${child.exitCode})`);
    const up = await new Promise((ok) => {
      const c = net.connect(port, '127.0.0.1', () => { c.destroy(); ok(true); });
      c.once('error', () => ok(false));
    });
    if (up) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`${name} did not listen on ${port}`);
}

function startBridge(name, args, port) {
  const child = spawn(process.execPath, args, { stdio: ['pipe', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => { stderr = (stderr + d).slice(-4000); });
  child.on('exit', (code, sig) => {
    if (!stopping) console.error(`${name} exited (${code ?? sig}) during the run:\n${stderr}`);
  });
  return { name, child, port, ready: listening(child, port, name) };
}

// One SDK client session; returns a caller of echo that checks the answer.
async function sdkSession(transport, mark) {
  const client = new Client({ name: 'bridges-bench', version: '1' });
  await client.connect(transport);
  await client.listTools();
  const one = async () => {
    const r = await client.callTool({ name: 'echo', arguments: { text: 'benchmark' } });
    if (mark && !r._meta?.[mark]) throw new Error(`no ${mark} in ${JSON.stringify(r)}`);
    if (r.structuredContent?.arguments?.text !== 'benchmark') throw new Error(JSON.stringify(r));
  };
  return { client, one };
}

// `calls` calls of `one()` with `concurrency` in flight: latencies (ms) and calls/s.
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
  return { lat, rate: calls / ((performance.now() - t0) / 1000) };
}

let stopping = false;
const dir = mkdtempSync(join(tmpdir(), 'custody-bridges-bench-'));
const bridges = [];
let started;
let startedBefore;
const sessions = [];
try {
  const fakeCmd = `${JSON.stringify(process.execPath)} ${JSON.stringify(fake)}`;
  const sgPort = await freePort();
  bridges.push(startBridge('supergateway', [bin('supergateway/dist/index.js'), '--stdio', fakeCmd,
    '--outputTransport', 'streamableHttp', '--stateful', '--port', String(sgPort),
    '--logLevel', 'none'], sgPort));
  const mpPort = await freePort();
  bridges.push(startBridge('mcp-proxy', [bin('mcp-proxy/dist/bin/mcp-proxy.mjs'),
    '--host', '127.0.0.1', '--port', String(mpPort), '--server', 'stream', '--',
    process.execPath, fake], mpPort));

  // One Custody with the gateway in front of the fake server, a permitting policy and an agent
  // session: the MCP URL and the bearer token.
  const custodyTarget = async (binary, sub) => {
    const s = await startCustody(binary, join(dir, sub), `${process.env.BENCH_CONFIG ?? ''}
[mcp.servers.fake]
command = ${JSON.stringify(process.execPath)}
args = [${JSON.stringify(fake)}]
`, 'warn');
    const { url, adminToken } = s;
    const { session } = await registerAgent(url, adminToken, 'bench-agent', ['fake/*']);
    const token = await session();
    const pub = await request(url, '/v1/policies', { token: adminToken, body: {
      policies: '@id("bench") permit(principal, action == Action::"call_tool", resource in Server::"fake");' } });
    if (pub.status !== 200) throw new Error(pub.text);
    return { s, url, token };
  };
  mkdirSync(join(dir, 'custody'));
  const main = await custodyTarget(custody, 'custody');
  started = main.s;
  let before;
  if (process.env.CUSTODY_BEFORE) {
    mkdirSync(join(dir, 'custody-before'));
    before = await custodyTarget(process.env.CUSTODY_BEFORE, 'custody-before');
    startedBefore = before.s;
  }
  const { url, token } = main;
  for (const b of bridges) await b.ready;

  const targets = [
    { name: 'direct', ...(await sdkSession(new StdioClientTransport(
      { command: process.execPath, args: [fake], stderr: 'ignore' }))) },
    { name: 'custody', ...(await sdkSession(new StreamableHTTPClientTransport(new URL(`${url}/mcp/fake`),
      { requestInit: { headers: { authorization: `Bearer ${token}` } } }), 'dev.custody/receipt')) },
    ...(before ? [{ name: 'custody-before', ...(await sdkSession(new StreamableHTTPClientTransport(
      new URL(`${before.url}/mcp/fake`), { requestInit: { headers: { authorization: `Bearer ${before.token}` } } }),
    'dev.custody/receipt')) }] : []),
    { name: 'supergateway', ...(await sdkSession(new StreamableHTTPClientTransport(
      new URL(`http://127.0.0.1:${sgPort}/mcp`)))) },
    { name: 'mcp-proxy', ...(await sdkSession(new StreamableHTTPClientTransport(
      new URL(`http://127.0.0.1:${mpPort}/mcp`)))) },
  ];
  sessions.push(...targets);
  for (let i = 0; i < 300; i++) for (const t of targets) await t.one();  // warm up (JIT, caches)

  // Round by round, each level, each target (the order rotates every round so no target is
  // always first after a pause).
  const results = new Map();  // `${target}@${c}` -> { lat, rates, p50s } over the rounds
  for (let r = 0; r < rounds; r++) {
    for (const c of levels) {
      for (let k = 0; k < targets.length; k++) {
        const t = targets[(k + r) % targets.length];
        const { lat, rate } = await drive(t.one, c);
        const key = `${t.name}@${c}`;
        if (!results.has(key)) results.set(key, { lat: [], rates: [], p50s: [] });
        results.get(key).lat.push(...lat);
        results.get(key).rates.push(rate);
        results.get(key).p50s.push(pct([...lat].sort((a, b) => a - b), 0.5));
      }
    }
    process.stderr.write(`round ${r + 1}/${rounds} done\n`);
  }

  console.log(`custody: ${custody}${process.env.CUSTODY_BEFORE ? `; custody-before: ${process.env.CUSTODY_BEFORE}` : ''}; server: ${fake}; ${rounds} rounds x ${calls} calls per ` +
    `target and concurrency, interleaved; node ${process.version}`);
  console.log('\nlatencies pooled over the rounds; the spread of the rounds\' own p50 and calls/s in ()');
  console.log('target        | conc | p50 ms (rounds) | p90 ms | p99 ms | calls/s median (rounds)');
  const summary = new Map();
  for (const c of levels) {
    for (const t of targets) {
      const { lat, rates, p50s } = results.get(`${t.name}@${c}`);
      lat.sort((a, b) => a - b);
      const s = { p50: pct(lat, 0.5), p90: pct(lat, 0.9), p99: pct(lat, 0.99), rate: median(rates),
        min: Math.min(...rates), max: Math.max(...rates) };
      summary.set(`${t.name}@${c}`, s);
      const p50Spread = `${Math.min(...p50s).toFixed(3)}-${Math.max(...p50s).toFixed(3)}`;
      console.log(`${t.name.padEnd(13)} | ${String(c).padStart(4)} | ${s.p50.toFixed(3)} (${p50Spread}) | ` +
        `${s.p90.toFixed(3)} | ${s.p99.toFixed(3)} | ${s.rate.toFixed(0)} (${s.min.toFixed(0)}-${s.max.toFixed(0)})`);
    }
  }
  console.log('\nratios: latency custody/bridge (<1: custody faster), calls/s custody/bridge (>1: custody faster)');
  console.log('bridge        | conc | p50  | p90  | p99  | calls/s');
  for (const c of levels) {
    const g = summary.get(`custody@${c}`);
    for (const b of ['supergateway', 'mcp-proxy', ...(before ? ['custody-before'] : [])]) {
      const s = summary.get(`${b}@${c}`);
      console.log(`${b.padEnd(13)} | ${String(c).padStart(4)} | ${(g.p50 / s.p50).toFixed(2)} | ` +
        `${(g.p90 / s.p90).toFixed(2)} | ${(g.p99 / s.p99).toFixed(2)} | ${(g.rate / s.rate).toFixed(2)}`);
    }
  }
} finally {
  stopping = true;
  for (const t of sessions) await t.client.close().catch(() => {});
  const exited = (p) => new Promise((r) => (p.exitCode !== null || p.signalCode !== null ? r() : p.on('exit', r)));
  for (const b of bridges) { b.child.kill('SIGTERM'); await exited(b.child); }
  for (const s of [started, startedBefore]) {
    if (s) { s.server.kill('SIGTERM'); await exited(s.server); }
  }
  rmSync(dir, { recursive: true, force: true });
}
