// Shared by gateway_e2e.mjs and overhead_bench.mjs: run `custody serve`, talk HTTP to it, and
// get delegated session tokens for an agent (client secret + initiator assertion, RFC 8693).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createServer } from 'node:net';
import { createInterface } from 'node:readline';

const here = dirname(fileURLToPath(import.meta.url));

// The official MCP SDK's client pieces the tests use. Missing packages fail the test (never a
// skip): scripts/test.sh runs `npm ci` here.
export async function loadSdk() {
  try {
    const { Client } = await import('@modelcontextprotocol/sdk/client/index.js');
    const { StreamableHTTPClientTransport } = await import('@modelcontextprotocol/sdk/client/streamableHttp.js');
    const { ToolListChangedNotificationSchema } = await import('@modelcontextprotocol/sdk/types.js');
    return { Client, StreamableHTTPClientTransport, ToolListChangedNotificationSchema };
  } catch (e) {
    console.error('FAIL: cannot load @modelcontextprotocol/sdk; run `npm ci` in tests/mcp (' + e.message + ')');
    process.exit(1);
  }
}

// The 2026-07-28 client: the official SDK's 2.x line (Node >= 20, as scripts install). Missing
// is a failure, never a skip.
export async function loadModernSdk() {
  try {
    const { Client, StreamableHTTPClientTransport } = await import('@modelcontextprotocol/client');
    return { Client, StreamableHTTPClientTransport };
  } catch (e) {
    console.error('FAIL: cannot load @modelcontextprotocol/client; run `npm ci` in tests/mcp (' + e.message + ')');
    process.exit(1);
  }
}

// The path of a reference server's entry point under tests/mcp/node_modules, which must exist.
export function referenceServer(pkg) {
  const path = join(here, 'node_modules', pkg, 'dist/index.js');
  if (!existsSync(path)) {
    console.error(`FAIL: ${path} is missing; run \`npm ci\` in tests/mcp`);
    process.exit(1);
  }
  return path;
}

// A loopback port that was free a moment ago (for servers that take their port as a setting).
export const freePort = () => new Promise((resolve, reject) => {
  const s = createServer();
  s.on('error', reject);
  s.listen(0, '127.0.0.1', () => {
    const { port } = s.address();
    s.close(() => resolve(port));
  });
});

// identity.issuer, set by startCustody (unset, it would be the URL of each run's port).
export const ISSUER = 'https://custody.local';
export const AUDIENCE = ISSUER + '/mcp';

