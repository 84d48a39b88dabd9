// Interoperability of Custody's tokens with the `jose` npm package (an independent JOSE
// implementation), against the real `custody serve` binary:
//   node interop.mjs /path/to/custody
// 1. starts `custody serve --quickstart` on 127.0.0.1:0 in a temporary directory, with a trusted
//    OIDC issuer whose RS256 key this script holds;
// 2. registers an agent with a public EC JWK over the admin API;
// 3. authenticates with private_key_jwt client assertions that it signs itself (ES256);
// 4. gets a JWT-SVID (client_credentials), a delegated token from an RS256 ID token and one from
//    an initiator assertion (RFC 8693 exchange), and a sub-delegated child;
// 5. verifies them all with jose's createRemoteJWKSet against /.well-known/jwks.json and checks
//    the SPIFFE JWT-SVID rules and the RFC 9068 / RFC 8693 claims;
// 6. checks that a token with one byte changed fails jose's verification.
// Exits non-zero on the first failure. Needs `npm ci` in tests/jose (scripts/test.sh does it).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

let jose;
try {
  jose = await import('jose');
} catch (e) {
  console.error('FAIL: cannot load the jose package; run `npm ci` in tests/jose (' + e.message + ')');
  process.exit(1);
}

const custody = process.argv[2];
if (!custody) {
  console.error('usage: node interop.mjs /path/to/custody');
  process.exit(2);
}

const ISSUER = 'https://custody.interop.test';
const TRUST_DOMAIN = 'interop.test';
const IDP = 'https://idp.interop.test';
const IDP_AUDIENCE = 'custody-interop';
const AGENT = 'interop-agent';
const SVID_ALGS = ['RS256', 'RS384', 'RS512', 'ES256', 'ES384', 'ES512', 'PS256', 'PS384', 'PS512'];

const dir = mkdtempSync(join(tmpdir(), 'custody-jose-'));
let server;
let stderr = '';

function cleanup() {
  if (server && server.exitCode === null) server.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
}

// Starts the server; resolves with { url, adminToken } once it prints its "listening" line.
async function startServer(trustedIssuersFile) {
  const dataDir = join(dir, 'data');
  server = spawn(custody, [
    'serve', '--quickstart', '--listen', '127.0.0.1:0', '--data-dir', dataDir,
    '--set', `identity.issuer=${ISSUER}`, '--set', `trust_domain=${TRUST_DOMAIN}`,
    '--set', `identity.trusted_issuers_file=${trustedIssuersFile}`,
  ], { stdio: ['ignore', 'pipe', 'pipe'] });
  server.stderr.on('data', (d) => { stderr += d; });
  const exited = new Promise((_, reject) => server.on('exit', (code, sig) =>
    reject(new Error(`custody serve exited (${code ?? sig}) before listening`))));
  const listening = (async () => {
    let adminToken;
    for await (const line of createInterface({ input: server.stdout })) {
      if (!line.startsWith('{')) continue;
      const ev = JSON.parse(line);
      if (ev.event === 'admin_token') adminToken = ev.token;
      if (ev.event === 'listening') {
        assert.ok(adminToken, 'quickstart printed no admin token before listening');
        return { url: ev.url.replace(/\/$/, ''), adminToken };
      }
    }
    throw new Error('custody serve closed stdout before listening');
  })();
  return Promise.race([listening, exited]);
}

async function post(url, path, body, { token, form } = {}) {
  const headers = {};
  if (token) headers.authorization = `Bearer ${token}`;
  let payload;
  if (form) {
    headers['content-type'] = 'application/x-www-form-urlencoded';
    payload = new URLSearchParams(body).toString();
  } else {
    headers['content-type'] = 'application/json';
    payload = JSON.stringify(body);
  }
  const r = await fetch(url + path, { method: 'POST', headers, body: payload });
  const text = await r.text();
  let json;
  try { json = JSON.parse(text); } catch { json = undefined; }
  return { status: r.status, json, text };
}

