// A remote Streamable HTTP upstream end to end: @modelcontextprotocol/server-everything runs as
// its own process in streamableHttp mode, `custody serve` reaches it by URL
// ([mcp.servers.remote] url = ...; HttpUpstream), and the official SDK client talks to Custody.
//   node http_upstream_e2e.mjs /path/to/custody [source root]
// Checks: tools/list through Custody, filtered by policy; an allowed call returns the server's
// real result with a receipt; a forbidden tool is refused (-32001); progress of a long-running
// tool arrives before its result; server-everything killed and restarted on the same port is
// survived (Custody initializes a new upstream session and a later call succeeds); custody
// serve stops cleanly and ends its upstream session with DELETE. Needs `npm ci` in tests/mcp (scripts/test.sh does it).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

import { freePort, loadSdk, referenceServer, registerAgent, request, startCustody, stopCleanly } from './harness.mjs';

const { Client, StreamableHTTPClientTransport } = await loadSdk();

const here = dirname(fileURLToPath(import.meta.url));
const custody = process.argv[2];
if (!custody) {
  console.error('usage: node http_upstream_e2e.mjs /path/to/custody [source root]');
  process.exit(2);
}
const everything = referenceServer('@modelcontextprotocol/server-everything');

const AGENT = 'mcp-http-e2e-agent';
const dir = mkdtempSync(join(tmpdir(), 'custody-mcp-http-'));
let server;       // custody serve
let upstream;     // server-everything
let stderrOf = () => '';
let upstreamLog = '';

function cleanup() {
  if (server && server.exitCode === null) server.kill('SIGKILL');
  if (upstream && upstream.exitCode === null) upstream.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
}


