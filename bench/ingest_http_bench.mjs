// OTLP ingest over loopback HTTP against a real `custody serve`, and what it adds to a gateway
// call beside it (#22; docs/PERFORMANCE.md, "OTLP ingest over HTTP, and the gateway beside it").
//
// - Ingest: CLIENTS concurrent clients each POST /v1/traces a protobuf body of 512 spans
//   (written by `custody_ingest_bench --write-body`, the official classes' encoding) over a
//   keep-alive connection with an ingest-role token, and send the next once answered: the answer
//   comes once every span of the request is durable in the ledger (group commit, fsync). Spans/s
//   counts the spans of requests answered 200 with no partial-success rejection. The clients run
//   in a worker thread, so the gateway caller's event loop is not theirs.
// - Gateway: tools/call of the echo tool through /mcp/remote (Streamable HTTP upstream:
//   src/mcp/testdata/fake_http_server.mjs) and directly to that upstream, alternating call by
//   call, one at a time (concurrency 1, node:http keep-alive, as tests/mcp/overhead_bench.mjs).
// - Phases of SECONDS each, interleaved: ingest alone; then ROUNDS times a quiet phase (gateway
//   calls, no ingest) and a loaded phase (gateway calls while ingest runs at full speed). The
//   p50s of the quiet and the loaded calls are over all rounds. Per phase, from /metrics: the
//   ledger's batches (events per batch, ms per commit: what a decision waits for) and the
//   server's time per POST /v1/traces.
//
//   ./build/release/bench/custody_ingest_bench --batch 512 --write-body /tmp/body.pb
//   node bench/ingest_http_bench.mjs ./build/release/src/cli/custody /tmp/body.pb \
//     [clients=4] [rounds=5] [seconds=5]
// A benchmark, not a test: it prints figures and checks nothing about time.
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';

// --- The ingest clients (worker thread).
if (!isMainThread) {
  const { url, token, bodyPath, clients, spansPerBody } = workerData;
  const body = readFileSync(bodyPath);
  const target = new URL(url + '/v1/traces');
  const agent = new http.Agent({ keepAlive: true, maxSockets: clients });
  let stop = false;
  let spans = 0;
  let requests = 0;
  let failed = 0;
  let firstFailure = '';
  parentPort.on('message', (m) => { if (m === 'stop') stop = true; });
  const one = () => new Promise((resolve) => {
    const req = http.request({ hostname: target.hostname, port: target.port, path: target.pathname,
      method: 'POST', agent, headers: { 'content-type': 'application/x-protobuf',
        'content-length': body.length, authorization: `Bearer ${token}` } }, (res) => {
      const chunks = [];
      res.on('data', (d) => chunks.push(d));
      res.on('end', () => {
        const answer = Buffer.concat(chunks);
        // All accepted: 200 with an empty ExportTraceServiceResponse (no partial_success).
        if (res.statusCode === 200 && answer.length === 0) {
          spans += spansPerBody;
          requests++;
        } else {
          failed++;
          if (!firstFailure) firstFailure = `${res.statusCode} ${answer.toString('latin1').slice(0, 200)}`;
        }
        resolve();
      });
    });
    req.on('error', (e) => { failed++; firstFailure ||= String(e); resolve(); });
    req.end(body);
  });
  const t0 = performance.now();
  await Promise.all(Array.from({ length: clients }, async () => {
    while (!stop) await one();
  }));
  parentPort.postMessage({ spans, requests, failed, firstFailure,
    secs: (performance.now() - t0) / 1000 });
  agent.destroy();
} else {
  await main();
}