// SPIFFE ID syntax (SPIFFE-ID §2): spiffe://<trust domain>/<path>, the trust domain lowercase
// letters, digits, '.', '-', '_' (at most 255), path segments of letters, digits, '.', '-', '_'
// that are neither empty nor '.' or '..', no trailing slash, no query or fragment, at most 2048
// bytes in all.
function checkSpiffeId(id, trustDomain) {
  assert.equal(typeof id, 'string', 'sub must be a string');
  assert.ok(Buffer.byteLength(id) <= 2048, 'SPIFFE ID longer than 2048 bytes');
  assert.ok(id.startsWith('spiffe://'), `sub ${id} is not a spiffe:// URI`);
  assert.ok(!id.includes('?') && !id.includes('#'), 'SPIFFE ID has a query or fragment');
  const rest = id.slice('spiffe://'.length);
  const slash = rest.indexOf('/');
  const td = slash < 0 ? rest : rest.slice(0, slash);
  assert.match(td, /^[a-z0-9._-]+$/, `trust domain "${td}" has characters SPIFFE forbids`);
  assert.ok(td.length <= 255, 'trust domain longer than 255 characters');
  assert.equal(td, trustDomain, 'SPIFFE ID is for another trust domain');
  assert.ok(slash >= 0, 'a workload SPIFFE ID must have a path');
  const path = rest.slice(slash);
  assert.ok(!path.endsWith('/'), 'SPIFFE ID path has a trailing slash');
  for (const seg of path.slice(1).split('/')) {
    assert.ok(seg.length > 0, 'SPIFFE ID path has an empty segment');
    assert.ok(seg !== '.' && seg !== '..', 'SPIFFE ID path has a dot segment');
    assert.match(seg, /^[A-Za-z0-9._-]+$/, `path segment "${seg}" has characters SPIFFE forbids`);
  }
  return { trustDomain: td, path };
}

// The JWT-SVID rules (SPIFFE JWT-SVID §2-3) on a token jose has already verified.
function checkJwtSvid(protectedHeader, payload, audience) {
  for (const k of Object.keys(protectedHeader)) {
    assert.ok(['alg', 'kid', 'typ'].includes(k), `JWT-SVID header carries "${k}"`);
  }
  assert.ok(SVID_ALGS.includes(protectedHeader.alg), `alg ${protectedHeader.alg} not allowed`);
  assert.equal(protectedHeader.alg, 'ES256', 'Custody signs with ES256');
  assert.ok(protectedHeader.kid, 'JWT-SVID header has no kid');
  if ('typ' in protectedHeader) assert.ok(['JWT', 'JOSE'].includes(protectedHeader.typ));
  const { path } = checkSpiffeId(payload.sub, TRUST_DOMAIN);
  assert.match(path, new RegExp(`^/agent/${AGENT}/instance/[0-9a-f-]{36}$`));
  const aud = Array.isArray(payload.aud) ? payload.aud : [payload.aud];
  assert.ok(aud.length > 0 && aud.every((a) => typeof a === 'string' && a), 'aud missing');
  assert.ok(aud.includes(audience));
  assert.equal(typeof payload.exp, 'number', 'exp missing');
  const now = Math.floor(Date.now() / 1000);
  assert.ok(payload.exp > now, 'JWT-SVID already expired');
  assert.ok(payload.exp - now <= 300 + 5, `exp is ${payload.exp - now} s away (> 5 min)`);
  if (typeof payload.iat === 'number') assert.ok(payload.exp - payload.iat <= 300);
}