// Starts server-everything's Streamable HTTP transport on `port`; resolves once it listens.
function startEverything(port) {
  const child = spawn(process.execPath, [everything, 'streamableHttp'], {
    env: { ...process.env, PORT: String(port) }, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout.on('data', (d) => { upstreamLog += d; });
  const exited = new Promise((_, reject) => child.on('exit', (code, sig) =>
    reject(new Error(`server-everything exited (${code ?? sig}) before listening\n${upstreamLog}`))));
  const listening = (async () => {
    for await (const line of createInterface({ input: child.stderr })) {
      upstreamLog += line + '\n';
      if (/listening on port/.test(line)) return child;
    }
    throw new Error('server-everything closed stderr before listening');
  })();
  return Promise.race([listening, exited]).then((c) => {
    child.stderr.resume();
    return c;
  });
}

async function stopEverything() {
  if (!upstream || upstream.exitCode !== null) return;
  const gone = new Promise((r) => upstream.on('exit', r));
  upstream.kill('SIGKILL');
  await gone;
}

async function main() {
  const port = await freePort();
  upstream = await startEverything(port);
  process.env.CUSTODY_E2E_UPSTREAM_TOKEN = 'e2e-upstream-credential';
  const started = await startCustody(custody, dir, `
[mcp]
request_timeout_ms = 20000

[mcp.servers.remote]
url = "http://127.0.0.1:${port}/mcp"
headers = { X-Upstream-Token = "\${CUSTODY_E2E_UPSTREAM_TOKEN}" }
`);
  server = started.server;
  stderrOf = started.stderr;
  const { url, adminToken } = started;

  const { session } = await registerAgent(url, adminToken, AGENT, ['remote/*']);
  const token = await session();
  const pub = await request(url, '/v1/policies', { token: adminToken, body: { policies: `
@id("remote-tools") permit(principal, action == Action::"call_tool", resource in Server::"remote");
@id("no-env") forbid(principal, action, resource == Tool::"remote/get-env");
` } });
  assert.equal(pub.status, 200, pub.text);

  const transport = new StreamableHTTPClientTransport(new URL(`${url}/mcp/remote`),
    { requestInit: { headers: { authorization: `Bearer ${token}` } } });
  const client = new Client({ name: 'custody-http-upstream-e2e', version: '1.0.0' });
  await client.connect(transport);
  assert.ok(transport.sessionId, 'no MCP session id issued by Custody');

  const listed = (await client.listTools()).tools.map((t) => t.name);
  assert.ok(listed.includes('echo'), `echo not listed: ${listed}`);
  assert.ok(listed.includes('trigger-long-running-operation'), `${listed}`);
  assert.ok(!listed.includes('get-env'), 'a tool the policy forbids was listed');
  console.log(`ok tools/list through the remote upstream, filtered (${listed.length} tools, get-env hidden)`);

  const echo = await client.callTool({ name: 'echo', arguments: { message: 'hello remote' } });
  assert.equal(echo.content[0].text, 'Echo: hello remote');
  const receipt = echo._meta?.['dev.custody/receipt'];
  assert.ok(receipt, 'no receipt in _meta: ' + JSON.stringify(echo));
  assert.match(receipt.receipt, /^c2sp\.org\/tlog-proof@v1\nindex \d+\n/);
  assert.deepEqual(receipt.reasons, ['remote-tools']);
  console.log(`ok echo returns server-everything's result with a receipt (ledger index ${receipt.ledger_index})`);

  await assert.rejects(client.callTool({ name: 'get-env', arguments: {} }),
    (e) => e.code === -32001 && /no-env/.test(e.message), 'get-env was not refused with its reason');
  console.log('ok a forbidden tool is refused with -32001');

  const progress = [];
  let resultAt = -1;
  const long = await client.callTool({ name: 'trigger-long-running-operation',
    arguments: { duration: 1, steps: 4 } }, undefined, { onprogress: (p) => progress.push(p) });
  resultAt = progress.length;
  assert.match(long.content[0].text, /Long running operation completed/);
  assert.deepEqual(progress.map((p) => p.progress), [1, 2, 3, 4]);
  assert.equal(resultAt, 4, 'progress arrived after the result');
  assert.ok(long._meta['dev.custody/receipt'].outcome.event_id);
  console.log('ok progress notifications of the long-running tool arrive before the result');

  // The upstream dies and comes back on the same port (with no memory of Custody's session).
  await stopEverything();
  upstream = await startEverything(port);
  const again = await client.callTool({ name: 'echo', arguments: { message: 'after restart' } });
  assert.equal(again.content[0].text, 'Echo: after restart');
  const inits = stderrOf().split('\n').filter((l) => /"server":"remote"/.test(l) && /initialized: protocol/.test(l));
  assert.ok(inits.length >= 2, `expected a second upstream handshake, log:\n${stderrOf().slice(-4096)}`);
  assert.ok(!stderrOf().includes('e2e-upstream-credential'), 'a configured header value was logged');
  console.log(`ok a restarted upstream is initialized again and a later call succeeds (${inits.length} handshakes)`);

  await transport.terminateSession();
  await client.close();
}

try {
  await main();
  await stopCleanly(server, stderrOf);
  // server-everything logs each DELETE of a session it knows (its output may trail a little).
  for (let i = 0; i < 100 && !/Received session termination request/.test(upstreamLog); i++) {
    await new Promise((r) => setTimeout(r, 20));
  }
  assert.match(upstreamLog, /Received session termination request/, 'no DELETE of the upstream session');
  console.log('ok custody serve stops cleanly and ends its upstream session (DELETE)');
  console.log('PASS mcp http upstream e2e');
  await stopEverything();
  cleanup();
} catch (e) {
  console.error('FAIL:', e?.stack ?? e);
  const stderr = stderrOf();
  if (stderr) console.error('--- custody serve stderr (last 6 KiB) ---\n' + stderr.slice(-6144));
  if (upstreamLog) console.error('--- server-everything output (last 2 KiB) ---\n' + upstreamLog.slice(-2048));
  cleanup();
  process.exit(1);
}
