// Identity carried to every tool as a Transaction Token (docs/MCP.md, "Identity for upstreams"),
// end to end against real peers: `custody serve` in front of tests/mcp/txn_token_server.mjs (a
// server on the official SDK, @modelcontextprotocol/sdk 1.x, that verifies each call's token with
// the `jose` npm package against Custody's JWKS fetched from the running server) over stdio and
// over Streamable HTTP, each with identity = "txn-token" and with the default "none", plus
// tests/mcp/modern_server.mjs (a 2026-07-28-only server) over both transports with txn-token.
//   node txn_token_e2e.mjs /path/to/custody [source root]
// Checks: a delegated session's call reaches the server with a token that verifies (typ, alg, iss,
// aud, exp) and names the initiator and the actor chain of the session token; the HTTP server
// gets it in the Txn-Token header, the stdio one in _meta; a fresh token per call; identity =
// "none" sends nothing; a client's own _meta token never reaches a server; the client's bearer
// token reaches no server; a token fails verification for another audience, once expired, or
// tampered with; a denied call reaches nobody and mints nothing.
// Exits non-zero on the first failure; needs `npm ci` in tests/mcp (scripts/test.sh does it).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

import {
  ISSUER, claims, freePort, loadSdk, registerAgent, request, startCustody, stopCleanly,
} from './harness.mjs';

let jose;
try {
  jose = await import('jose');
} catch (e) {
  console.error('FAIL: cannot load jose; run `npm ci` in tests/mcp (' + e.message + ')');
  process.exit(1);
}
const { Client, StreamableHTTPClientTransport } = await loadSdk();

const here = dirname(fileURLToPath(import.meta.url));
const custody = process.argv[2];
if (!custody) {
  console.error('usage: node txn_token_e2e.mjs /path/to/custody [source root]');
  process.exit(2);
}
const TXN_SERVER = join(here, 'txn_token_server.mjs');
const MODERN_SERVER = join(here, 'modern_server.mjs');
const RECEIPT = 'dev.custody/receipt';
const META_KEY = 'dev.custody/txn-token';

const dir = mkdtempSync(join(tmpdir(), 'custody-txn-'));
const jwksUrlFile = join(dir, 'jwks-url');
const logOf = (name) => join(dir, `${name}.log`);
const rawLog = (name) => (existsSync(logOf(name)) ? readFileSync(logOf(name), 'utf8') : '');
const children = [];
let server;
let stderrOf = () => '';

function cleanup() {
  for (const p of [server, ...children]) if (p && p.exitCode === null) p.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
}