// RFC 9068 §2.2 required claims and the RFC 8693 act chain, on a verified at+jwt.
function checkAccessToken(protectedHeader, payload, { sub, actors, scope, audience }) {
  assert.equal(protectedHeader.typ, 'at+jwt');
  assert.equal(protectedHeader.alg, 'ES256');
  for (const c of ['iss', 'exp', 'aud', 'sub', 'client_id', 'iat', 'jti', 'scope', 'sid', 'txn', 'act']) {
    assert.ok(c in payload, `access token has no ${c}`);
  }
  assert.equal(payload.iss, ISSUER);
  assert.equal(payload.sub, sub);
  assert.equal(payload.client_id, AGENT);
  assert.equal(payload.scope, scope);
  assert.ok([payload.aud].flat().includes(audience));
  assert.equal(typeof payload.jti, 'string');
  assert.ok(payload.exp > payload.iat);
  // act = {sub: current actor, act: {sub: prior actor, …}} (RFC 8693 §4.1), newest first.
  let act = payload.act;
  for (const actor of actors) {
    assert.ok(act && typeof act === 'object', 'act chain too short');
    assert.equal(act.sub, actor);
    checkSpiffeId(act.sub, TRUST_DOMAIN);
    act = act.act;
  }
  assert.equal(act, undefined, 'act chain too long');
  assert.match(payload.objective ?? '', /^sha256:[0-9a-f]{64}$/);
}

// The same token with one byte of the given part (0 header, 1 payload, 2 signature) changed.
function flipOneByte(token, part) {
  const parts = token.split('.');
  const bytes = Buffer.from(parts[part], 'base64url');
  bytes[Math.floor(bytes.length / 2)] ^= 0x01;
  parts[part] = bytes.toString('base64url');
  assert.notEqual(parts.join('.'), token);
  return parts.join('.');
}

