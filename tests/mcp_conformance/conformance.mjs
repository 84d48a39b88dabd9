// The official MCP conformance suite (@modelcontextprotocol/conformance, pinned) runs every server
// scenario it has (--suite all: the active ones and the ones it marks pending) three times, at
// once: directly against its reference everything-server (everything-server.ts, run with tsx),
// and through `custody serve` in front of that same server code, once as a Streamable HTTP
// upstream and once as a stdio upstream (everything-server-stdio.ts).
//   node conformance.mjs /path/to/custody [source root]
// Direct: every scenario must pass. Through Custody it is a ratchet: expected_through_custody.json
// lists, per upstream kind, the scenarios that must pass today. A listed one that fails, or an
// unlisted one that now passes (the list must then grow), fails the test. A table of every
// scenario's results is printed either way.
// The suite's client sends no Authorization header, so it talks to a loopback proxy that adds a
// Custody session token and forwards everything else (Host and Origin included) untouched.
// Needs `npm ci` in tests/mcp_conformance (scripts/test.sh does it).
// Imported (tests/mcp_conformance_2026/conformance2026.mjs), it runs nothing and lends its
// pieces: the reference server, the gateway behind its token proxy, suite runs, the verdicts and
// table, and the test's lifecycle (runTest).
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

import { freePort, registerAgent, request, startCustody } from '../mcp/harness.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const isMain = process.argv[1] !== undefined && existsSync(process.argv[1]) &&
  realpathSync(process.argv[1]) === fileURLToPath(import.meta.url);
const custody = process.argv[2];
if (isMain && !custody) {
  console.error('usage: node conformance.mjs /path/to/custody [source root]');
  process.exit(2);
}

// The conformance suite and tsx installed in `folder` (tests/<name>, by `npm ci` there): the paths
// of the suite's CLI and tsx's loader. A missing one fails the test.
export function installed(folder) {
  const paths = {
    cli: join(folder, 'node_modules/@modelcontextprotocol/conformance/dist/index.js'),
    tsx: join(folder, 'node_modules/tsx/dist/loader.mjs'),
  };
  for (const path of Object.values(paths)) {
    if (!existsSync(path)) {
      console.error(`FAIL: ${path} is missing; run \`npm ci\` in tests/${basename(folder)}`);
      process.exit(1);
    }
  }
  return paths;
}
const { cli: SUITE_CLI, tsx: TSX } = isMain ? installed(here) : {};
// How runSuite runs this folder's suite: every server scenario it has.
const SUITE = { cwd: here, cli: SUITE_CLI, preload: join(here, 'node20/register.mjs'),
  args: ['--suite', 'all'] };
const EXPECTED_FILE = join(here, 'expected_through_custody.json');
const expected = JSON.parse(readFileSync(EXPECTED_FILE, 'utf8'));

// The runs, in table order. `upstream` names the [mcp.servers.NAME] Custody serves it as.
export const RUNS = [
  { kind: 'direct', title: 'direct' },
  { kind: 'http', title: 'via http upstream', upstream: 'everything-http' },
  { kind: 'stdio', title: 'via stdio upstream', upstream: 'everything-stdio' },
];
// One suite run must not hang the test: past this it is killed and reported.
const SUITE_DEADLINE_MS = 120_000;

let dir;
const children = new Set();
let custodyServer;
let stderrOf = () => '';
let upstreamLog = '';
let proxy;

function cleanup() {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  proxy?.close();
  proxy?.closeAllConnections();
  if (dir) rmSync(dir, { recursive: true, force: true });
}

function track(child) {
  children.add(child);
  child.on('exit', () => children.delete(child));
  return child;
}


