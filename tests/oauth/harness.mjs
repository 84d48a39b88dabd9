// What the OAuth tests with a real client share: a `custody serve --quickstart` with the
// oidc-provider IdP as its [login], one MCP server (the fake), one agent a pre-registered client
// maps to, a policy letting it call the fake's tools (but `touch`), and the trace API. Each test
// adds its own client entry and drives its own client.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

import { startIdp } from './idp.mjs';

// The set-up of a browser test (`node NAME /path/to/custody [source root] [screenshot dir]`):
// its arguments, and a `launch()` of Debian's chromium (CUSTODY_CHROMIUM overrides) through
// playwright-core. A missing playwright-core fails the test (never a skip).
export async function browserTest(name) {
  const custody = process.argv[2];
  const sourceRoot = process.argv[3] ?? join(dirname(fileURLToPath(import.meta.url)), '..', '..');
  const shotDir = process.argv[4] ?? join(sourceRoot, 'build');
  if (!custody) {
    console.error(`usage: node ${name} /path/to/custody [source root] [screenshot dir]`);
    process.exit(2);
  }
  let chromium;
  try {
    ({ chromium } = await import('playwright-core'));
  } catch (e) {
    console.error('FAIL: cannot load playwright-core; run `npm ci` in tests/oauth (' + e.message + ')');
    process.exit(1);
  }
  const executablePath = process.env.CUSTODY_CHROMIUM ?? '/usr/bin/chromium';
  const launch = () => chromium.launch({ executablePath, args: ['--no-sandbox'] });
  return { custody, sourceRoot, shotDir, launch };
}

// The end of a browser test over startWorld: on success the browser closed, Custody stopped
// (a fault there fails the test), PASS; on `error`, FAIL with Custody's stderr tail. The world's
// directory is removed either way; exits 0 or 1.
export async function finishBrowserTest(w, browser, error) {
  if (error === undefined) {
    try {
      await browser.close();
      await w.stop();
      w.cleanup();
      console.log('PASS');
      process.exit(0);
    } catch (e) {
      error = e;
    }
  }
  console.error('FAIL', error);
  console.error('--- custody stderr (tail) ---\n' + (w?.stderr ?? '').slice(-3000));
  try { await browser?.close(); } catch { /* the failure above is what matters */ }
  w?.cleanup();
  process.exit(1);
}

export const freePort = () => new Promise((resolve, reject) => {
  const s = createServer();
  s.on('error', reject);
  s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
});

export const claims = (jwt) => JSON.parse(Buffer.from(jwt.split('.')[1], 'base64url').toString());

// Starts the IdP and Custody. `clients` is TOML for [oauth.clients."ID"] tables (agent = AGENT).
export async function startWorld({ custody, sourceRoot, agent, clients }) {
  const dir = mkdtempSync(join(tmpdir(), 'custody-oauth-'));
  const idpSecret = randomBytes(24).toString('base64url');
  const idpPort = await freePort();
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const w = { dir, url, idpIssuer: `http://127.0.0.1:${idpPort}`, stderr: '', secrets: [idpSecret] };
  const idp = await startIdp({ port: idpPort, clientSecret: idpSecret,
    custodyCallbacks: [`${url}/oauth2/login/callback`] });
  const config = join(dir, 'custody.toml');
  writeFileSync(config, `
[login]
issuer = "${w.idpIssuer}"
client_id = "custody"

${clients}

[mcp.servers.fake]
command = ${JSON.stringify(process.execPath)}
args = [${JSON.stringify(join(sourceRoot, 'src/mcp/testdata/fake_server.mjs'))}]
`);
  const server = spawn(custody, ['serve', '--quickstart', '--config', config, '--listen',
    `127.0.0.1:${port}`, '--data-dir', join(dir, 'data'), '--log-level', 'info'],
  { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, CUSTODY_LOGIN_CLIENT_SECRET: idpSecret } });
  server.stderr.on('data', (d) => { w.stderr += d; });
  const exited = new Promise((_, reject) => server.on('exit', (code, sig) =>
    reject(new Error(`custody serve exited (${code ?? sig}) before listening\n${w.stderr}`))));
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
  w.adminToken = await Promise.race([listening, exited]);
  assert.ok(w.adminToken, 'no quickstart admin token');

  w.http = async (path, { method, body, token } = {}) => {
    method ??= body !== undefined ? 'POST' : 'GET';
    const headers = {};
    if (token) headers.authorization = `Bearer ${token}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    const r = await fetch(url + path, { method, headers, redirect: 'manual',
      body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await r.text();
    let json;
    try { json = JSON.parse(text); } catch { json = undefined; }
    return { status: r.status, json, text, headers: r.headers };
  };
  const reg = await w.http('/v1/agents', { token: w.adminToken, body: {
    name: agent, description: 'an MCP host people use', environment: 'dev', business_owner: 'it',
    technical_owner: 'platform', revocation_contact: 'sec@example.com', grants: ['fake/*'],
    client_secret: true } });
  assert.equal(reg.status, 201, reg.text);
  const pub = await w.http('/v1/policies', { token: w.adminToken, body: { policies:
    '@id("fake-tools") permit(principal, action == Action::"call_tool", resource in Server::"fake");\n' +
    '@id("no-touch") forbid(principal, action, resource == Tool::"fake/touch");\n' } });
  assert.equal(pub.status, 200, pub.text);

  // The trace of an action, once the index has it (it is written after the answer).
  w.trace = async (actionId) => {
    let t;
    for (let i = 0; i < 100; i++) {
      t = await w.http(`/v1/trace/${actionId}`, { token: w.adminToken });
      if (t.status === 200) return t.json;
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.fail(`no trace of ${actionId}: ${t.status} ${t.text}`);
  };

  w.stop = async () => {
    if (server.exitCode === null) {
      server.kill('SIGTERM');
      await new Promise((r) => (server.exitCode !== null ? r() : server.on('exit', r)));
    }
    await idp.close();
    assert.equal(server.exitCode, 0, `custody serve exited with ${server.exitCode ?? server.signalCode}`);
    assert.ok(!/Sanitizer/.test(w.stderr), 'custody serve reported a sanitizer error');
  };
  w.cleanup = () => {
    if (server.exitCode === null) server.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  };
  return w;
}
