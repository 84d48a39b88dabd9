// OAuth.LoginPrivateKeyJwtE2E: Custody signs people in at the company IdP with private_key_jwt
// (docs/IDENTITY.md, "Signing in at the company IdP").
//
// The IdP is oidc-provider (idp.mjs) with Custody registered as a private_key_jwt client whose
// JWKS holds the public half of login.private_key_file (ES256, kid "custody-login-1"). Custody
// (`custody serve --quickstart`) has no client secret. A person goes through the whole
// authorization code flow of a pre-registered MCP client (headless browser: Custody -> IdP login
// and consent -> Custody's consent -> the client) and the client redeems the code: the IdP
// accepted Custody's client assertion, the access token names the person. No assertion appears
// in Custody's logs. Refusals: a second Custody with a key the IdP does not know (same kid) gets
// invalid_client at the IdP, and the person gets Custody's error page naming it (HTML, 502),
// whose link back is the client's redirect with server_error, no code; an IdP that does not announce private_key_jwt stops Custody's start-up with a clear
// error; a key file others can read stops start-up too. And an IdP that registers only RSA keys
// for its clients: Custody signs with an RSA login key (RS256), its kid the RFC 7638 thumbprint
// that `jose` computes, and the IdP accepts it.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash, generateKeyPairSync, randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

import { calculateJwkThumbprint } from 'jose';

import { Browser } from './browser.mjs';
import { startIdp } from './idp.mjs';

const custody = process.argv[2];
if (!custody) {
  console.error('usage: node login_private_key_jwt_e2e.mjs /path/to/custody [source root]');
  process.exit(2);
}

const freePort = () => new Promise((resolve, reject) => {
  const s = createServer();
  s.on('error', reject);
  s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
});
const claims = (jwt) => JSON.parse(Buffer.from(jwt.split('.')[1], 'base64url').toString());
const s256 = (v) => createHash('sha256').update(v).digest('base64url');

const dir = mkdtempSync(join(tmpdir(), 'custody-pkjwt-'));
const KID = 'custody-login-1';
const AGENT = 'desktop-assistant';
const CLIENT_ID = 'pkjwt-client';
const cbPort = await freePort();
const REDIRECT = `http://127.0.0.1:${cbPort}/callback`;

// Writes a fresh P-256 key (PKCS#8 PEM) with `mode`; returns its path and public JWK.
function newKey(name, mode = 0o600) {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const path = join(dir, name);
  writeFileSync(path, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode });
  chmodSync(path, mode);
  return { path, jwk: { ...publicKey.export({ format: 'jwk' }), kid: KID, alg: 'ES256', use: 'sig' } };
}