async function main() {
  // A trusted OIDC provider signing ID tokens with RS256, as most do.
  const idp = await jose.generateKeyPair('RS256', { modulusLength: 2048 });
  const idpJwk = { ...(await jose.exportJWK(idp.publicKey)), kid: 'idp-rsa-1', alg: 'RS256', use: 'sig' };
  const trusted = join(dir, 'trusted_issuers.json');
  writeFileSync(trusted, JSON.stringify([{ issuer: IDP, audience: IDP_AUDIENCE, jwks: { keys: [idpJwk] } }]));

  const { url, adminToken } = await startServer(trusted);
  const jwks = jose.createRemoteJWKSet(new URL(url + '/.well-known/jwks.json'));

  // Register the agent with its public key; the private key never leaves this script.
  const client = await jose.generateKeyPair('ES256');
  const clientJwk = { ...(await jose.exportJWK(client.publicKey)), kid: 'interop-key-1', alg: 'ES256', use: 'sig' };
  const reg = await post(url, '/v1/agents', {
    name: AGENT, description: 'jose interop test agent', environment: 'dev',
    grants: ['tools/read', 'tools/write'], permissions: ['assert_initiator'],
    max_delegation_depth: 2, max_token_lifetime_s: 600, client_jwk: clientJwk,
  }, { token: adminToken });
  assert.equal(reg.status, 201, reg.text);
  assert.equal(reg.json.credential, 'private_key_jwt');

  // private_key_jwt (RFC 7523): iss = sub = client_id, aud = the token endpoint, fresh jti.
  const assertion = () => new jose.SignJWT({})
    .setProtectedHeader({ alg: 'ES256', kid: 'interop-key-1' })
    .setIssuer(AGENT).setSubject(AGENT).setAudience(ISSUER + '/oauth2/token')
    .setIssuedAt().setExpirationTime('2m').setJti(randomUUID())
    .sign(client.privateKey);
  const token = async (params) => {
    const r = await post(url, '/oauth2/token', {
      client_id: AGENT,
      client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
      client_assertion: await assertion(),
      ...params,
    }, { form: true });
    assert.equal(r.status, 200, `token endpoint: ${r.text}`);
    assert.equal(r.json.token_type, 'Bearer');
    return r.json;
  };

  // A reused assertion is refused (replay protection), with an RFC 6749 error body.
  const once = await assertion();
  const form = { grant_type: 'client_credentials', client_id: AGENT, audience: ISSUER,
    client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer', client_assertion: once };
  assert.equal((await post(url, '/oauth2/token', form, { form: true })).status, 200);
  const replay = await post(url, '/oauth2/token', form, { form: true });
  assert.equal(replay.status, 401);
  assert.equal(replay.json.error, 'invalid_client');

  // 1. JWT-SVID.
  const svid = await token({ grant_type: 'client_credentials', audience: ISSUER });
  assert.equal(svid.issued_token_type, 'urn:ietf:params:oauth:token-type:jwt');
  const sv = await jose.jwtVerify(svid.access_token, jwks,
    { algorithms: ['ES256'], issuer: ISSUER, audience: ISSUER, maxTokenAge: '5m' });
  checkJwtSvid(sv.protectedHeader, sv.payload, ISSUER);
  const actor = sv.payload.sub;
  console.log(`ok JWT-SVID ${actor} (kid ${sv.protectedHeader.kid}) verified by jose`);

  // 2. Delegated token from an RS256 ID token of the trusted issuer (initiator verified).
  const idToken = await new jose.SignJWT({ email: 'alice@example.com' })
    .setProtectedHeader({ alg: 'RS256', kid: 'idp-rsa-1', typ: 'JWT' })
    .setIssuer(IDP).setSubject('alice@example.com').setAudience(IDP_AUDIENCE)
    .setIssuedAt().setExpirationTime('5m').sign(idp.privateKey);
  const exchange = (subject, subjectType, actorToken, extra = {}) => token({
    grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
    subject_token: subject, subject_token_type: subjectType,
    actor_token: actorToken, actor_token_type: 'urn:ietf:params:oauth:token-type:jwt',
    audience: 'interop-gateway', scope: 'tools/read tools/write', objective: 'interop: triage issues',
    ...extra,
  });
  const root = await exchange(idToken, 'urn:ietf:params:oauth:token-type:id_token', svid.access_token);
  assert.equal(root.issued_token_type, 'urn:ietf:params:oauth:token-type:access_token');
  const rv = await jose.jwtVerify(root.access_token, jwks,
    { algorithms: ['ES256'], issuer: ISSUER, audience: 'interop-gateway', typ: 'at+jwt' });
  checkAccessToken(rv.protectedHeader, rv.payload,
    { sub: 'alice@example.com', actors: [actor], scope: 'tools/read tools/write', audience: 'interop-gateway' });
  assert.equal(rv.payload.initiator_verification, 'verified');
  console.log(`ok delegated token (RS256 ID token subject) sid ${rv.payload.sid} verified by jose`);

  // An RS256 ID token signed by a key the trusted issuer never published is refused.
  const rogue = await jose.generateKeyPair('RS256', { modulusLength: 2048 });
  const forged = await new jose.SignJWT({})
    .setProtectedHeader({ alg: 'RS256', kid: 'idp-rsa-1' })
    .setIssuer(IDP).setSubject('mallory').setAudience(IDP_AUDIENCE)
    .setIssuedAt().setExpirationTime('5m').sign(rogue.privateKey);
  const refused = await post(url, '/oauth2/token', {
    grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange', client_id: AGENT,
    client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
    client_assertion: await assertion(), subject_token: forged,
    subject_token_type: 'urn:ietf:params:oauth:token-type:id_token',
    actor_token: svid.access_token, actor_token_type: 'urn:ietf:params:oauth:token-type:jwt',
    audience: 'interop-gateway',
  }, { form: true });
  assert.equal(refused.status, 400, refused.text);
  assert.equal(refused.json.error, 'invalid_grant');

  // 3. Sub-delegation: the root token as subject, a new instance as actor; narrower scope.
  const svid2 = await token({ grant_type: 'client_credentials', audience: ISSUER });
  const actor2 = (await jose.jwtVerify(svid2.access_token, jwks, { algorithms: ['ES256'], issuer: ISSUER, audience: ISSUER })).payload.sub;
  const child = await exchange(root.access_token, 'urn:ietf:params:oauth:token-type:access_token',
    svid2.access_token, { scope: 'tools/read' });
  const cv = await jose.jwtVerify(child.access_token, jwks,
    { algorithms: ['ES256'], issuer: ISSUER, audience: 'interop-gateway', typ: 'at+jwt' });
  checkAccessToken(cv.protectedHeader, cv.payload,
    { sub: 'alice@example.com', actors: [actor2, actor], scope: 'tools/read', audience: 'interop-gateway' });
  assert.equal(cv.payload.txn, rv.payload.txn, 'txn is inherited');
  assert.notEqual(cv.payload.sid, rv.payload.sid);
  assert.ok(cv.payload.exp <= rv.payload.exp, 'a child may not outlive its parent');
  console.log(`ok child token sid ${cv.payload.sid} (act chain of 2) verified by jose`);

  // 4. Initiator assertion (this client holds assert_initiator): initiator "asserted".
  const svid3 = await token({ grant_type: 'client_credentials', audience: ISSUER });
  const asserted = await exchange(JSON.stringify({ sub: 'nightly-workflow', iss: 'ci' }),
    'urn:custody:params:oauth:token-type:initiator-assertion', svid3.access_token, { scope: 'tools/read' });
  const av = await jose.jwtVerify(asserted.access_token, jwks,
    { algorithms: ['ES256'], issuer: ISSUER, audience: 'interop-gateway', typ: 'at+jwt' });
  assert.equal(av.payload.sub, 'nightly-workflow');
  assert.equal(av.payload.initiator_verification, 'asserted');
  console.log('ok delegated token (asserted initiator) verified by jose');

  // 5. Negative: one byte changed in the header, payload or signature fails jose's check; so
  //    does the right token under another algorithm allow-list or audience.
  for (const t of [svid.access_token, root.access_token]) {
    for (const part of [0, 1, 2]) {
      await assert.rejects(
        jose.jwtVerify(flipOneByte(t, part), jwks, { algorithms: ['ES256'], issuer: ISSUER }),
        `a token with one byte changed in part ${part} verified`);
    }
  }
  await assert.rejects(jose.jwtVerify(root.access_token, jwks, { algorithms: ['RS256'], issuer: ISSUER }));
  await assert.rejects(jose.jwtVerify(root.access_token, jwks,
    { algorithms: ['ES256'], issuer: ISSUER, audience: 'someone-else' }));
  // And Custody itself agrees: the tampered token is inactive, the real one active.
  const introspect = async (t) => (await post(url, '/oauth2/introspect', { token: t },
    { token: adminToken, form: true })).json;
  assert.equal((await introspect(root.access_token)).active, true);
  assert.equal((await introspect(flipOneByte(root.access_token, 2))).active, false);
  console.log('ok tampered tokens are refused by jose and by Custody');

  // The JWKS itself: EC P-256 signature keys only, each with a kid, no private members.
  const published = await (await fetch(url + '/.well-known/jwks.json')).json();
  assert.ok(published.keys.length >= 1);
  for (const k of published.keys) {
    assert.equal(k.kty, 'EC');
    assert.equal(k.crv, 'P-256');
    assert.equal(k.alg, 'ES256');
    assert.ok(k.kid && !('d' in k));
    assert.equal(k.kid, await jose.calculateJwkThumbprint(k), 'kid is the RFC 7638 thumbprint');
  }
}

try {
  await main();
  server.kill('SIGTERM');
  await new Promise((r) => (server.exitCode !== null ? r() : server.on('exit', r)));
  console.log('PASS jose interop');
  cleanup();
} catch (e) {
  console.error('FAIL:', e?.stack ?? e);
  if (stderr) console.error('--- custody serve stderr (last 4 KiB) ---\n' + stderr.slice(-4096));
  cleanup();
  process.exit(1);
}
