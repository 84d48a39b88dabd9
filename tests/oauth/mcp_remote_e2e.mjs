// OAuth.McpRemoteE2E: `mcp-remote`, the stdio bridge many desktop MCP hosts use for remote
// servers, signs a person in through Custody and calls a tool.
//
// mcp-remote runs as the host runs it: a stdio process given the gateway URL, here with the
// client ID an operator registered for it (--static-oauth-client-info; its redirect URI is
// mcp-remote's callback server on a fixed port), and nothing about scopes: it asks for the scope
// the gateway's 401 names. On the gateway's 401 it discovers Custody,
// starts the authorization with PKCE and opens "the browser": its `open` dependency runs
// xdg-open, which (no desktop here) runs $BROWSER, a script that hands the URL to this test. The
// test's headless browser (browser.mjs) goes through the IdP's login form and Custody's consent
// page, then delivers the code to mcp-remote's callback server. The test speaks MCP to
// mcp-remote over stdio (initialize, tools/list, tools/call) and checks the trace of the call:
// alice (verified, from the IdP) initiated it, a new instance of the client's agent executed it.
// Its tokens stay in MCP_REMOTE_CONFIG_DIR, a temporary directory.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, writeFileSync, chmodSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { Browser } from './browser.mjs';
import { claims, freePort, startWorld } from './harness.mjs';

let sdk;
try {
  const { Client } = await import('@modelcontextprotocol/sdk/client/index.js');
  const { StdioClientTransport } = await import('@modelcontextprotocol/sdk/client/stdio.js');
  sdk = { Client, StdioClientTransport };
} catch (e) {
  console.error('FAIL: cannot load the test packages; run `npm ci` in tests/oauth (' + e.message + ')');
  process.exit(1);
}

const here = dirname(fileURLToPath(import.meta.url));
const custody = process.argv[2];
const sourceRoot = process.argv[3] ?? join(here, '..', '..');
if (!custody) {
  console.error('usage: node mcp_remote_e2e.mjs /path/to/custody [source root]');
  process.exit(2);
}
const proxy = join(here, 'node_modules', 'mcp-remote', 'dist', 'proxy.js');

const AGENT = 'remote-host';
const CLIENT_ID = 'mcp-remote-e2e';
const cbPort = await freePort();
const CALLBACK = `http://localhost:${cbPort}/oauth/callback`;

// "The browser": what mcp-remote opens arrives here.
const opened = [];
let onOpen = () => {};
const hook = createHttpServer((req, res) => {
  let body = '';
  req.on('data', (d) => { body += d; });
  req.on('end', () => { opened.push(body); res.end(); onOpen(body); });
});
await new Promise((r) => hook.listen(0, '127.0.0.1', r));
const firstOpen = new Promise((resolve) => { onOpen = resolve; });

