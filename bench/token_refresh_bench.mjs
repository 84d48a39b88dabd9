// Refresh-token grants per second through HTTP against a real `custody serve` (a fresh data
// directory, the real ledger). Refresh tokens rotate and are single-use (a reused one revokes
// its family), so a static wrk body cannot do this: each chain sends the refresh token the
// previous answer returned.
//
// Setup, as tests/oauth/authorization_code_e2e.mjs: oidc-provider as the company IdP
// (tests/oauth/idp.mjs), `custody serve --quickstart` with [login] pointing at it and one
// pre-registered public client mapped to an agent; then one authorization code flow per family
// (tests/oauth/browser.mjs follows the IdP's login form and Custody's consent page), each a
// different person, so each family has its own refresh token. Then, for each concurrency C, C
// chains run in parallel for D seconds on keep-alive connections (node:http, one socket per
// chain); the families carry over from one run to the next.
//
// Usage: node bench/token_refresh_bench.mjs BIN [duration_s=10] [concurrencies="1 32"]
//                                          [server_threads=2]
//   BIN: a custody binary, e.g. build/release/src/cli/custody
// Needs tests/oauth/node_modules (`npm ci` in tests/oauth). Figures go in docs/PERFORMANCE.md.
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

import { Browser } from '../tests/oauth/browser.mjs';
import { claims, freePort } from '../tests/oauth/harness.mjs';
import { startIdp } from '../tests/oauth/idp.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const [bin, durationArg = '10', concArg = '1 32', threadsArg = '2'] = process.argv.slice(2);
if (!bin) {
  console.error('usage: node bench/token_refresh_bench.mjs BIN [duration_s] [concurrencies] [server_threads]');
  process.exit(2);
}
const DURATION_MS = Number(durationArg) * 1000;
const CONCS = concArg.trim().split(/\s+/).map(Number);
const FAMILIES = Math.max(...CONCS);

const CLIENT_ID = 'bench-client';
const AGENT = 'bench-assistant';
const dir = mkdtempSync(join(tmpdir(), 'custody-refresh-bench-'));
const idpSecret = randomBytes(24).toString('base64url');
const idpPort = await freePort();
const port = await freePort();
const cbPort = await freePort();  // nothing listens: the browser stops at the redirect
const URL_ = `http://127.0.0.1:${port}`;
const RESOURCE = `${URL_}/mcp`;
const REDIRECT = `http://127.0.0.1:${cbPort}/callback`;
let server;
let idp;
let stderr = '';

function fail(msg) {
  console.error(`token_refresh_bench: ${msg}`);
  if (stderr) console.error('--- custody stderr (tail) ---\n' + stderr.slice(-2000));
  cleanup();
  process.exit(1);
}
function cleanup() {
  if (server && server.exitCode === null) server.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
}

async function startCustody() {
  const config = join(dir, 'custody.toml');
  writeFileSync(config, `
[login]
issuer = "http://127.0.0.1:${idpPort}"
client_id = "custody"

[oauth.clients."${CLIENT_ID}"]
redirect_uris = ["${REDIRECT}"]
agent = "${AGENT}"
name = "Bench Client"

[mcp.servers.fake]
command = ${JSON.stringify(process.execPath)}
args = [${JSON.stringify(join(here, '..', 'src/mcp/testdata/fake_server.mjs'))}]
`);
  server = spawn(bin, ['serve', '--quickstart', '--config', config, '--listen', `127.0.0.1:${port}`,
    '--data-dir', join(dir, 'data'), '--threads', threadsArg, '--log-level', 'warn'],
  { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, CUSTODY_LOGIN_CLIENT_SECRET: idpSecret } });
  server.stderr.on('data', (d) => { stderr += d; });
  const exited = new Promise((_, reject) => server.on('exit', (code, sig) =>
    reject(new Error(`custody serve exited (${code ?? sig})`))));
  const listening = (async () => {
    let adminToken;
    for await (const line of createInterface({ input: server.stdout })) {
      if (!line.startsWith('{')) continue;
      const ev = JSON.parse(line);
      if (ev.event === 'admin_token') adminToken = ev.token;
      if (ev.event === 'listening') return adminToken;
    }
    throw new Error('custody serve closed stdout before listening');
  })();
  return Promise.race([listening, exited]);
}

