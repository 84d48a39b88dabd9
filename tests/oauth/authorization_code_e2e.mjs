// OAuth.AuthorizationCodeE2E: a real MCP client signs a person in through Custody.
//
// The company IdP is oidc-provider (a certified OpenID Provider, idp.mjs); the client is the
// official MCP TypeScript SDK (its OAuthClientProvider, auth() and StreamableHTTPClientTransport)
// against a real `custody serve`: discovery from the gateway's 401, the authorization request
// with PKCE S256, the IdP's login form, Custody's consent page, the code, the token, a tool call
// through the gateway whose trace names the person as verified initiator and the client's agent
// instance as actor, a refresh (also after a restart: families are in identity.db), a step-up
// (a tool outside the token's scopes is a 403 insufficient_scope; the SDK re-authorizes with the
// challenged scope and the tool answers). Then the refusals, each with its RFC error and nothing
// issued: missing PKCE, plain, a wrong verifier, a redirect URI mismatch, code reuse (what the
// first use issued is revoked), refresh reuse (the family and its sessions revoked), a wrong
// resource, an unknown client (no dev switch).
// A Client ID Metadata Document client signs in; refused documents are invalid_client. A second
// `custody serve` in development (oauth.dev_unknown_clients, oauth.dynamic_client_registration):
// the SDK's default path, RFC 7591 registration, signs in as a dev agent owned by the person.
// The browser is headless (browser.mjs: redirects followed, forms submitted from node).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

import { Browser } from './browser.mjs';
import { startIdp } from './idp.mjs';

let sdk;
try {
  const { Client } = await import('@modelcontextprotocol/sdk/client/index.js');
  const { StreamableHTTPClientTransport } = await import('@modelcontextprotocol/sdk/client/streamableHttp.js');
  const { auth, UnauthorizedError } = await import('@modelcontextprotocol/sdk/client/auth.js');
  sdk = { Client, StreamableHTTPClientTransport, auth, UnauthorizedError };
} catch (e) {
  console.error('FAIL: cannot load the test packages; run `npm ci` in tests/oauth (' + e.message + ')');
  process.exit(1);
}

const here = dirname(fileURLToPath(import.meta.url));
const custody = process.argv[2];
const sourceRoot = process.argv[3] ?? join(here, '..', '..');
if (!custody) {
  console.error('usage: node authorization_code_e2e.mjs /path/to/custody [source root]');
  process.exit(2);
}
const fake = join(sourceRoot, 'src/mcp/testdata/fake_server.mjs');

const freePort = () => new Promise((resolve, reject) => {
  const s = createServer();
  s.on('error', reject);
  s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
});

const dir = mkdtempSync(join(tmpdir(), 'custody-oauth-'));
const IDP_SECRET = randomBytes(24).toString('base64url');
const CLIENT_ID = 'e2e-desktop-client';
const AGENT = 'desktop-assistant';
const custodyPort = await freePort();
const idpPort = await freePort();
const cbPort = await freePort();
const devPort = await freePort();
const DEV_URL = `http://127.0.0.1:${devPort}`;
const URL_ = `http://127.0.0.1:${custodyPort}`;
const RESOURCE = `${URL_}/mcp`;
const REDIRECT = `http://127.0.0.1:${cbPort}/callback`;
// Client ID Metadata Documents, served on loopback (oauth.client_metadata_allow_loopback).
const docPort = await freePort();
const DOC = (name) => `http://127.0.0.1:${docPort}/${name}.json`;
const DOC_REDIRECT = `http://127.0.0.1:${cbPort}/cimd-callback`;
const documents = {
  '/tool.json': { client_id: DOC('tool'), client_name: 'CIMD Tool', redirect_uris: [DOC_REDIRECT],
    grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'],
    token_endpoint_auth_method: 'none' },
  '/unmapped.json': { client_id: DOC('unmapped'), client_name: 'Unmapped', redirect_uris: [DOC_REDIRECT],
    token_endpoint_auth_method: 'none' },
  '/mismatch.json': { client_id: 'http://127.0.0.1:1/elsewhere.json', redirect_uris: [DOC_REDIRECT],
    token_endpoint_auth_method: 'none' },
};
const docServer = createHttpServer((req, res) => {
  const doc = documents[req.url];
  if (!doc) { res.writeHead(404); res.end(); return; }
  res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' });
  res.end(JSON.stringify(doc));
});
await new Promise((r) => docServer.listen(docPort, '127.0.0.1', r));
let server;
let stderr = '';
let idp;

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