const running = [];
// Starts `custody serve --quickstart` with [login] using `keyFile`; resolves when it listens
// (with its admin token) or rejects with its stderr when it exits first.
async function startCustody(name, { port, idpIssuer, keyFile, kid = KID }) {
  const url = `http://127.0.0.1:${port}`;
  const config = join(dir, `${name}.toml`);
  writeFileSync(config, `
[login]
issuer = "${idpIssuer}"
client_id = "custody"
private_key_file = ${JSON.stringify(keyFile)}
${kid ? `private_key_kid = "${kid}"` : ''}

[oauth.clients."${CLIENT_ID}"]
redirect_uris = ["${REDIRECT}"]
agent = "${AGENT}"
name = "Private Key JWT Client"
`);
  const env = { ...process.env };
  delete env.CUSTODY_LOGIN_CLIENT_SECRET;
  const proc = spawn(custody, ['serve', '--quickstart', '--config', config, '--listen',
    `127.0.0.1:${port}`, '--data-dir', join(dir, `${name}-data`), '--log-level', 'debug'],
  { stdio: ['ignore', 'pipe', 'pipe'], env });
  running.push(proc);
  const c = { url, proc, stderr: '', stdout: '' };
  proc.stderr.on('data', (d) => { c.stderr += d; });
  const exited = new Promise((_, reject) => proc.on('exit', (code, sig) =>
    reject(Object.assign(new Error(`custody serve exited (${code ?? sig}) before listening`),
      { stderr: c.stderr, code }))));
  const listening = (async () => {
    let adminToken;
    for await (const line of createInterface({ input: proc.stdout })) {
      c.stdout += line + '\n';
      if (!line.startsWith('{')) continue;
      const ev = JSON.parse(line);
      if (ev.event === 'admin_token') adminToken = ev.token;
      if (ev.event === 'listening') return adminToken;
    }
    return exited;  // stdout closed before listening: it is exiting
  })();
  c.adminToken = await Promise.race([listening, exited]);
  c.http = async (path, { body, token, form } = {}) => {
    const headers = {};
    if (token) headers.authorization = `Bearer ${token}`;
    let payload;
    if (form) {
      headers['content-type'] = 'application/x-www-form-urlencoded';
      payload = new URLSearchParams(body).toString();
    } else if (body !== undefined) {
      headers['content-type'] = 'application/json';
      payload = JSON.stringify(body);
    }
    const r = await fetch(url + path, { method: body === undefined ? 'GET' : 'POST', headers, body: payload, redirect: 'manual' });
    const text = await r.text();
    let json;
    try { json = JSON.parse(text); } catch { json = undefined; }
    return { status: r.status, json, text };
  };
  const reg = await c.http('/v1/agents', { token: c.adminToken, body: {
    name: AGENT, description: 'an MCP host people use', environment: 'dev', business_owner: 'it',
    technical_owner: 'platform', revocation_contact: 'sec@example.com', grants: ['fake/*'],
    client_secret: true } });
  assert.equal(reg.status, 201, reg.text);
  return c;
}

async function stop(c) {
  if (c.proc.exitCode === null && c.proc.signalCode === null) {
    c.proc.kill('SIGTERM');
    await new Promise((r) => c.proc.on('exit', r));
  }
  assert.equal(c.proc.exitCode, 0, `custody serve exited with ${c.proc.exitCode ?? c.proc.signalCode}`);
  assert.ok(!/Sanitizer/.test(c.stderr), 'custody serve reported a sanitizer error');
}

// Every JWT in `text` that is a client assertion Custody made for `idpIssuer`.
const assertionsIn = (text, idpIssuer) => [...text.matchAll(/eyJ[\w-]+\.(eyJ[\w-]+)\.[\w-]+/g)]
  .map((m) => { try { return JSON.parse(Buffer.from(m[1], 'base64url').toString()); } catch { return {}; } })
  .filter((p) => p.sub === 'custody' && p.aud === idpIssuer);