// Starts `custody serve --quickstart` with `configText` on 127.0.0.1:0 in `dir`. Resolves with
// { server, url, adminToken, stderr() } once it prints its "listening" line.
export async function startCustody(custody, dir, configText, logLevel = 'info') {
  const config = join(dir, 'custody.toml');
  writeFileSync(config, configText);
  const server = spawn(custody, ['serve', '--quickstart', '--config', config, '--listen',
    '127.0.0.1:0', '--data-dir', join(dir, 'data'), '--log-level', logLevel,
    '--set', `identity.issuer=${ISSUER}`],
  { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  server.stderr.on('data', (d) => { stderr += d; });
  const exited = new Promise((_, reject) => server.on('exit', (code, sig) =>
    reject(new Error(`custody serve exited (${code ?? sig}) before listening\n${stderr}`))));
  const listening = (async () => {
    let adminToken;
    for await (const line of createInterface({ input: server.stdout })) {
      if (!line.startsWith('{')) continue;
      const ev = JSON.parse(line);
      if (ev.event === 'admin_token') adminToken = ev.token;
      if (ev.event === 'listening') {
        return { server, url: ev.url.replace(/\/$/, ''), adminToken, stderr: () => stderr };
      }
    }
    throw new Error('custody serve closed stdout before listening');
  })();
  return Promise.race([listening, exited]);
}

// One HTTP request; the body is JSON unless `form`. Resolves with { status, json, text, headers }.
export async function request(url, path, { method = 'POST', body, token, form, headers = {} } = {}) {
  const h = { ...headers };
  if (token) h.authorization = `Bearer ${token}`;
  let payload;
  if (form) {
    h['content-type'] = 'application/x-www-form-urlencoded';
    payload = new URLSearchParams(body).toString();
  } else if (body !== undefined) {
    h['content-type'] = 'application/json';
    payload = typeof body === 'string' ? body : JSON.stringify(body);
  }
  const r = await fetch(url + path, { method, headers: h, body: payload });
  const text = await r.text();
  let json;
  try { json = JSON.parse(text); } catch { json = undefined; }
  return { status: r.status, json, text, headers: r.headers };
}

export const claims = (jwt) => JSON.parse(Buffer.from(jwt.split('.')[1], 'base64url').toString());

// Registers an agent (client secret, may assert its initiator) and returns session(audience),
// which mints a new delegated session token for a "nightly-workflow" initiator, and
// delegate(parentToken, audience), which mints a child session of another agent's.
export async function registerAgent(url, adminToken, name, grants) {
  const reg = await request(url, '/v1/agents', { token: adminToken, body: {
    name, environment: 'dev', business_owner: 'ops', technical_owner: 'platform',
    revocation_contact: 'sec@example.com', grants, permissions: ['assert_initiator'],
    client_secret: true } });
  if (reg.status !== 201) throw new Error(`agent registration: ${reg.status} ${reg.text}`);
  const secret = reg.json.client_secret;
  const oauth = async (params) => {
    const r = await request(url, '/oauth2/token', { form: true,
      body: { client_id: name, client_secret: secret, ...params } });
    if (r.status !== 200) throw new Error(`token endpoint: ${r.status} ${r.text}`);
    return r.json.access_token;
  };
  const session = async (audience = AUDIENCE) => oauth({
    grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
    subject_token: JSON.stringify({ sub: 'nightly-workflow', iss: 'ci' }),
    subject_token_type: 'urn:custody:params:oauth:token-type:initiator-assertion',
    actor_token: await oauth({ grant_type: 'client_credentials', audience: ISSUER }),
    actor_token_type: 'urn:ietf:params:oauth:token-type:jwt',
    audience, objective: 'mcp test' });
  // A child session of `parentToken` (another agent's session token) for this agent: the
  // initiator stays the parent's, and this agent's instance becomes the outermost actor.
  const delegate = async (parentToken, audience = AUDIENCE) => oauth({
    grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
    subject_token: parentToken,
    subject_token_type: 'urn:ietf:params:oauth:token-type:access_token',
    actor_token: await oauth({ grant_type: 'client_credentials', audience: ISSUER }),
    actor_token_type: 'urn:ietf:params:oauth:token-type:jwt',
    audience, objective: 'delegated mcp test' });
  return { session, delegate };
}

// A graceful stop of `custody serve` (SIGTERM: upstreams terminated, ledger flushed) exits 0,
// with no sanitizer report in its stderr (`stderr()`: what it has written so far).
export async function stopCleanly(server, stderr) {
  server.kill('SIGTERM');
  await new Promise((r) => (server.exitCode !== null ? r() : server.on('exit', r)));
  assert.equal(server.exitCode, 0, `custody serve exited with ${server.exitCode ?? server.signalCode}`);
  assert.ok(!/Sanitizer/.test(stderr()), 'custody serve reported a sanitizer error');
}

// The error a promise rejects with (an SDK call expected to fail); fails if it resolves.
export async function rejection(promise) {
  try {
    const r = await promise;
    assert.fail('expected a JSON-RPC error, got a result: ' + JSON.stringify(r).slice(0, 500));
  } catch (e) {
    if (e instanceof assert.AssertionError) throw e;
    return e;
  }
}

// A fetch for an SDK client's transport that keeps what went over the wire beside it: `posts`,
// each POST's headers and JSON-RPC message; `answers`, each answer with a body: the message
// POSTed (null for the GET stream), whether it is an event stream (`sse`), its JSON-RPC
// `messages` as they arrive, and `ended` (resolves when the body has).
export function wireRecorder() {
  const wire = { posts: [], answers: [] };
  const readEvents = async (body, into) => {
    const decoder = new TextDecoder();
    let rest = '';
    let data = [];
    for await (const chunk of body) {
      const lines = (rest + decoder.decode(chunk, { stream: true })).split(/\r?\n/);
      rest = lines.pop();
      for (const line of lines) {
        if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
        else if (line === '' && data.length) into.push(JSON.parse(data.splice(0).join('\n')));
      }
    }
  };
  wire.fetch = async (url, init) => {
    const message = init?.method === 'POST' && typeof init.body === 'string' ? JSON.parse(init.body) : null;
    if (message) wire.posts.push({ headers: new Headers(init.headers), body: message });
    const res = await fetch(url, init);
    const type = res.headers.get('content-type') ?? '';
    if (!res.body || !/text\/event-stream|application\/json/.test(type)) return res;
    const [mine, theirs] = res.body.tee();
    const answer = { request: message, sse: type.includes('text/event-stream'), messages: [] };
    answer.ended = (answer.sse ? readEvents(mine, answer.messages)
      : new Response(mine).json().then((m) => { answer.messages.push(m); })).catch(() => {});  // closed by the client
    wire.answers.push(answer);
    return new Response(theirs, { status: res.status, statusText: res.statusText, headers: res.headers });
  };
  return wire;
}

// Waits until `check()` (which may be async) is truthy (polled every 20 ms), failing after `ms`
// with `what`.
export async function eventually(what, check, ms = 5000) {
  for (const end = Date.now() + ms; !(await check());) {
    if (Date.now() > end) assert.fail(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