[oauth]
client_metadata_documents = true
client_metadata_allow_loopback = true

[oauth.clients."${DOC('tool')}"]
agent = "${AGENT}"

[oauth.clients."${CLIENT_ID}"]
redirect_uris = ["${REDIRECT}"]
agent = "${AGENT}"
name = "E2E Desktop Client"

[mcp.servers.fake]
command = ${JSON.stringify(process.execPath)}
args = [${JSON.stringify(fake)}]
`);
  server = spawn(custody, ['serve', '--quickstart', '--config', config, '--listen',
    `127.0.0.1:${custodyPort}`, '--data-dir', join(dir, 'data'), '--log-level', 'info'],
  { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, CUSTODY_LOGIN_CLIENT_SECRET: IDP_SECRET } });
  stderr = '';
  server.stderr.on('data', (d) => { stderr += d; });
  const exited = new Promise((_, reject) => server.on('exit', (code, sig) =>
    reject(new Error(`custody serve exited (${code ?? sig}) before listening\n${stderr}`))));
  const listening = (async () => {
    let adminToken;
    for await (const line of createInterface({ input: server.stdout })) {
      if (!line.startsWith('{')) continue;
      const ev = JSON.parse(line);
      if (ev.event === 'admin_token') adminToken = ev.token;
      if (ev.event === 'listening') return { adminToken };
    }
    throw new Error('custody serve closed stdout before listening');
  })();
  return Promise.race([listening, exited]);
}

async function stopCustody() {
  server.kill('SIGTERM');
  await new Promise((r) => (server.exitCode !== null ? r() : server.on('exit', r)));
  assert.equal(server.exitCode, 0, `custody serve exited with ${server.exitCode ?? server.signalCode}`);
  assert.ok(!/Sanitizer/.test(stderr), 'custody serve reported a sanitizer error');
}

async function http(path, { method, body, token, form } = {}) {
  method ??= body !== undefined ? 'POST' : 'GET';
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
  const r = await fetch(URL_ + path, { method, headers, body: payload, redirect: 'manual' });
  const text = await r.text();
  let json;
  try { json = JSON.parse(text); } catch { json = undefined; }
  return { status: r.status, json, text, headers: r.headers };
}

const claims = (jwt) => JSON.parse(Buffer.from(jwt.split('.')[1], 'base64url').toString());
const s256 = (v) => createHash('sha256').update(v).digest('base64url');

// The SDK's OAuthClientProvider for a pre-registered public client; the "browser" is ours.
class Provider {
  constructor() { this.authUrls = []; }
  get redirectUrl() { return REDIRECT; }
  get clientMetadata() {
    return { client_name: 'E2E Desktop Client', redirect_uris: [REDIRECT], scope: 'fake/echo fake/slow',
      grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'],
      token_endpoint_auth_method: 'none' };
  }
  clientInformation() { return { client_id: CLIENT_ID }; }
  tokens() { return this.saved; }
  saveTokens(t) { this.saved = t; }
  redirectToAuthorization(url) { this.authUrls.push(url); }
  saveCodeVerifier(v) { this.verifier = v; }
  codeVerifier() { return this.verifier; }
  state() { return (this.lastState = randomBytes(16).toString('base64url')); }
}

try {
  idp = await startIdp({ port: idpPort, clientSecret: IDP_SECRET,
    custodyCallbacks: [`${URL_}/oauth2/login/callback`, `${DEV_URL}/oauth2/login/callback`] });
  const { adminToken } = await startCustody();
  assert.ok(adminToken, 'no quickstart admin token');
  assert.match(stderr, /login\.issuer is plain http on a loopback host/, 'no warning for the http IdP');
  const reg = await http('/v1/agents', { token: adminToken, body: {
    name: AGENT, description: 'the desktop assistant', environment: 'dev', business_owner: 'it',
    technical_owner: 'platform', revocation_contact: 'sec@example.com', grants: ['fake/*'],
    client_secret: true } });
  assert.equal(reg.status, 201, reg.text);
  const pub = await http('/v1/policies', { token: adminToken, body: { policies:
    '@id("fake-tools") permit(principal, action == Action::"call_tool", resource in Server::"fake");\n' +
    '@id("no-touch") forbid(principal, action, resource == Tool::"fake/touch");\n' } });
  assert.equal(pub.status, 200, pub.text);

  // --- Discovery: the RFC 8414 metadata names the authorization endpoint and S256 only.
  const as = await http('/.well-known/oauth-authorization-server');
  assert.equal(as.status, 200);
  assert.equal(as.json.authorization_endpoint, `${URL_}/oauth2/authorize`);
  assert.deepEqual(as.json.code_challenge_methods_supported, ['S256']);
  assert.deepEqual(as.json.response_types_supported, ['code']);
  assert.equal(as.json.authorization_response_iss_parameter_supported, true);
  for (const g of ['authorization_code', 'refresh_token']) assert.ok(as.json.grant_types_supported.includes(g), g);
  assert.ok(as.json.token_endpoint_auth_methods_supported.includes('none'));
  console.log('ok RFC 8414 metadata: authorization endpoint, code, S256 only, iss, public clients');

  // --- The SDK client: 401 from the gateway, discovery, authorization request.
  const serverUrl = new URL(`${URL_}/mcp/fake`);
  const provider = new Provider();
  let transport = new sdk.StreamableHTTPClientTransport(serverUrl, { authProvider: provider });
  let client = new sdk.Client({ name: 'oauth-e2e', version: '1.0.0' });
  await assert.rejects(client.connect(transport), (e) => e instanceof sdk.UnauthorizedError);
  assert.equal(provider.authUrls.length, 1, 'the SDK did not start an authorization');
  const authUrl = provider.authUrls[0];
  assert.equal(authUrl.origin + authUrl.pathname, `${URL_}/oauth2/authorize`);
  assert.equal(authUrl.searchParams.get('code_challenge_method'), 'S256');
  assert.equal(authUrl.searchParams.get('resource'), RESOURCE);
  // MCP 2025-11-25 "Scope selection strategy": the 401's scope (the server's tools) comes before
  // the client's own; the RFC 9728 metadata lists the same.
  assert.equal(authUrl.searchParams.get('scope'), 'fake/*');
  const prm = await http('/.well-known/oauth-protected-resource/mcp/fake');
  assert.deepEqual(prm.json.scopes_supported, ['fake/*']);
  console.log('ok the SDK discovered Custody from the 401 and asked with PKCE S256, resource and the 401\'s scope');
  // Narrowed here to two tools, as a client asking for less would, so that the step-up below
  // has a scope to widen.
  authUrl.searchParams.set('scope', 'fake/echo fake/slow');

  // --- The browser: Custody -> IdP login form -> IdP consent -> Custody consent -> the client.
  const browser = new Browser();
  const done = await browser.navigate(authUrl.href, REDIRECT);
  assert.ok(done.redirect, 'the flow did not come back to the client: ' + JSON.stringify(done.page?.text?.slice(0, 500)));
  const back = new URL(done.redirect);
  assert.equal(back.searchParams.get('state'), provider.lastState);
  assert.equal(back.searchParams.get('iss'), URL_, 'RFC 9207 iss');
  const code = back.searchParams.get('code');
  assert.ok(code);
  const consentPage = browser.lastFormPage;
  assert.match(consentPage.text, /E2E Desktop Client/);
  assert.match(consentPage.text, new RegExp(AGENT));
  assert.match(consentPage.text, /fake\/echo/);
  assert.ok(!/(src|href)="https?:/.test(consentPage.text), 'the consent page loads nothing external');
  assert.match(consentPage.headers.get('content-security-policy'), /default-src 'none'/);
  const cookie = browser.log.find((l) => l.setCookie?.startsWith('custody_authz='));
  assert.ok(cookie, 'no browser cookie from Custody');
  assert.match(cookie.setCookie, /HttpOnly/);
  assert.match(cookie.setCookie, /Secure/);
  assert.match(cookie.setCookie, /SameSite=Lax/);
  console.log('ok IdP login form, consent page (client, agent, scopes), cookie HttpOnly; Secure; SameSite=Lax');

  await transport.finishAuth(code);
  const tokens = provider.tokens();
  assert.ok(tokens.access_token && tokens.refresh_token, JSON.stringify(Object.keys(tokens)));
  const at = claims(tokens.access_token);
  assert.equal(at.sub, 'alice');
  assert.equal(at.iss, URL_);
  assert.deepEqual(at.aud, [RESOURCE]);
  assert.equal(at.client_id, CLIENT_ID);
  assert.equal(at.initiator_verification, 'verified');
  assert.match(at.act.sub, new RegExp(`^spiffe://custody\\.local/agent/${AGENT}/instance/`));
  assert.equal(at.scope, 'fake/echo fake/slow');
  console.log('ok code redeemed: RFC 9068 session token, sub = the person, act = a new instance');

  // --- Through the gateway: list and call; the trace names the person and the instance.
  transport = new sdk.StreamableHTTPClientTransport(serverUrl, { authProvider: provider });
  client = new sdk.Client({ name: 'oauth-e2e', version: '1.0.0' });
  await client.connect(transport);
  const { tools } = await client.listTools();
  assert.ok(tools.some((t) => t.name === 'echo'), JSON.stringify(tools.map((t) => t.name)));
  const echo = await client.callTool({ name: 'echo', arguments: { hello: 'oauth' } });
  const receipt = echo._meta?.['dev.custody/receipt'];
  assert.ok(receipt, 'no receipt: ' + JSON.stringify(echo));
  const seen = JSON.stringify(echo.structuredContent ?? echo.content);
  assert.ok(!seen.includes(tokens.access_token), 'the upstream saw the client token');
  let trace;
  for (let i = 0; i < 100; i++) {
    trace = await http(`/v1/trace/${receipt.action_id}`, { token: adminToken });
    if (trace.status === 200) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  assert.equal(trace.status, 200, trace.text);
  assert.equal(trace.json.initiated_by.id, 'alice');
  assert.equal(trace.json.initiated_by.issuer, `http://127.0.0.1:${idpPort}`);
  assert.equal(trace.json.initiated_by.verification, 'verified');
  assert.equal(trace.json.executed_by.agent, AGENT);
  assert.equal(trace.json.executed_by.instance, at.act.sub);
  await client.close();
  console.log('ok tools/list and tools/call through the gateway; the trace names alice (verified) and the instance');

  // --- Refresh with the SDK (rotation); then again after a restart (families in identity.db).
  const before = provider.tokens();
  assert.equal(await sdk.auth(provider, { serverUrl }), 'AUTHORIZED');
  const refreshed = provider.tokens();
  assert.notEqual(refreshed.refresh_token, before.refresh_token, 'the refresh token did not rotate');
  assert.equal(claims(refreshed.access_token).act.sub, at.act.sub, 'a refresh keeps the instance');
  await stopCustody();
  await startCustody();  // the quickstart admin token of the first start stays valid
  assert.equal(await sdk.auth(provider, { serverUrl }), 'AUTHORIZED');
  const afterRestart = provider.tokens();
  assert.notEqual(afterRestart.refresh_token, refreshed.refresh_token);
  transport = new sdk.StreamableHTTPClientTransport(serverUrl, { authProvider: provider });
  client = new sdk.Client({ name: 'oauth-e2e', version: '1.0.0' });
  await client.connect(transport);
  await client.callTool({ name: 'echo', arguments: { again: true } });
  await client.close();
  console.log('ok refresh rotates (same instance), also after a restart; the new token calls tools');

  // --- Step-up: a tool policy allows but the token's scopes do not cover is a 403
  // insufficient_scope naming the wider scope set and the RFC 9728 metadata; the SDK
  // re-authorizes with exactly that scope, and the new token calls the tool.
  // The SDK refreshes first when it holds a refresh token, which cannot widen the scope
  // (typescript-sdk#2255): a client that only holds the access token goes to the browser.
  provider.saveTokens({ ...provider.tokens(), refresh_token: undefined });
  const challenges = [];
  const recording = async (url, init) => {
    const r = await fetch(url, init);
    if (r.status === 403) challenges.push(r.headers.get('www-authenticate'));
    return r;
  };
  transport = new sdk.StreamableHTTPClientTransport(serverUrl, { authProvider: provider, fetch: recording });
  client = new sdk.Client({ name: 'oauth-e2e', version: '1.0.0' });
  await client.connect(transport);
  const asked = provider.authUrls.length;
  await assert.rejects(client.callTool({ name: 'subscriptions', arguments: {} }),
    (e) => e instanceof sdk.UnauthorizedError);
  assert.deepEqual(challenges, [`Bearer error="insufficient_scope", scope="fake/echo fake/slow fake/subscriptions", ` +
    `resource_metadata="${URL_}/.well-known/oauth-protected-resource/mcp/fake"`]);
  assert.equal(provider.authUrls.length, asked + 1, 'the SDK did not re-authorize on the challenge');
  const stepUrl = provider.authUrls.at(-1);
  assert.equal(stepUrl.searchParams.get('scope'), 'fake/echo fake/slow fake/subscriptions');
  const stepped = await browser.navigate(stepUrl.href, REDIRECT);
  assert.ok(stepped.redirect, 'the step-up did not come back: ' + JSON.stringify(stepped.page?.text?.slice(0, 500)));
  await transport.finishAuth(new URL(stepped.redirect).searchParams.get('code'));
  assert.equal(claims(provider.tokens().access_token).scope, 'fake/echo fake/slow fake/subscriptions');
  // A new MCP session: the old one belongs to the narrower token's Custody session.
  await client.close();
  transport = new sdk.StreamableHTTPClientTransport(serverUrl, { authProvider: provider });
  client = new sdk.Client({ name: 'oauth-e2e', version: '1.0.0' });
  await client.connect(transport);
  const widened = await client.callTool({ name: 'subscriptions', arguments: {} });
  assert.ok(!widened.isError, JSON.stringify(widened));
  await client.close();
  console.log('ok step-up: 403 insufficient_scope with the wider scope, the SDK re-authorized with it, the tool answers');

  // --- Refusals. A raw authorization request, through the browser (consent is remembered now).
  const verifier = randomBytes(32).toString('base64url');
  const authorize = (params) => {
    const u = new URL(`${URL_}/oauth2/authorize`);
    const base = { response_type: 'code', client_id: CLIENT_ID, redirect_uri: REDIRECT, state: 'st-1',
      code_challenge: s256(verifier), code_challenge_method: 'S256', resource: RESOURCE, scope: 'fake/echo' };
    for (const [k, v] of Object.entries({ ...base, ...params })) if (v !== undefined) u.searchParams.set(k, v);
    return u.href;
  };
  const refusedAtClient = async (params, error) => {
    const r = await new Browser().request(authorize(params));
    assert.equal(r.status, 302, r.text);
    const to = new URL(r.location);
    assert.equal(to.origin + to.pathname, REDIRECT);
    assert.equal(to.searchParams.get('error'), error, r.location);
    assert.equal(to.searchParams.get('state'), 'st-1');
    assert.equal(to.searchParams.get('iss'), URL_);
    assert.equal(to.searchParams.get('code'), null);
  };
  await refusedAtClient({ code_challenge: undefined, code_challenge_method: undefined }, 'invalid_request');
  await refusedAtClient({ code_challenge: verifier, code_challenge_method: 'plain' }, 'invalid_request');
  await refusedAtClient({ resource: 'https://elsewhere.example/mcp' }, 'invalid_target');
  console.log('ok missing PKCE and plain refused (invalid_request), a wrong resource (invalid_target), with state and iss');
  for (const [params, error] of [[{ redirect_uri: `${REDIRECT}/other` }, 'invalid_request'],
    [{ client_id: 'unknown-client' }, 'invalid_client']]) {
    const r = await new Browser().request(authorize(params));
    assert.equal(r.status, 400, r.text);
    assert.equal(r.location, null, 'an unvalidated redirect URI was used');
    assert.match(r.text, new RegExp(error));
  }
  console.log('ok a redirect URI mismatch and an unknown client (no dev switch) get an error page, never a redirect');

  const codeFor = async () => {
    const b = new Browser();
    const r = await b.navigate(authorize({}), REDIRECT);
    assert.ok(r.redirect, JSON.stringify(r.page?.text?.slice(0, 300)));
    return new URL(r.redirect).searchParams.get('code');
  };
  const redeem = (c, v = verifier, extra = {}) => http('/oauth2/token', { form: true, body: {
    grant_type: 'authorization_code', client_id: CLIENT_ID, code: c, redirect_uri: REDIRECT,
    code_verifier: v, resource: RESOURCE, ...extra } });
  const introspect = async (t) => (await http('/oauth2/introspect', { form: true, token: adminToken, body: { token: t } })).json.active;

  let c = await codeFor();
  let r = await redeem(c, randomBytes(32).toString('base64url'));
  assert.equal(r.status, 400);
  assert.equal(r.json.error, 'invalid_grant');
  assert.equal(r.json.access_token, undefined);
  r = await redeem(c);
  assert.equal(r.json.error, 'invalid_grant', 'a code is spent by a failed redemption');
  console.log('ok a wrong code_verifier is invalid_grant and nothing is issued');

  c = await codeFor();
  r = await redeem(c, verifier, { redirect_uri: `${REDIRECT}/other` });
  assert.equal(r.json.error, 'invalid_grant');
  c = await codeFor();
  const first = await redeem(c);
  assert.equal(first.status, 200, first.text);
  assert.equal(await introspect(first.json.access_token), true);
  const second = await redeem(c);
  assert.equal(second.status, 400);
  assert.equal(second.json.error, 'invalid_grant');
  assert.equal(second.json.access_token, undefined);
  assert.equal(await introspect(first.json.access_token), false, 'the first use was not revoked');
  const rt = await http('/oauth2/token', { form: true, body: { grant_type: 'refresh_token', client_id: CLIENT_ID, refresh_token: first.json.refresh_token } });
  assert.equal(rt.json.error, 'invalid_grant', 'the first use\'s refresh token still works');
  console.log('ok code reuse is invalid_grant and revokes the tokens its first use issued');

  c = await codeFor();
  const a = await redeem(c);
  const refresh = (t) => http('/oauth2/token', { form: true, body: { grant_type: 'refresh_token', client_id: CLIENT_ID, refresh_token: t } });
  const b = await refresh(a.json.refresh_token);
  assert.equal(b.status, 200, b.text);
  const reuse = await refresh(a.json.refresh_token);
  assert.equal(reuse.status, 400);
  assert.equal(reuse.json.error, 'invalid_grant');
  assert.equal(reuse.json.access_token, undefined);
  assert.equal(await introspect(a.json.access_token), false);
  assert.equal(await introspect(b.json.access_token), false, 'the family\'s sessions were not revoked');
  assert.equal((await refresh(b.json.refresh_token)).json.error, 'invalid_grant', 'the family is revoked');
  const sid = claims(b.json.access_token).sid;
  const session = await http(`/v1/sessions/${sid}`, { token: adminToken });
  assert.equal(session.json.session.status, 'revoked', session.text);
  assert.equal(session.json.session.revoke_reason, 'refresh token reused');
  console.log('ok refresh reuse is invalid_grant and revokes the family and its sessions');

  // --- Client ID Metadata Documents: the document gives the name and redirect URIs, the
  // configuration the agent; refused documents are invalid_client on an error page.
  assert.equal(as.json.client_id_metadata_document_supported, true);
  const docVerifier = randomBytes(32).toString('base64url');
  const docAuthorize = (clientId, redirect = DOC_REDIRECT) => {
    const u = new URL(`${URL_}/oauth2/authorize`);
    for (const [k, v] of Object.entries({ response_type: 'code', client_id: clientId, redirect_uri: redirect,
      state: 'doc-1', code_challenge: s256(docVerifier), code_challenge_method: 'S256', resource: RESOURCE })) {
      u.searchParams.set(k, v);
    }
    return u.href;
  };
  const docBrowser = new Browser();
  const docDone = await docBrowser.navigate(docAuthorize(DOC('tool')), DOC_REDIRECT);
  assert.ok(docDone.redirect, JSON.stringify(docDone.page?.text?.slice(0, 500)));
  assert.match(docBrowser.lastFormPage.text, /CIMD Tool/);
  const docCode = new URL(docDone.redirect).searchParams.get('code');
  const docToken = await http('/oauth2/token', { form: true, body: { grant_type: 'authorization_code',
    client_id: DOC('tool'), code: docCode, redirect_uri: DOC_REDIRECT, code_verifier: docVerifier } });
  assert.equal(docToken.status, 200, docToken.text);
  assert.equal(claims(docToken.json.access_token).client_id, DOC('tool'));
  assert.match(claims(docToken.json.access_token).act.sub, new RegExp(`/agent/${AGENT}/instance/`));
  for (const [clientId, redirect, why] of [
    [DOC('tool'), REDIRECT, /not one registered/],
    [DOC('unmapped'), DOC_REDIRECT, /No agent is registered/],
    [DOC('mismatch'), DOC_REDIRECT, /client_id/],
    [DOC('missing'), DOC_REDIRECT, /invalid_client/],
    [`http://127.0.0.1:${await freePort()}/gone.json`, DOC_REDIRECT, /cannot be fetched/]]) {
    const r = await new Browser().request(docAuthorize(clientId, redirect));
    assert.equal(r.status, 400, `${clientId}: ${r.status} ${r.text.slice(0, 300)}`);
    assert.equal(r.location, null);
    assert.match(r.text, why, clientId);
  }
  console.log('ok a Client ID Metadata Document client signs in (its name, redirect URIs; the configured agent); a mismatched, unmapped, missing or unreachable document is invalid_client on an error page');

  // --- Development: a second custody serve lets unknown clients in. The SDK with no client
  // information registers (RFC 7591), signs alice in, and its agent is a dev agent she owns.
  {
    const devDir = join(dir, 'dev');
    const devConfig = join(dir, 'dev.toml');
    writeFileSync(devConfig, `
[login]
issuer = "http://127.0.0.1:${idpPort}"
client_id = "custody"

[oauth]
dev_unknown_clients = true
dynamic_client_registration = true
dev_grants = "fake/*"

[mcp.servers.fake]
command = ${JSON.stringify(process.execPath)}
args = [${JSON.stringify(fake)}]
`);
    const dev = spawn(custody, ['serve', '--quickstart', '--config', devConfig, '--listen',
      `127.0.0.1:${devPort}`, '--data-dir', devDir, '--log-level', 'warn'],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, CUSTODY_LOGIN_CLIENT_SECRET: IDP_SECRET } });
    let devErr = '';
    dev.stderr.on('data', (d) => { devErr += d; });
    let devAdmin;
    try {
      for await (const line of createInterface({ input: dev.stdout })) {
        if (!line.startsWith('{')) continue;
        const ev = JSON.parse(line);
        if (ev.event === 'admin_token') devAdmin = ev.token;
        if (ev.event === 'listening') break;
      }
      assert.match(devErr, /oauth\.dev_unknown_clients is on/);
      const devMeta = await (await fetch(`${DEV_URL}/.well-known/oauth-authorization-server`)).json();
      assert.equal(devMeta.registration_endpoint, `${DEV_URL}/oauth2/register`);
      const pol = await fetch(`${DEV_URL}/v1/policies`, { method: 'POST', headers: {
        authorization: `Bearer ${devAdmin}`, 'content-type': 'application/json' },
      body: JSON.stringify({ policies: '@id("fake") permit(principal, action == Action::"call_tool", resource in Server::"fake");' }) });
      assert.equal(pol.status, 200);
      const DEV_REDIRECT = `http://127.0.0.1:${cbPort}/dev-callback`;
      const devProvider = new Provider();
      Object.defineProperty(devProvider, 'redirectUrl', { get: () => DEV_REDIRECT });
      Object.defineProperty(devProvider, 'clientMetadata', { get: () => ({ client_name: 'Unregistered Tool',
        redirect_uris: [DEV_REDIRECT], grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'], token_endpoint_auth_method: 'none' }) });
      devProvider.clientInformation = function () { return this.registered; };
      devProvider.saveClientInformation = function (info) { this.registered = info; };
      const devServer = new URL(`${DEV_URL}/mcp/fake`);
      let t = new sdk.StreamableHTTPClientTransport(devServer, { authProvider: devProvider });
      let cl = new sdk.Client({ name: 'oauth-e2e-dev', version: '1.0.0' });
      await assert.rejects(cl.connect(t), (e) => e instanceof sdk.UnauthorizedError);
      assert.match(devProvider.registered?.client_id ?? '', /^dcr_/, 'the SDK did not register');
      const devBrowser = new Browser();
      const devDone = await devBrowser.navigate(devProvider.authUrls[0].href, DEV_REDIRECT);
      assert.ok(devDone.redirect, JSON.stringify(devDone.page?.text?.slice(0, 500)));
      assert.match(devBrowser.lastFormPage.text, /Unregistered Tool/);
      assert.match(devBrowser.lastFormPage.text, /development only/);
      await t.finishAuth(new URL(devDone.redirect).searchParams.get('code'));
      const devClaims = claims(devProvider.tokens().access_token);
      assert.equal(devClaims.sub, 'alice');
      const devAgent = devClaims.act.sub.split('/')[4];
      assert.match(devAgent, /^oauth-dev-[0-9a-f]{12}$/);
      const agent = await (await fetch(`${DEV_URL}/v1/agents/${devAgent}`, { headers: { authorization: `Bearer ${devAdmin}` } })).json();
      assert.equal(agent.environment, 'dev');
      assert.match(agent.business_owner, /^alice/);
      t = new sdk.StreamableHTTPClientTransport(devServer, { authProvider: devProvider });
      cl = new sdk.Client({ name: 'oauth-e2e-dev', version: '1.0.0' });
      await cl.connect(t);
      await cl.callTool({ name: 'echo', arguments: { dev: true } });
      await cl.close();
      const reg = await fetch(`${DEV_URL}/oauth2/register`, { method: 'POST', headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ redirect_uris: ['http://evil.example/cb'] }) });
      assert.equal(reg.status, 400);
      assert.equal((await reg.json()).error, 'invalid_redirect_uri');
      console.log('ok development: the SDK registers (RFC 7591), alice signs in, the client acts as a dev agent she owns and calls a tool');
    } finally {
      dev.kill('SIGTERM');
      await new Promise((r) => (dev.exitCode !== null ? r() : dev.on('exit', r)));
      assert.ok(!/Sanitizer/.test(devErr), 'the dev custody serve reported a sanitizer error');
    }
  }

  // --- The ledger: every step recorded; no code, token or secret in any event.
  let all = '';
  for (let i = 0; ; i++) {
    const e = await http(`/v1/ledger/entries/${i}`, { token: adminToken });
    if (e.status !== 200) break;
    all += e.text + '\n';
  }
  for (const kind of ['oauth.sign_in', 'oauth.consent', 'oauth.code_issue', 'oauth.token_issue', 'oauth.reuse', 'token.refuse', 'revocation']) {
    assert.ok(all.includes(kind), `no ${kind} event`);
  }
  for (const secret of [code, tokens.access_token, tokens.refresh_token, a.json.refresh_token, verifier, IDP_SECRET]) {
    assert.ok(!all.includes(secret), 'a secret is in the ledger');
    assert.ok(!stderr.includes(secret), 'a secret is in the log');
  }
  console.log('ok every step is a ledger event; no code, token, verifier or secret in the ledger or the log');

  await stopCustody();
  await idp.close();
  docServer.close();
  cleanup();
  console.log('PASS');
  process.exit(0);
} catch (e) {
  console.error('FAIL', e);
  console.error('--- custody stderr (tail) ---\n' + stderr.slice(-4000));
  cleanup();
  docServer.close();
  process.exit(1);
}