// One POST on a keep-alive agent; resolves to {status, body}.
function post(agent, path, form, headers = {}) {
  const body = new URLSearchParams(form).toString();
  return new Promise((resolve, reject) => {
    const req = request(`${URL_}${path}`, { method: 'POST', agent, headers: { ...headers,
      'content-type': 'application/x-www-form-urlencoded', 'content-length': Buffer.byteLength(body) } },
    (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, body: Buffer.concat(chunks).toString() }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

async function json(path, token, body) {
  const r = await fetch(URL_ + path, { method: body ? 'POST' : 'GET', headers: {
    authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
  body: body ? JSON.stringify(body) : undefined });
  return { status: r.status, text: await r.text() };
}

// One authorization code flow (a new person each time): returns the family's refresh token.
async function signIn(agent, person) {
  const verifier = randomBytes(32).toString('base64url');
  const u = new URL(`${URL_}/oauth2/authorize`);
  for (const [k, v] of Object.entries({ response_type: 'code', client_id: CLIENT_ID,
    redirect_uri: REDIRECT, state: `s-${person}`, resource: RESOURCE, scope: 'fake/echo',
    code_challenge: createHash('sha256').update(verifier).digest('base64url'),
    code_challenge_method: 'S256' })) u.searchParams.set(k, v);
  const done = await new Browser().navigate(u.href, REDIRECT, { user: person });
  if (!done.redirect) fail(`sign-in of ${person} did not come back: ${done.page?.status}`);
  const code = new URL(done.redirect).searchParams.get('code');
  if (!code) fail(`sign-in of ${person}: ${done.redirect}`);
  const r = await post(agent, '/oauth2/token', { grant_type: 'authorization_code', client_id: CLIENT_ID,
    code, redirect_uri: REDIRECT, code_verifier: verifier, resource: RESOURCE });
  if (r.status !== 200) fail(`code redemption: ${r.status} ${r.body.slice(0, 200)}`);
  const t = JSON.parse(r.body);
  if (claims(t.access_token).sub !== person) fail('the access token names someone else');
  return t.refresh_token;
}

const pct = (sorted, p) => sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] : NaN;

// C chains for DURATION_MS; each request presents the refresh token the last answer returned.
// A non-200 is counted; an invalid_grant ends that chain (its family is gone), anything else
// (e.g. 503 temporarily_unavailable: not rotated) retries with the same token.
async function run(tokens, c) {
  const agent = new Agent({ keepAlive: true, maxSockets: c });
  const lat = [];
  const perSecond = [];  // answers per elapsed second: does a growing family slow the chain?
  let non200 = 0;
  const errors = new Map();
  let deadChains = 0;
  const la = () => loadavg().map((x) => x.toFixed(2)).join(' ');
  const loadBefore = la();
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const end = t0 + DURATION_MS;
  await Promise.all(Array.from({ length: c }, async (_, i) => {
    while (performance.now() < end) {
      const s = performance.now();
      const r = await post(agent, '/oauth2/token',
        { grant_type: 'refresh_token', client_id: CLIENT_ID, refresh_token: tokens[i] });
      const now = performance.now();
      lat.push(now - s);
      const sec = Math.min(Math.floor((now - t0) / 1000), Math.ceil(DURATION_MS / 1000) - 1);
      perSecond[sec] = (perSecond[sec] ?? 0) + 1;
      if (r.status === 200) {
        tokens[i] = JSON.parse(r.body).refresh_token;
        continue;
      }
      non200++;
      let error = `${r.status}`;
      try { error += ` ${JSON.parse(r.body).error}`; } catch { /* not JSON */ }
      errors.set(error, (errors.get(error) ?? 0) + 1);
      if (error.endsWith('invalid_grant')) { deadChains++; return; }
    }
  }));
  const secs = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  agent.destroy();
  lat.sort((a, b) => a - b);
  console.log(`== refresh grants, ${c} chains (${c} keep-alive connections)`);
  console.log(`  requests ${lat.length} in ${secs.toFixed(2)}s: ${(lat.length / secs).toFixed(1)} req/s`);
  console.log(`  latency p50 ${pct(lat, 0.5).toFixed(2)}ms p99 ${pct(lat, 0.99).toFixed(2)}ms max ${lat.at(-1)?.toFixed(2)}ms`);
  console.log(`  non-200: ${non200}${errors.size ? ' ' + JSON.stringify(Object.fromEntries(errors)) : ''}` +
    `${deadChains ? `, ${deadChains} chains ended` : ''}`);
  console.log(`  answers per second of the run: ${Array.from(perSecond, (n) => n ?? 0).join(' ')}`);
  console.log(`  load average before: ${loadBefore}, after: ${la()}`);
  console.log(`  bench client CPU: ${((cpu.user + cpu.system) / 1e4 / secs).toFixed(0)}% of one core`);
}

try {
  idp = await startIdp({ port: idpPort, clientSecret: idpSecret,
    custodyCallbacks: [`${URL_}/oauth2/login/callback`] });
  let admin;
  try { admin = await startCustody(); } catch (e) { fail(e.message); }
  let r = await json('/v1/agents', admin, { name: AGENT, description: 'refresh benchmark',
    environment: 'dev', business_owner: 'bench', technical_owner: 'bench',
    revocation_contact: 'bench@example.com', grants: ['fake/*'], client_secret: true });
  if (r.status !== 201) fail(`agent registration: ${r.status} ${r.text.slice(0, 200)}`);

  const setup = new Agent({ keepAlive: true, maxSockets: 1 });
  const t0 = performance.now();
  const tokens = [];
  for (let i = 0; i < FAMILIES; i++) tokens.push(await signIn(setup, `bench-person-${i}`));
  setup.destroy();
  console.log(`server: ${URL_}, ${threadsArg} worker threads; ${FAMILIES} sign-ins in ` +
    `${((performance.now() - t0) / 1000).toFixed(1)}s; ${DURATION_MS / 1000}s per run`);
  for (const c of CONCS) await run(tokens, c);

  r = await fetch(`${URL_}/v1/ledger/checkpoint`);
  console.log(`ledger size after the runs: ${(await r.text()).split('\n')[1]} events`);
  server.kill('SIGTERM');
  await new Promise((res) => (server.exitCode !== null ? res() : server.on('exit', res)));
  await idp.close();
  cleanup();
  process.exit(0);
} catch (e) {
  fail(e.stack ?? String(e));
}