let w;
let stderr = '';
let client;
try {
  w = await startWorld({ custody, sourceRoot, agent: AGENT, clients: `
[oauth.clients."${CLIENT_ID}"]
redirect_uris = ["${CALLBACK}"]
agent = "${AGENT}"
name = "mcp-remote"
` });
  const browserScript = join(w.dir, 'browser.sh');
  writeFileSync(browserScript, `#!/bin/sh
exec ${JSON.stringify(process.execPath)} -e 'fetch(process.argv[1], { method: "POST", body: process.argv[2] }).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))' ${JSON.stringify(`http://127.0.0.1:${hook.address().port}/`)} "$1"
`);
  chmodSync(browserScript, 0o755);
  const configDir = join(w.dir, 'mcp-auth');

  // The host starts mcp-remote and initializes; mcp-remote signs in first.
  const env = { ...process.env, BROWSER: browserScript, MCP_REMOTE_CONFIG_DIR: configDir };
  for (const k of ['DISPLAY', 'WAYLAND_DISPLAY', 'XDG_CURRENT_DESKTOP', 'DESKTOP_SESSION']) delete env[k];
  const transport = new sdk.StdioClientTransport({
    command: process.execPath,
    // No --static-oauth-client-metadata: mcp-remote asks for the scope the gateway's 401 names.
    args: [proxy, `${w.url}/mcp/fake`, String(cbPort),
      '--static-oauth-client-info', JSON.stringify({ client_id: CLIENT_ID })],
    env, stderr: 'pipe',
  });
  transport.stderr.on('data', (d) => { stderr += d; });
  client = new sdk.Client({ name: 'mcp-remote-e2e-host', version: '1.0.0' });
  const connected = client.connect(transport, { timeout: 60000 });

  const authUrl = new URL(await firstOpen);
  assert.equal(authUrl.origin + authUrl.pathname, `${w.url}/oauth2/authorize`);
  assert.equal(authUrl.searchParams.get('client_id'), CLIENT_ID);
  assert.equal(authUrl.searchParams.get('code_challenge_method'), 'S256');
  assert.equal(authUrl.searchParams.get('redirect_uri'), CALLBACK);
  assert.equal(authUrl.searchParams.get('resource'), `${w.url}/mcp`);  // the gateway's resource
  // MCP 2025-11-25 "Scope selection strategy": the 401's scope (also the RFC 9728 metadata's
  // scopes_supported), the server's tools; Custody narrows it to the agent's grants.
  assert.equal(authUrl.searchParams.get('scope'), 'fake/*');
  console.log('ok mcp-remote discovered Custody from the 401 and opened the authorization URL (PKCE S256, resource, the scope the 401 named)');

  const browser = new Browser();
  const done = await browser.navigate(authUrl.href, CALLBACK);
  assert.ok(done.redirect, 'the flow did not come back to mcp-remote: ' + JSON.stringify(done.page?.text?.slice(0, 500)));
  const back = new URL(done.redirect);
  assert.ok(back.searchParams.get('code'));
  assert.equal(back.searchParams.get('iss'), w.url, 'RFC 9207 iss');
  assert.match(browser.lastFormPage.text, /mcp-remote/);
  assert.match(browser.lastFormPage.text, new RegExp(AGENT));
  const delivered = await browser.request(done.redirect);  // mcp-remote's callback server
  assert.equal(delivered.status, 200, delivered.text);
  await connected;
  console.log('ok IdP login, consent (mcp-remote, its agent), the code delivered to mcp-remote; initialized over stdio');

  const { tools } = await client.listTools();
  assert.ok(tools.some((t) => t.name === 'echo'), JSON.stringify(tools.map((t) => t.name)));
  assert.ok(!tools.some((t) => t.name === 'touch'), 'a tool policy forbids is listed');
  const echo = await client.callTool({ name: 'echo', arguments: { via: 'mcp-remote' } });
  assert.ok(!echo.isError, JSON.stringify(echo));
  const receipt = echo._meta?.['dev.custody/receipt'];
  assert.ok(receipt, 'no receipt: ' + JSON.stringify(echo));

  // The token mcp-remote holds: sub = alice, act = a new instance of the agent.
  const tokenFiles = [];
  const walk = (d) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      if (e.isDirectory()) walk(join(d, e.name));
      else if (e.name.endsWith('_tokens.json')) tokenFiles.push(join(d, e.name));
    }
  };
  walk(configDir);
  assert.equal(tokenFiles.length, 1, 'mcp-remote did not keep its tokens in MCP_REMOTE_CONFIG_DIR');
  const held = JSON.parse(readFileSync(tokenFiles[0], 'utf8'));
  const at = claims(held.access_token);
  assert.equal(at.sub, 'alice');
  assert.equal(at.client_id, CLIENT_ID);
  assert.match(at.act.sub, new RegExp(`^spiffe://custody\\.local/agent/${AGENT}/instance/`));
  assert.equal(at.scope, 'fake/*', 'the scope asked for, within the agent\'s grants');
  assert.ok(held.refresh_token, 'no refresh token issued');

  const trace = await w.trace(receipt.action_id);
  assert.equal(trace.initiated_by.id, 'alice');
  assert.equal(trace.initiated_by.issuer, w.idpIssuer);
  assert.equal(trace.initiated_by.verification, 'verified');
  assert.equal(trace.executed_by.agent, AGENT);
  assert.equal(trace.executed_by.instance, at.act.sub);
  console.log('ok tools/list and tools/call through mcp-remote; the trace names alice (verified) and the instance');

  await client.close();
  assert.equal(opened.length, 1, 'mcp-remote opened the browser more than once');
  assert.ok(!stderr.includes(held.access_token), 'mcp-remote logged the access token');
  await w.stop();
  hook.close();
  w.cleanup();
  console.log('PASS');
  process.exit(0);
} catch (e) {
  console.error('FAIL', e);
  console.error('--- mcp-remote stderr (tail) ---\n' + stderr.slice(-3000));
  console.error('--- custody stderr (tail) ---\n' + (w?.stderr ?? '').slice(-3000));
  try { await client?.close(); } catch { /* the failure above is what matters */ }
  w?.cleanup();
  process.exit(1);
}