// A server script over HTTP on a free port (it prints `listening <port>`); resolves with the port.
async function startHttp(script, env, port = 0) {
  const p = spawn(process.execPath, [script, 'http', String(port)], {
    env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(p);
  const exited = new Promise((_, reject) => p.on('exit', (code, sig) =>
    reject(new Error(`${script} http exited (${code ?? sig}) before listening`))));
  const listening = (async () => {
    for await (const line of createInterface({ input: p.stdout })) {
      const m = /^listening (\d+)$/.exec(line);
      if (m) return Number(m[1]);
    }
    throw new Error(`${script} closed stdout before listening`);
  })();
  return Promise.race([listening, exited]);
}

const toml = (v) => JSON.stringify(v);
const envTable = (env) => '{ ' + Object.entries(env).map(([k, v]) => `${k} = ${toml(v)}`).join(', ') + ' }';
const stdioServer = (name, script, env, identity) => `
[mcp.servers.${name}]
command = ${toml(process.execPath)}
args = [${toml(script)}, "stdio"]
env = ${envTable(env)}
${identity ? `identity = ${toml(identity)}` : ''}
`;
const httpServer = (name, port, identity) => `
[mcp.servers.${name}]
url = "http://127.0.0.1:${port}/mcp"
${identity ? `identity = ${toml(identity)}` : ''}
`;
const txnEnv = (name, audience) => ({
  CUSTODY_JWKS_URL_FILE: jwksUrlFile, TXN_ISSUER: ISSUER, TXN_AUDIENCE: audience, TXN_SERVER_LOG: logOf(name),
});

async function main() {
  // The HTTP servers first (Custody reaches them by URL). Each checks its own audience, its URL,
  // which names the port: so the port is chosen first.
  const ports = {};
  for (const name of ['who_http', 'plain_http']) {
    ports[name] = await freePort();
    const port = await startHttp(TXN_SERVER, txnEnv(name, `http://127.0.0.1:${ports[name]}/mcp`), ports[name]);
    assert.equal(port, ports[name]);
  }
  const modernPort = await startHttp(MODERN_SERVER, { MODERN_SERVER_LOG: logOf('modern_http') });

  const started = await startCustody(custody, dir, `
[mcp]
request_timeout_ms = 20000
${stdioServer('who_stdio', TXN_SERVER, txnEnv('who_stdio', 'urn:custody:mcp:who_stdio'), 'txn-token')}
${stdioServer('plain_stdio', TXN_SERVER, txnEnv('plain_stdio', 'urn:custody:mcp:plain_stdio'))}
${httpServer('who_http', ports.who_http, 'txn-token')}
${httpServer('plain_http', ports.plain_http)}
${httpServer('modern_http', modernPort, 'txn-token')}
${stdioServer('modern_stdio', MODERN_SERVER, { MODERN_SERVER_LOG: logOf('modern_stdio') }, 'txn-token')}
`);
  server = started.server;
  stderrOf = started.stderr;
  const { url, adminToken } = started;
  const jwksUrl = `${url}/.well-known/jwks.json`;
  writeFileSync(jwksUrlFile, jwksUrl);

  // A bad identity value stops the server before it starts, naming the key.
  const badConfig = join(dir, 'bad.toml');
  writeFileSync(badConfig, `[mcp.servers.x]\ncommand = "node"\nidentity = "bearer"\n`);
  const bad = await new Promise((resolve) => {
    const p = spawn(custody, ['serve', '--config', badConfig, '--listen', '127.0.0.1:0',
      '--data-dir', join(dir, 'bad-data')], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    p.stderr.on('data', (d) => { err += d; });
    p.on('exit', (code) => resolve({ code, err }));
  });
  assert.notEqual(bad.code, 0);
  assert.match(bad.err, /mcp\.servers\.x\.identity must be "none" or "txn-token"/);
  console.log('ok an unknown identity is a config error naming mcp.servers.NAME.identity');

  // alice's workflow: the planner starts a session, delegates to the worker, who calls tools.
  const servers = ['who_stdio', 'plain_stdio', 'who_http', 'plain_http', 'modern_http', 'modern_stdio'];
  const grants = servers.map((s) => `${s}/*`);
  const planner = await registerAgent(url, adminToken, 'txn-planner', grants);
  const worker = await registerAgent(url, adminToken, 'txn-worker', grants);
  const plannerToken = await planner.session();
  const workerToken = await worker.delegate(plannerToken);
  const workerClaims = claims(workerToken);
  assert.equal(workerClaims.sub, 'nightly-workflow');
  assert.match(workerClaims.act.sub, /\/agent\/txn-worker\/instance\//);
  assert.match(workerClaims.act.act.sub, /\/agent\/txn-planner\/instance\//);

  const policies = servers.map((s) =>
    `@id("${s}") permit(principal, action == Action::"call_tool", resource in Server::"${s}");`).join('\n') +
    '\n@id("no-touch") forbid(principal, action, resource == Tool::"modern_http/touch");';
  const pub = await request(url, '/v1/policies', { token: adminToken, body: { policies } });
  assert.equal(pub.status, 200, pub.text);

  const connect = async (name, token) => {
    const transport = new StreamableHTTPClientTransport(new URL(`${url}/mcp/${name}`),
      { requestInit: { headers: { authorization: `Bearer ${token}` } } });
    const client = new Client({ name: 'custody-txn-e2e', version: '1.0.0' });
    await client.connect(transport);
    return client;
  };
  const whoami = async (client, meta) => {
    const r = await client.callTool({ name: 'whoami', arguments: {}, ...(meta ? { _meta: meta } : {}) });
    assert.ok(!r.isError, JSON.stringify(r));
    return { seen: JSON.parse(r.content[0].text), receipt: r._meta?.[RECEIPT] };
  };

  // --- identity = "txn-token": the server verifies the token and sees who is behind the call.
  for (const [name, audience, where] of [
    ['who_stdio', 'urn:custody:mcp:who_stdio', '_meta'],
    ['who_http', `http://127.0.0.1:${ports.who_http}/mcp`, 'Txn-Token header']]) {
    const client = await connect(name, workerToken);
    const { seen, receipt } = await whoami(client);
    assert.equal(seen.present, true, `${name}: no token came with the call`);
    assert.equal(seen.verified, true, `${name}: ${seen.error}`);
    assert.equal(seen.misplaced, false, `${name}: a token outside the ${where}`);
    assert.equal(seen.header.typ, 'txntoken+jwt');
    assert.equal(seen.header.alg, 'ES256');
    const c = seen.claims;
    assert.equal(c.iss, ISSUER);
    assert.equal(c.aud, audience);
    assert.ok(c.exp - c.iat <= 60 && c.exp > Date.now() / 1000 - 5, JSON.stringify(c));
    assert.equal(c.sub, 'nightly-workflow', 'the right person');
    assert.deepEqual(c.act, workerClaims.act, 'the right actor chain (the worker, for the planner)');
    assert.equal(c.scope, `${name}/whoami`, 'narrowed to the one tool');
    assert.equal(c.txn, receipt.action_id, 'the transaction is the decision');
    assert.equal(c.tctx.action_id, receipt.action_id);
    assert.equal(c.tctx.action, 'call_tool');
    assert.equal(c.tctx.sid, workerClaims.sid);
    assert.match(c.tctx.purpose, /^sha256:[0-9a-f]{64}$/);
    assert.equal(c.tctx.purpose, workerClaims.objective, 'the purpose is the session\'s objective');
    assert.equal(receipt.txn_token.jti, c.jti, 'the receipt names the token by its jti');
    // Fresh for each call.
    const again = await whoami(client);
    assert.notEqual(again.seen.claims.jti, c.jti);
    assert.notEqual(again.seen.claims.txn, c.txn);
    // A client's own _meta token is replaced by the gateway's.
    const forged = await whoami(client, { [META_KEY]: 'eyJhbGciOiJub25lIn0.e30.' });
    assert.equal(forged.seen.verified, true, `${name}: ${forged.seen.error}`);
    await client.close();
    console.log(`ok ${name}: the ${where} carries a verified txntoken+jwt naming the initiator and the actor chain`);
  }

  // --- identity = "none" (the default): nothing is sent, and a client's own _meta token is
  // removed before the server sees it.
  for (const name of ['plain_stdio', 'plain_http']) {
    const client = await connect(name, workerToken);
    const { seen, receipt } = await whoami(client);
    assert.deepEqual(seen, { present: false, misplaced: false }, `${name}: ${JSON.stringify(seen)}`);
    assert.equal(receipt.txn_token, undefined);
    const forged = await whoami(client, { [META_KEY]: 'client-made' });
    assert.deepEqual(forged.seen, { present: false, misplaced: false }, `${name}: ${JSON.stringify(forged.seen)}`);
    await client.close();
  }
  assert.ok(!/txn-token/i.test(rawLog('plain_http')), 'a Txn-Token header reached an identity = none server');
  assert.ok(!rawLog('plain_stdio').includes(META_KEY), 'a _meta token reached an identity = none server');
  assert.ok(!rawLog('plain_stdio').includes('client-made'));
  console.log('ok identity = "none" sends nothing, and a client cannot send its own');

  // --- 2026-07-28 upstreams get it too (per-request _meta, or the header).
  for (const name of ['modern_http', 'modern_stdio']) {
    const client = await connect(name, workerToken);
    const r = await client.callTool({ name: 'echo', arguments: { text: 'hi' } });
    assert.ok(!r.isError, JSON.stringify(r));
    const calls = rawLog(name).split('\n').filter(Boolean).map((l) => JSON.parse(l))
      .filter((l) => l.method === 'tools/call' && l.tool === 'echo');
    assert.equal(calls.length, 1, `${name}: ${rawLog(name)}`);
    const token = calls[0].txnToken;
    assert.ok(token, `${name}: the 2026-07-28 server got no token`);
    const audience = name === 'modern_http' ? `http://127.0.0.1:${modernPort}/mcp` : `urn:custody:mcp:${name}`;
    const { payload } = await jose.jwtVerify(token, jose.createRemoteJWKSet(new URL(jwksUrl)),
      { issuer: ISSUER, audience, typ: 'txntoken+jwt', algorithms: ['ES256'] });
    assert.equal(payload.sub, 'nightly-workflow');
    assert.deepEqual(payload.act, workerClaims.act);
    assert.equal(payload.scope, `${name}/echo`);
    if (name === 'modern_http') {
      assert.ok(!calls[0].meta.includes(META_KEY), 'an HTTP server gets the header, not _meta');
    }
    // A denied call reaches nobody, so no token is minted for it.
    if (name === 'modern_http') {
      await assert.rejects(client.callTool({ name: 'touch', arguments: { uri: 'memo://one' } }));
      assert.ok(!rawLog(name).includes('"tool":"touch"'), 'a denied call reached the server');
    }
    await client.close();
  }
  console.log('ok 2026-07-28 upstreams (HTTP and stdio) get a verified token too; a denied call reaches nobody');

  // --- What a relying party must refuse, on a real token (from the stdio server's raw input).
  const stdioInput = rawLog('who_stdio');
  const m = new RegExp(`"${META_KEY.replace('/', '\\/')}":"([A-Za-z0-9_.-]+)"`).exec(stdioInput);
  assert.ok(m, 'no token in the stdio server input');
  const token = m[1];
  const keys = jose.createRemoteJWKSet(new URL(jwksUrl));
  const opts = { issuer: ISSUER, typ: 'txntoken+jwt', algorithms: ['ES256'] };
  await jose.jwtVerify(token, keys, { ...opts, audience: 'urn:custody:mcp:who_stdio' });
  await assert.rejects(jose.jwtVerify(token, keys, { ...opts, audience: `http://127.0.0.1:${ports.who_http}/mcp` }),
    (e) => e.code === 'ERR_JWT_CLAIM_VALIDATION_FAILED' && e.claim === 'aud');
  const { exp } = jose.decodeJwt(token);
  await assert.rejects(jose.jwtVerify(token, keys, { ...opts, audience: 'urn:custody:mcp:who_stdio',
    currentDate: new Date((exp + 1) * 1000) }), (e) => e.code === 'ERR_JWT_EXPIRED');
  const [h, , s] = token.split('.');
  const mallory = Buffer.from(JSON.stringify({ ...jose.decodeJwt(token), sub: 'mallory' })).toString('base64url');
  await assert.rejects(jose.jwtVerify(`${h}.${mallory}.${s}`, keys, { ...opts, audience: 'urn:custody:mcp:who_stdio' }),
    (e) => e.code === 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED');
  await assert.rejects(jose.jwtVerify(token, keys, { ...opts, typ: 'at+jwt', audience: 'urn:custody:mcp:who_stdio' }),
    (e) => e.code === 'ERR_JWT_CLAIM_VALIDATION_FAILED' && e.claim === 'typ');
  console.log('ok a transaction token is refused for another audience, once expired, tampered with, or as another typ');

  // --- The client's bearer tokens never reached any server: not in a header, not in a body.
  for (const name of ['who_stdio', 'plain_stdio', 'who_http', 'plain_http', 'modern_http', 'modern_stdio']) {
    const raw = rawLog(name);
    assert.ok(raw.length > 0, `${name}: nothing logged`);
    for (const t of [workerToken, plannerToken]) {
      assert.ok(!raw.includes(t), `${name} received the client's bearer token`);
      assert.ok(!raw.includes(t.split('.')[2]), `${name} received the client's bearer token's signature`);
    }
  }
  for (const name of ['who_http', 'plain_http']) {
    for (const line of rawLog(name).split('\n').filter(Boolean)) {
      const { headers } = JSON.parse(line);
      assert.equal(headers.authorization, undefined, `${name} got an Authorization header`);
    }
  }
  console.log('ok no server received the client\'s bearer token or an Authorization header');

  await stopCleanly(server, stderrOf);
  assert.ok(!stderrOf().includes(workerToken), 'the server log holds a token');
}

try {
  await main();
  console.log('PASS txn_token_e2e');
  cleanup();
} catch (e) {
  console.error('FAIL', e);
  console.error(stderrOf().slice(-4000));
  cleanup();
  process.exit(1);
}