// The reference everything-server (`server`, this folder's by default) over Streamable HTTP on
// `port`, loaded by tsx in-process (`node --import tsx`, so one pid to stop); resolves once it
// prints that it is running.
export function startEverything(port, { server = join(here, 'everything-server.ts'), tsx = TSX } = {}) {
  const child = track(spawn(process.execPath, ['--import', tsx, server],
    { cwd: dirname(server), env: { ...process.env, PORT: String(port) }, stdio: ['ignore', 'pipe', 'pipe'] }));
  child.stderr.on('data', (d) => { upstreamLog += d; });
  const exited = new Promise((_, reject) => child.on('exit', (code, sig) =>
    reject(new Error(`everything-server exited (${code ?? sig}) before listening\n${upstreamLog}`))));
  const listening = (async () => {
    for await (const line of createInterface({ input: child.stdout })) {
      upstreamLog += line + '\n';
      if (/MCP Conformance Test Server running/.test(line)) return child;
    }
    throw new Error('everything-server closed stdout before listening');
  })();
  return Promise.race([listening, exited]).then((c) => {
    child.stdout.on('data', (d) => { upstreamLog += d; });
    return c;
  });
}

// Loopback proxy to `target` (Custody): every request is forwarded as is, with
// `Authorization: Bearer <token>` added; responses (SSE included) stream back unbuffered.
function startTokenProxy(target, token) {
  const { hostname, port } = new URL(target);
  const server = http.createServer((req, res) => {
    const headers = { ...req.headers, authorization: `Bearer ${token}` };
    delete headers.connection;
    delete headers['keep-alive'];
    const upstream = http.request({ hostname, port, method: req.method, path: req.url, headers },
      (answer) => {
        res.writeHead(answer.statusCode, answer.headers);
        res.flushHeaders();
        answer.pipe(res);
      });
    upstream.on('error', (e) => {
      if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' });
      res.end(`token proxy: ${e.message}`);
    });
    res.on('close', () => upstream.destroy());
    req.pipe(upstream);
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

// One run of the suite (`suite`: its folder, CLI, preload and scenario arguments; by default this
// folder's, every scenario) against `url`; resolves with
// { scenarios: [{ name, checks | undefined }], code, output }. Scenario order is the suite's.
function runSuite(url, outDir, suite = SUITE) {
  const child = track(spawn(process.execPath, ['--import', suite.preload,
    suite.cli, 'server', '--url', url, ...suite.args, '--output-dir', outDir],
  { cwd: suite.cwd, stdio: ['ignore', 'pipe', 'pipe'] }));
  const begun = Date.now();
  let output = '';
  child.stdout.on('data', (d) => { output += d; });
  child.stderr.on('data', (d) => { output += d; });
  const deadline = setTimeout(() => {
    output += `\n[killed after ${SUITE_DEADLINE_MS} ms]\n`;
    child.kill('SIGKILL');
  }, SUITE_DEADLINE_MS);
  return new Promise((resolve) => child.on('exit', (code, sig) => {
    clearTimeout(deadline);
    const names = [...output.matchAll(/^=== Running scenario: (\S+) ===$/gm)].map((m) => m[1]);
    const saved = existsSync(outDir) ? readdirSync(outDir) : [];
    const scenarios = names.map((name) => {
      // The suite saves <out>/server-<scenario>-<ISO time>/checks.json when a scenario returns.
      const d = saved.find((f) => f.startsWith(`server-${name}-`) &&
        /^\d{4}-\d\d-\d\dT[\d-]+Z$/.test(f.slice(`server-${name}-`.length)));
      const checks = d && existsSync(join(outDir, d, 'checks.json'))
        ? JSON.parse(readFileSync(join(outDir, d, 'checks.json'), 'utf8')) : undefined;
      return { name, checks };
    });
    resolve({ scenarios, code: code ?? sig, output, seconds: (Date.now() - begun) / 1000 });
  }));
}

// A scenario passes as the suite judges it: it ran, and no check is a FAILURE.
function verdict(checks) {
  if (!checks) return { pass: false, why: 'the scenario did not complete (no checks.json)' };
  const failed = checks.filter((c) => c.status === 'FAILURE');
  const passed = checks.filter((c) => c.status === 'SUCCESS').length;
  const why = failed.map((c) => `${c.id}: ${c.errorMessage ?? c.description}`).join('; ');
  return { pass: failed.length === 0, passed, failed: failed.length, why };
}

// A verdict as a table cell.
export const mark = (v) => (v.pass ? (v.passed === 0 ? 'pass*' : 'pass') : 'FAIL');

// This test's cell for run `kind` of scenario `name` (verdict `v`): through Custody, against the
// ratchet. printTable's `cell` is given the verdicts of every run too, as a fourth argument.
function ratchetCell(kind, v, name) {
  if (kind === 'direct') return mark(v);
  const listed = expected[kind].includes(name);
  if (v.pass && !listed) return 'pass (NEW: list it)';
  if (!v.pass && listed) return 'FAIL (REGRESSION)';
  return v.pass ? mark(v) : 'fail (expected)';
}

function printTable(names, results, cell = ratchetCell) {
  const rows = [['scenario', ...RUNS.map((r) => r.title)]];
  for (const name of names) {
    rows.push([name, ...RUNS.map(({ kind }) => {
      const v = results[kind].get(name);
      return v ? cell(kind, v, name, results) : 'not run';
    })]);
  }
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  for (const [i, r] of rows.entries()) {
    console.log(r.map((cell, j) => cell.padEnd(widths[j])).join('  ').trimEnd());
    if (i === 0) console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  }
  console.log('* no check failed, and none succeeded either: the scenario reported only ' +
    'INFO/WARNING checks');
}

// `custody serve` (the binary `custodyPath`, in the test's folder) with the upstreams of RUNS: the
// reference server listening on `port` as everything-http, and `node ...stdioArgs` as
// everything-stdio; an agent granted both, everything permitted, behind a token proxy. Resolves
// with the URLs the suite is given for them, by run kind ({ http, stdio }).
export async function startGateway(custodyPath, port, stdioArgs) {
  // The suite's 0.1.16 client never DELETEs its MCP sessions, and every scenario opens at least
  // one: two upstream kinds of 32 scenarios exceed the default 64 live sessions per token.
  const started = await startCustody(custodyPath, dir, `
[mcp]
request_timeout_ms = 20000
max_sessions_per_custody_session = 1000

[mcp.servers.everything-http]
url = ${JSON.stringify(`http://127.0.0.1:${port}/mcp`)}

[mcp.servers.everything-stdio]
command = ${JSON.stringify(process.execPath)}
args = ${JSON.stringify(stdioArgs)}
`);
  custodyServer = track(started.server);
  stderrOf = started.stderr;
  const { url, adminToken } = started;
  const { session } = await registerAgent(url, adminToken, 'mcp-conformance-agent',
    RUNS.slice(1).map((r) => `${r.upstream}/*`));
  // The suite tests the protocol, not policy: everything is permitted.
  const pub = await request(url, '/v1/policies', { token: adminToken, body: {
    policies: '@id("conformance-allows-all") permit(principal, action, resource);' } });
  if (pub.status !== 200) throw new Error(`policy publication: ${pub.status} ${pub.text}`);
  proxy = await startTokenProxy(url, await session());
  const proxyUrl = `http://127.0.0.1:${proxy.address().port}`;
  return Object.fromEntries(RUNS.slice(1).map(({ kind, upstream }) => [kind, `${proxyUrl}/mcp/${upstream}`]));
}

// The suite (`suite`, as runSuite takes it) three times at once, one per run of RUNS against
// urls[kind]; prints how long they took and the table (`cell` as printTable takes it). Resolves
// with { runs, names (the direct run's scenarios), results (per kind, name -> verdict), problems
// (the direct run ran nothing, a run missed scenarios) }.
export async function runEverywhere(urls, suite = SUITE, cell = ratchetCell) {
  const started_at = Date.now();
  const runs = Object.fromEntries(await Promise.all(RUNS.map(async ({ kind }) =>
    [kind, await runSuite(urls[kind], join(dir, 'results', kind), suite)])));
  const seconds = ((Date.now() - started_at) / 1000).toFixed(1);

  const names = runs.direct.scenarios.map((s) => s.name);
  const results = Object.fromEntries(RUNS.map(({ kind }) =>
    [kind, new Map(runs[kind].scenarios.map((s) => [s.name, verdict(s.checks)]))]));
  console.log(`conformance suite: ${names.length} server scenarios, three runs at once in ${seconds} s ` +
    `(${RUNS.map(({ kind, title }) => `${title} ${runs[kind].seconds.toFixed(1)} s`).join(', ')})\n`);
  printTable(names, results, cell);

  const problems = [];
  if (names.length === 0) problems.push(`the direct run ran no scenario:\n${runs.direct.output}`);
  for (const { kind, title } of RUNS) {
    const ran = runs[kind].scenarios.map((s) => s.name);
    const missing = names.filter((n) => !ran.includes(n));
    if (missing.length) problems.push(`${title}: scenarios not run: ${missing.join(', ')}`);
  }
  return { runs, names, results, problems };
}

async function main() {
  for (const { kind } of RUNS.slice(1)) {
    if (!Array.isArray(expected[kind])) throw new Error(`${EXPECTED_FILE}: no "${kind}" list`);
  }
  const port = await freePort();
  await startEverything(port);
  const through = await startGateway(custody, port, ['--import', TSX, join(here, 'everything-server-stdio.ts')]);
  const { runs, names, results, problems } = await runEverywhere(
    { direct: `http://localhost:${port}/mcp`, ...through });
  const directFailures = names.filter((n) => !results.direct.get(n).pass);
  for (const n of directFailures) {
    problems.push(`direct: ${n} fails against the reference server: ${results.direct.get(n).why}`);
  }
  if (directFailures.length === 0 && runs.direct.code !== 0) {
    problems.push(`direct: the suite exited ${runs.direct.code}:\n${runs.direct.output.slice(-4096)}`);
  }

  console.log('\nThrough Custody, failures (the first failing checks of each):');
  for (const { kind, title } of RUNS.slice(1)) {
    for (const n of names) {
      const v = results[kind].get(n);
      if (v && !v.pass) console.log(`  ${title} ${n}: ${v.why.slice(0, 300)}`);
    }
    const regressions = expected[kind].filter((n) => !results[kind].get(n)?.pass);
    const stale = expected[kind].filter((n) => !names.includes(n));
    const newPasses = names.filter((n) => results[kind].get(n)?.pass && !expected[kind].includes(n));
    for (const n of stale) problems.push(`${title}: ${n} is listed but is not a scenario of the suite`);
    for (const n of regressions) {
      if (!stale.includes(n)) problems.push(`${title}: ${n} is listed as passing and now fails`);
    }
    if (newPasses.length) {
      problems.push(`${title}: now passing, add to "${kind}" in ${EXPECTED_FILE}: ` +
        JSON.stringify(newPasses));
    }
  }
  if (problems.length) throw new Error(problems.join('\n'));
  console.log(`\nok all ${names.length} scenarios pass directly; through Custody ` +
    RUNS.slice(1).map(({ kind, title }) => `${expected[kind].length} ${title}`).join(' and ') +
    ' pass, as listed');
}

// The test's lifecycle: `main` (its scratch folder made first), then `custody serve` stopped,
// which must exit 0 with no sanitizer report, and `passed` printed; on any failure, what went
// wrong with the gateway's and the reference server's last output, and exit 1. Either way its
// processes are killed and its folder removed.
export async function runTest(main, passed) {
  try {
    dir = mkdtempSync(join(tmpdir(), 'custody-mcp-conformance-'));
    await main();
    const gone = new Promise((r) => (custodyServer.exitCode !== null ? r() : custodyServer.on('exit', r)));
    custodyServer.kill('SIGTERM');
    await gone;
    if (custodyServer.exitCode !== 0) {
      throw new Error(`custody serve exited with ${custodyServer.exitCode ?? custodyServer.signalCode}`);
    }
    if (/Sanitizer/.test(stderrOf())) throw new Error('custody serve reported a sanitizer error');
    console.log(passed);
    cleanup();
  } catch (e) {
    console.error('FAIL:', e?.stack ?? e);
    const stderr = stderrOf();
    if (stderr) console.error('--- custody serve stderr (last 6 KiB) ---\n' + stderr.slice(-6144));
    if (upstreamLog) console.error('--- everything-server output (last 2 KiB) ---\n' + upstreamLog.slice(-2048));
    cleanup();
    process.exit(1);
  }
}

if (isMain) await runTest(main, 'PASS mcp conformance scenarios');