const idps = [];
try {
  const good = newKey('login.pem');
  const wrong = newKey('wrong.pem');
  const port = await freePort();
  const wrongPort = await freePort();
  const idpPort = await freePort();
  const idp = await startIdp({ port: idpPort, jwks: { keys: [good.jwk] },
    custodyCallbacks: [`http://127.0.0.1:${port}/oauth2/login/callback`,
      `http://127.0.0.1:${wrongPort}/oauth2/login/callback`] });
  idps.push(idp);

  const verifier = randomBytes(32).toString('base64url');
  const authorize = (base) => {
    const u = new URL(`${base}/oauth2/authorize`);
    for (const [k, v] of Object.entries({ response_type: 'code', client_id: CLIENT_ID,
      redirect_uri: REDIRECT, state: 'st-1', code_challenge: s256(verifier),
      code_challenge_method: 'S256', resource: `${base}/mcp`, scope: 'fake/echo' })) u.searchParams.set(k, v);
    return u.href;
  };

  // --- The flow with private_key_jwt.
  const c = await startCustody('custody', { port, idpIssuer: idp.issuer, keyFile: good.path });
  const meta = await (await fetch(`${idp.issuer}/.well-known/openid-configuration`)).json();
  assert.ok(meta.token_endpoint_auth_methods_supported.includes('private_key_jwt'));
  const browser = new Browser();
  const done = await browser.navigate(authorize(c.url), REDIRECT);
  assert.ok(done.redirect, 'the flow did not come back to the client: ' +
    JSON.stringify(done.page?.text?.slice(0, 500)) + '\n' + c.stderr.slice(-2000));
  const back = new URL(done.redirect);
  assert.equal(back.searchParams.get('error'), null, done.redirect);
  assert.equal(back.searchParams.get('state'), 'st-1');
  const code = back.searchParams.get('code');
  assert.ok(code, done.redirect);
  assert.deepEqual(idp.clientAuth, ['ok'], 'the IdP did not accept Custody\'s client assertion');
  assert.ok(browser.log.some((l) => l.url?.startsWith(`${idp.issuer}/`)), 'the IdP was not visited');
  const tok = await c.http('/oauth2/token', { form: true, body: { grant_type: 'authorization_code',
    client_id: CLIENT_ID, code, redirect_uri: REDIRECT, code_verifier: verifier, resource: `${c.url}/mcp` } });
  assert.equal(tok.status, 200, tok.text);
  const at = claims(tok.json.access_token);
  assert.equal(at.sub, 'alice', 'the person the IdP signed in');
  assert.equal(at.client_id, CLIENT_ID);
  assert.match(at.act.sub, new RegExp(`^spiffe://custody\\.local/agent/${AGENT}/instance/`));
  console.log('ok private_key_jwt: the IdP accepted Custody\'s ES256 client assertion, the person signed in, the client got a token for alice');

  // --- A key the IdP does not know (same kid): invalid_client at the IdP, nothing issued.
  const w = await startCustody('wrong', { port: wrongPort, idpIssuer: idp.issuer, keyFile: wrong.path });
  const wrongBrowser = new Browser();
  // The person gets Custody's page (HTML, not JSON, not a bare 500) naming the IdP's error, and
  // its way back is the client's redirect with server_error (RFC 6749 §4.1.2.1), state and iss.
  const refused = await wrongBrowser.navigate(authorize(w.url), REDIRECT);
  assert.ok(refused.page, 'not a page: ' + refused.redirect);
  assert.equal(refused.page.status, 502, refused.page.text.slice(0, 500));
  assert.match(refused.page.headers.get('content-type') ?? '', /^text\/html/);
  assert.match(refused.page.text, /refused Custody&#39;s client authentication \(invalid_client\)/);
  assert.match(refused.page.text, /<code>server_error<\/code>/);
  assert.doesNotMatch(refused.page.text, /eyJ|client_assertion|BEGIN /, 'a credential on the page');
  const backLink = /<a href="([^"]+)">Return to/.exec(refused.page.text);
  assert.ok(backLink, refused.page.text);
  const refusedUrl = new URL(backLink[1].replace(/&amp;/g, '&'));
  assert.ok(refusedUrl.href.startsWith(REDIRECT), refusedUrl.href);
  assert.equal(refusedUrl.searchParams.get('error'), 'server_error', refusedUrl.href);
  assert.equal(refusedUrl.searchParams.get('code'), null, 'a code was issued');
  assert.equal(refusedUrl.searchParams.get('state'), 'st-1');
  assert.equal(refusedUrl.searchParams.get('iss'), w.url);
  assert.match(refusedUrl.searchParams.get('error_description') ?? '', /invalid_client/);
  assert.deepEqual(idp.clientAuth, ['ok', 'invalid_client'], 'the IdP did not refuse the wrong key');
  for (let i = 0; i < 50 && !/invalid_client/.test(w.stderr + w.stdout); i++) await new Promise((r) => setTimeout(r, 20));
  assert.match(w.stderr + w.stdout, /login provider refused the code \(HTTP 401, invalid_client\)/,
    'the operator is not told why');
  console.log('ok a key the IdP does not know: invalid_client at the IdP, the person gets Custody\'s page naming it, its way back the client\'s redirect with server_error, no code');

  // Never log the assertion.
  await stop(c);
  await stop(w);
  for (const s of [c, w]) {
    assert.deepEqual(assertionsIn(s.stderr + s.stdout, idp.issuer), [], 'a client assertion was logged');
    assert.ok(!/client_assertion=/.test(s.stderr + s.stdout), 'a token request body was logged');
  }
  console.log('ok no client assertion in Custody\'s logs (debug level)');

  // --- An IdP that does not announce private_key_jwt: start-up stops with a clear error.
  const basicPort = await freePort();
  const basicIdp = await startIdp({ port: basicPort, clientSecret: 'unused-secret',
    custodyCallbacks: [`http://127.0.0.1:${port}/oauth2/login/callback`], authMethods: ['client_secret_basic'] });
  idps.push(basicIdp);
  await assert.rejects(startCustody('basic', { port, idpIssuer: basicIdp.issuer, keyFile: good.path }),
    (e) => {
      assert.match(e.stderr, /does not support private_key_jwt/, e.stderr);
      console.log('  custody serve: ' + e.stderr.trim().split('\n').pop());
      assert.notEqual(e.code, 0);
      return true;
    });
  console.log('ok an IdP without private_key_jwt in token_endpoint_auth_methods_supported stops start-up with a clear error');

  // --- A key file others can read: start-up stops, the file named by its base name only.
  const open = newKey('open.pem', 0o644);
  await assert.rejects(startCustody('open', { port, idpIssuer: idp.issuer, keyFile: open.path }),
    (e) => {
      assert.match(e.stderr, /open\.pem has mode 0644/, e.stderr);
      console.log('  custody serve: ' + e.stderr.trim().split('\n').pop());
      assert.ok(!e.stderr.includes(dir), 'an absolute path in the error');
      return true;
    });
  console.log('ok a login.private_key_file of mode 0644 stops start-up');

  // --- An IdP that takes RS256 client assertions only: an RSA login key, no configured kid.
  const { privateKey: rsaPriv, publicKey: rsaPub } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const rsaPath = join(dir, 'login-rsa.pem');
  writeFileSync(rsaPath, rsaPriv.export({ type: 'pkcs1', format: 'pem' }), { mode: 0o600 });
  chmodSync(rsaPath, 0o600);
  const rsaJwk = rsaPub.export({ format: 'jwk' });
  const rsaKid = await calculateJwkThumbprint(rsaJwk);
  const rsaPort = await freePort();
  const rsaIdpPort = await freePort();
  const rsaIdp = await startIdp({ port: rsaIdpPort, signingAlg: 'RS256',
    jwks: { keys: [{ ...rsaJwk, kid: rsaKid, alg: 'RS256', use: 'sig' }] },
    custodyCallbacks: [`http://127.0.0.1:${rsaPort}/oauth2/login/callback`] });
  idps.push(rsaIdp);
  const r = await startCustody('rsa', { port: rsaPort, idpIssuer: rsaIdp.issuer, keyFile: rsaPath, kid: '' });
  const rsaDone = await new Browser().navigate(authorize(r.url), REDIRECT);
  assert.ok(rsaDone.redirect, JSON.stringify(rsaDone.page?.text?.slice(0, 500)) + '\n' + r.stderr.slice(-2000));
  const rsaBack = new URL(rsaDone.redirect);
  assert.equal(rsaBack.searchParams.get('error'), null, rsaDone.redirect);
  assert.ok(rsaBack.searchParams.get('code'), rsaDone.redirect);
  assert.deepEqual(rsaIdp.clientAuth, ['ok'], 'the IdP did not accept Custody\'s RS256 client assertion');
  await stop(r);
  assert.deepEqual(assertionsIn(r.stderr + r.stdout, rsaIdp.issuer), [], 'a client assertion was logged');
  console.log('ok an RSA login key (PKCS#1): the IdP accepted Custody\'s RS256 client assertion, kid = the RFC 7638 thumbprint');
  console.log('PASS');
} catch (e) {
  console.error('FAIL:', e);
  process.exitCode = 1;
} finally {
  for (const p of running) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
  for (const i of idps) await i.close();
  rmSync(dir, { recursive: true, force: true });
}