async function main() {
  const here = dirname(fileURLToPath(import.meta.url));
  const sourceRoot = join(here, '..');
  const { registerAgent, request, startCustody } = await import(join(sourceRoot, 'tests/mcp/harness.mjs'));
  const [custody, bodyPath, clientsArg, roundsArg, secondsArg] = process.argv.slice(2);
  if (!custody || !bodyPath) {
    console.error('usage: node bench/ingest_http_bench.mjs <custody> <body.pb> [clients=4] [rounds=5] [seconds=5]');
    process.exit(2);
  }
  const clients = Number(clientsArg ?? 4);
  const rounds = Number(roundsArg ?? 5);
  const seconds = Number(secondsArg ?? 5);
  const spansPerBody = 512;
  const pct = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

  const dir = mkdtempSync(join(tmpdir(), 'custody-ingest-http-bench-'));
  let started;
  let upstream;
  try {
    upstream = spawn(process.execPath, [join(sourceRoot, 'src/mcp/testdata/fake_http_server.mjs')],
      { stdio: ['ignore', 'pipe', 'ignore'] });
    let upstreamUrl;
    for await (const line of createInterface({ input: upstream.stdout })) {
      upstreamUrl = `http://127.0.0.1:${line.trim()}/mcp`;
      break;
    }
    started = await startCustody(custody, dir, `
[ingest]
spans_per_second = 100000000
burst_spans = 1000000000
[mcp.servers.remote]
url = ${JSON.stringify(upstreamUrl)}
`, 'warn');
    const { url, adminToken } = started;
    const ingestToken = JSON.parse(execFileSync(custody, ['admin', 'token', 'create', '--role',
      'ingest', '--label', 'bench', '--data-dir', join(dir, 'data')], { encoding: 'utf8' })
      .trim().split('\n').pop()).token;
    const { session } = await registerAgent(url, adminToken, 'bench-agent', ['remote/*']);
    const token = await session();
    const pub = await request(url, '/v1/policies', { token: adminToken, body: {
      policies: '@id("bench") permit(principal, action == Action::"call_tool", resource in Server::"remote");' } });
    if (pub.status !== 200) throw new Error(pub.text);

    // MCP sessions on the gateway and on the upstream directly; a caller of tools/call each.
    const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
    const post = (target, headers, body) => new Promise((resolve, reject) => {
      const req = http.request({ hostname: target.hostname, port: target.port, path: target.pathname,
        method: 'POST', agent, headers: { ...headers, 'content-type': 'application/json',
          'content-length': Buffer.byteLength(body) } }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d) => { text += d; });
        res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, text }));
      });
      req.on('error', reject);
      req.end(body);
    });
    const mcpCaller = async (endpoint, auth, mark) => {
      const target = new URL(endpoint);
      const h = { accept: 'application/json, text/event-stream', ...auth };
      const init = await post(target, h, JSON.stringify({ jsonrpc: '2.0', id: 0, method: 'initialize',
        params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'bench', version: '1' } } }));
      if (init.status !== 200) throw new Error(`initialize on ${endpoint}: ${init.status} ${init.text}`);
      h['mcp-protocol-version'] = '2025-06-18';
      if (init.headers['mcp-session-id']) h['mcp-session-id'] = init.headers['mcp-session-id'];
      await post(target, h, JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }));
      const body = JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/call',
        params: { name: 'echo', arguments: { text: 'benchmark' } } });
      return async () => {
        const r = await post(target, h, body);
        if (r.status !== 200 || !r.text.includes('benchmark') || (mark && !r.text.includes(mark))) {
          throw new Error(`${endpoint} tools/call: ${r.status} ${r.text}`);
        }
      };
    };
    const viaGateway = await mcpCaller(`${url}/mcp/remote`, { authorization: `Bearer ${token}` },
      '"dev.custody/receipt"');
    const direct = await mcpCaller(upstreamUrl, {});

    const startIngest = () => {
      const w = new Worker(fileURLToPath(import.meta.url), { workerData: { url, token: ingestToken,
        bodyPath, clients, spansPerBody } });
      const done = new Promise((resolve, reject) => { w.once('message', resolve); w.once('error', reject); });
      return { stop: async () => { w.postMessage('stop'); const r = await done; await w.terminate(); return r; } };
    };
    // Gateway and direct calls, alternating, for `ms`; latencies into the arrays.
    const callFor = async (ms, gw, dr) => {
      const end = performance.now() + ms;
      while (performance.now() < end) {
        let s = performance.now();
        await viaGateway();
        gw.push(performance.now() - s);
        s = performance.now();
        await direct();
        dr.push(performance.now() - s);
      }
    };
    const ingestLine = (label, r) => `${label}: ${r.spans} spans in ${r.secs.toFixed(2)} s = ` +
      `${(r.spans / r.secs).toFixed(0)} spans/s durable (${r.requests} requests of ${spansPerBody}, ` +
      `${r.requests ? (r.secs * 1000 * clients / r.requests).toFixed(1) : '-'} ms per request` +
      `${r.failed ? `, ${r.failed} failed: ${r.firstFailure}` : ''})`;

    // Warm up both paths and the ingest route.
    for (let i = 0; i < 200; i++) { await viaGateway(); await direct(); }
    let warm = startIngest();
    await sleep(2000);
    await warm.stop();

    console.log(`custody: ${custody}; ingest clients: ${clients}; ${spansPerBody} spans per request; ` +
      `${rounds} rounds of ${seconds} s quiet + ${seconds} s loaded`);
    const alone = startIngest();
    await sleep(seconds * 1000);
    console.log(ingestLine('ingest alone', await alone.stop()));

    // The ledger's batches per phase (from /metrics): how many events a gateway decision's
    // commit carried, and how long a commit took, with and without ingest beside it.
    const ledgerTotals = async () => {
      const m = await request(url, '/metrics', { method: 'GET', token: adminToken });
      const num = (name) => Number((m.text.match(new RegExp(`^${name} (\\S+)$`, 'm')) ?? [])[1] ?? 0);
      const traces = (k) => Number((m.text.match(new RegExp(
        `^custody_http_request_duration_seconds_${k}\\{method="POST",route="/v1/traces"\\} (\\S+)$`, 'm')) ?? [])[1] ?? 0);
      return { batches: num('custody_ledger_batch_size_count'), events: num('custody_ledger_batch_size_sum'),
        commitSecs: num('custody_ledger_commit_duration_seconds_sum'), traces: traces('count'),
        tracesSecs: traces('sum') };
    };
    const ledgerPhase = { quiet: { batches: 0, events: 0, commitSecs: 0, traces: 0, tracesSecs: 0 },
      loaded: { batches: 0, events: 0, commitSecs: 0, traces: 0, tracesSecs: 0 } };
    const addLedger = (into, a, b) => { for (const k of Object.keys(into)) into[k] += b[k] - a[k]; };
    const quiet = { gw: [], dr: [] };
    const loaded = { gw: [], dr: [] };
    const besides = [];
    for (let r = 0; r < rounds; r++) {
      let l0 = await ledgerTotals();
      await callFor(seconds * 1000, quiet.gw, quiet.dr);
      addLedger(ledgerPhase.quiet, l0, await ledgerTotals());
      const ing = startIngest();
      await sleep(300);  // the clients connect and the first requests are in flight
      l0 = await ledgerTotals();
      await callFor(seconds * 1000, loaded.gw, loaded.dr);
      addLedger(ledgerPhase.loaded, l0, await ledgerTotals());
      const got = await ing.stop();
      besides.push(got);
      console.log(ingestLine(`round ${r + 1}, ingest beside the gateway`, got));
    }
    const sum = (k) => besides.reduce((a, b) => a + b[k], 0);
    console.log(ingestLine('ingest beside the gateway, all rounds',
      { spans: sum('spans'), secs: sum('secs'), requests: sum('requests'), failed: sum('failed'),
        firstFailure: besides.find((b) => b.firstFailure)?.firstFailure ?? '' }));
    const stats = (a) => {
      a.sort((x, y) => x - y);
      return { n: a.length, p50: pct(a, 0.5), p99: pct(a, 0.99) };
    };
    console.log('\ntools/call, concurrency 1 | calls | gateway p50 / p99 ms | direct p50 / p99 ms | overhead p50 ms');
    for (const [label, s] of [['no ingest', quiet], ['ingest at full speed', loaded]]) {
      const g = stats(s.gw);
      const d = stats(s.dr);
      console.log(`${label.padEnd(25)} | ${String(g.n).padStart(5)} | ${g.p50.toFixed(3)} / ${g.p99.toFixed(3)} | ` +
        `${d.p50.toFixed(3)} / ${d.p99.toFixed(3)} | ${(g.p50 - d.p50).toFixed(3)}`);
    }
    for (const [label, l] of [['no ingest', ledgerPhase.quiet], ['ingest at full speed', ledgerPhase.loaded]]) {
      console.log(`ledger, ${label}: ${l.batches} batches, ${(l.events / Math.max(1, l.batches)).toFixed(1)} ` +
        `events per batch, ${(l.commitSecs * 1000 / Math.max(1, l.batches)).toFixed(3)} ms per commit; ` +
        `${l.traces} POST /v1/traces answered, ${(l.tracesSecs * 1000 / Math.max(1, l.traces)).toFixed(1)} ms ` +
        'each in the server');
    }
    const added = pct(loaded.gw, 0.5) - pct(quiet.gw, 0.5);
    console.log(`p50 added to a gateway call by ingest beside it: ${added.toFixed(3)} ms`);
    agent.destroy();
  } finally {
    if (started && started.server.exitCode === null) started.server.kill('SIGTERM');
    if (started) await new Promise((r) => (started.server.exitCode !== null ? r() : started.server.on('exit', r)));
    upstream?.kill();
    rmSync(dir, { recursive: true, force: true });
  }
}
