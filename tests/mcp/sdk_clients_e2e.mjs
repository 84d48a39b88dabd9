// Resources and prompts through the MCP gateway, as the official TypeScript SDK client
// (@modelcontextprotocol/sdk, Streamable HTTP) sees them: `custody serve` in front of
// @modelcontextprotocol/server-everything and @modelcontextprotocol/server-filesystem (on a
// temporary directory), both stdio upstreams.
//   node sdk_clients_e2e.mjs /path/to/custody [source root]
// Each upstream runs behind a small tap (written into the temporary directory) that appends
// every line Custody sends to the server's stdin to a log before passing it on, so "never
// reached the server" is observed on the server's side of the pipe, not inferred.
// Checks: resources/list and prompts/list filtered by policy; resources/read and prompts/get
// (with arguments) answered with the server's content plus Custody's receipt, the decision and
// outcome in the ledger; a read or prompt forbidden by Cedar refused (-32001, reasons, receipt),
// recorded as a denial with no outcome, and never forwarded, though the same item is readable
// once the forbid is gone (everything) or through a permitted tool (filesystem); malformed
// params of resources/read and prompts/get refused with -32602, neither recorded nor forwarded.
// Exits non-zero on the first failure; needs `npm ci` in tests/mcp (scripts/test.sh does it).
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

import { claims, loadSdk, referenceServer, registerAgent, request, startCustody, stopCleanly, rejection } from './harness.mjs';
import { tracedWithOutcome } from './traced.mjs';

const { Client, StreamableHTTPClientTransport } = await loadSdk();

const custody = process.argv[2];
if (!custody) {
  console.error('usage: node sdk_clients_e2e.mjs /path/to/custody [source root]');
  process.exit(2);
}
const everything = referenceServer('@modelcontextprotocol/server-everything');
const filesystem = referenceServer('@modelcontextprotocol/server-filesystem');

const AGENT = 'mcp-sdk-clients-agent';
const RECEIPT = 'dev.custody/receipt';
const dir = mkdtempSync(join(tmpdir(), 'custody-mcp-sdk-'));
const fsRoot = join(dir, 'files');
const secretFile = join(fsRoot, 'secret.txt');
const secretText = `the launch code is ${randomBytes(8).toString('hex')}\n`;
const DOC = 'demo://resource/static/document/';
const FORBIDDEN_DOC = DOC + 'features.md';
const ALLOWED_DOC = DOC + 'architecture.md';
let server;
let stderrOf = () => '';

// The tap: `node tap.mjs LOG node SERVER ARGS...` runs the server with its stdin piped through.
const tapScript = join(dir, 'tap.mjs');
const TAP = `import { spawn } from 'node:child_process';
import { appendFileSync, writeFileSync } from 'node:fs';
const [log, cmd, ...args] = process.argv.slice(2);
const child = spawn(cmd, args, { stdio: ['pipe', 'inherit', 'inherit'] });
writeFileSync(log + '.pid', String(child.pid));
child.stdin.on('error', () => {});
process.stdin.on('data', (chunk) => { appendFileSync(log, chunk); child.stdin.write(chunk); });
process.stdin.on('end', () => child.stdin.end());
for (const s of ['SIGTERM', 'SIGINT']) process.on(s, () => child.kill(s));
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
`;

// What an upstream has received so far: its JSON-RPC messages, in order.
const tapLog = (name) => join(dir, `${name}.stdin.log`);
function received(name) {
  if (!existsSync(tapLog(name))) return [];
  return readFileSync(tapLog(name), 'utf8').split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l));
}

function cleanup() {
  if (server && server.exitCode === null) server.kill('SIGKILL');
  for (const name of ['everything', 'fs']) {  // the servers our taps started, if custody died first
    try { process.kill(Number(readFileSync(tapLog(name) + '.pid', 'utf8')), 'SIGKILL'); } catch {}
  }
  rmSync(dir, { recursive: true, force: true });
}

const upstreamConfig = (name, args) => `
[mcp.servers.${name}]
command = ${JSON.stringify(process.execPath)}
args = ${JSON.stringify([tapScript, tapLog(name), process.execPath, ...args])}
`;

// Policy: everything and the filesystem server are open to the agent except one document, one
// prompt and one file. Cedar entity ids are "<server>/<uri>" and "<server>/<name>".
const PERMITS = `
@id("everything-all") permit(principal, action, resource in Server::"everything");
@id("fs-all") permit(principal, action, resource in Server::"fs");
@id("fs-no-secret") forbid(principal, action == Action::"read_resource",
  resource == Resource::"fs/${pathToFileURL(secretFile).href}");
@id("no-team-prompt") forbid(principal, action == Action::"get_prompt",
  resource == Prompt::"everything/completable-prompt");
`;
const NO_FEATURES = `
@id("no-features-doc") forbid(principal, action == Action::"read_resource",
  resource == Resource::"everything/${FORBIDDEN_DOC}");
`;

async function publish(ctx, policies) {
  const r = await request(ctx.url, '/v1/policies', { token: ctx.adminToken, body: { policies } });
  assert.equal(r.status, 200, r.text);
  return r.json.hash;
}

async function connect(ctx, serverName, token) {
  const transport = new StreamableHTTPClientTransport(new URL(`${ctx.url}/mcp/${serverName}`),
    { requestInit: { headers: { authorization: `Bearer ${token}` } } });
  const client = new Client({ name: 'custody-sdk-clients-e2e', version: '1.0.0' });
  await client.connect(transport);
  return { client, transport };
}

// This session's recorded actions (GET /v1/sessions/{sid}/events), by action id.
async function sessionActions(ctx, token) {
  const r = await request(ctx.url, `/v1/sessions/${claims(token).sid}/events`,
    { method: 'GET', token: ctx.adminToken });
  assert.equal(r.status, 200, r.text);
  return new Map(r.json.sessions.flatMap((s) => s.actions).map((a) => [a.action_id, a]));
}

// The receipt proves its ledger event offline, with only the verifier key.
async function assertReceiptVerifies(ctx, receipt, ledgerIndex, want) {
  assert.match(receipt, new RegExp(`^c2sp\\.org/tlog-proof@v1\\nindex ${ledgerIndex}\\n`));
  const entry = await request(ctx.url, `/v1/ledger/entries/${ledgerIndex}`, { method: 'GET' });
  assert.equal(entry.status, 200, entry.text);
  const event = entry.json.event;
  assert.equal(event.kind, 'action.decision');
  for (const [k, v] of Object.entries(want)) assert.deepEqual(event[k] ?? event.request[k], v, `${k} of ${JSON.stringify(event)}`);
  const key = (await request(ctx.url, '/v1/ledger/key', { method: 'GET' })).text.trim();
  const receiptFile = join(dir, `receipt-${ledgerIndex}.txt`);
  const eventFile = join(dir, `event-${ledgerIndex}.json`);
  writeFileSync(receiptFile, receipt);
  writeFileSync(eventFile, JSON.stringify(event));
  const v = spawnSync(custody, ['ledger', 'verify-receipt', '--key', key, '--receipt', receiptFile,
    '--event', eventFile], { encoding: 'utf8' });
  assert.equal(v.status, 0, v.stdout + v.stderr);
  return event;
}

// A refusal by policy, as the SDK client surfaces it: -32001 naming the policy, with the
// refused decision's data.
function assertDenied(e, policyId, policyHash) {
  assert.equal(e.code, -32001, e instanceof Error ? String(e) : JSON.stringify(e));
  assert.match(e.message, new RegExp(`denied by Custody policy: ${policyId}`));
  assert.deepEqual(e.data.reasons, [policyId]);
  assert.match(e.data.action_id, /^[0-9a-f-]{36}$/);
  assert.equal(e.data.policy_hash, policyHash);
  assert.match(e.data.traceparent, /^00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]$/);
  assert.ok(Number.isInteger(e.data.ledger_index), JSON.stringify(e.data));
  return e.data;
}

// --- Resources on server-everything: listing filtered, reads answered with a receipt, a
// forbidden read refused, recorded and never forwarded, and readable once the forbid is gone.
async function checkResources(ctx) {
  const { client } = ctx.everything;
  const caps = client.getServerCapabilities();
  assert.ok(caps.resources && caps.prompts, 'resources/prompts not offered: ' + JSON.stringify(caps));

  const listed = (await client.listResources()).resources.map((r) => r.uri);
  assert.ok(listed.includes(ALLOWED_DOC), `${ALLOWED_DOC} not listed: ${listed}`);
  assert.ok(!listed.includes(FORBIDDEN_DOC), 'a resource the caller may not read was listed');
  assert.ok(listed.length >= 3, `${listed}`);
  console.log(`ok resources/list filtered by policy (${listed.length} listed, ${FORBIDDEN_DOC} hidden)`);

  const read = await client.readResource({ uri: ALLOWED_DOC });
  assert.equal(read.contents[0].uri, ALLOWED_DOC);
  assert.match(read.contents[0].text, /^# Everything Server/);
  const receipt = read._meta?.[RECEIPT];
  assert.ok(receipt, 'no receipt in result._meta: ' + JSON.stringify(read).slice(0, 300));
  assert.equal(receipt.decision, 'allow');
  assert.deepEqual(receipt.reasons, ['everything-all']);
  assert.equal(receipt.policy_hash, ctx.policyHash);
  assert.match(receipt.definition_hash, /^[0-9a-f]{64}$/, 'a listed resource is pinned');
  assert.match(receipt.outcome.event_id, /^[0-9a-f-]{36}$/);
  await assertReceiptVerifies(ctx, receipt.receipt, receipt.ledger_index,
    { decision: 'allow', action: 'read_resource' });
  const traced = await tracedWithOutcome(ctx, receipt.action_id);
  assert.deepEqual(traced.request.target, { id: ALLOWED_DOC, key: `everything/resource:${ALLOWED_DOC}`,
    server: 'everything', type: 'Resource' });
  assert.equal(traced.outcome.status, 'ok');
  assert.equal(traced.outcome.event_id, receipt.outcome.event_id);
  console.log(`ok resources/read returns the document with its receipt (decision at ledger index ${receipt.ledger_index}, verified offline; outcome ok)`);

  const e = await rejection(client.readResource({ uri: FORBIDDEN_DOC }));
  const denial = assertDenied(e, 'no-features-doc', ctx.policyHash);
  await assertReceiptVerifies(ctx, denial.receipt, denial.ledger_index,
    { decision: 'deny', action: 'read_resource', reasons: ['no-features-doc'] });
  // A later permitted read reaches the server and its outcome lands; by then the refused one
  // has neither reached the server nor got an outcome.
  const later = (await client.readResource({ uri: ALLOWED_DOC }))._meta[RECEIPT];
  await tracedWithOutcome(ctx, later.action_id);
  const reads = received('everything').filter((m) => m.method === 'resources/read');
  assert.equal(reads.filter((m) => m.params.uri === ALLOWED_DOC).length, 2, 'the tap missed the permitted reads');
  assert.deepEqual(reads.filter((m) => m.params.uri === FORBIDDEN_DOC), [], 'a denied read reached the server');
  const deniedTrace = await request(ctx.url, `/v1/trace/${denial.action_id}`, { method: 'GET', token: ctx.adminToken });
  assert.equal(deniedTrace.json.decision, 'deny');
  assert.equal(deniedTrace.json.request.target.id, FORBIDDEN_DOC);
  assert.equal(deniedTrace.json.outcome, undefined, 'a denied read has an outcome');
  const recorded = (await sessionActions(ctx, ctx.tokenEverything)).get(denial.action_id);
  assert.equal(recorded?.decision, 'deny', JSON.stringify(recorded));
  assert.equal(recorded.action, 'read_resource');
  assert.equal(recorded.outcome, undefined);
  console.log(`ok a read forbidden by Cedar is refused (-32001, reasons, receipt), recorded as a denial (ledger index ${denial.ledger_index}) with no outcome, and never reaches the server`);

  // The same document is there to read: without the forbid it is listed and served.
  const openHash = await publish(ctx, PERMITS);
  assert.ok((await client.listResources()).resources.some((r) => r.uri === FORBIDDEN_DOC));
  const opened = await client.readResource({ uri: FORBIDDEN_DOC });
  assert.match(opened.contents[0].text, /Features/);
  assert.equal(opened._meta[RECEIPT].policy_hash, openHash);
  ctx.policyHash = await publish(ctx, PERMITS + NO_FEATURES);
  await assertDenied(await rejection(client.readResource({ uri: FORBIDDEN_DOC })), 'no-features-doc', ctx.policyHash);
  console.log('ok the forbidden document is listed and read once the forbid is withdrawn, refused again when it returns');
}

// --- Prompts on server-everything: listing filtered, a prompt with arguments rendered with
// them plus a receipt, a forbidden prompt refused and never forwarded.
async function checkPrompts(ctx) {
  const { client } = ctx.everything;
  const names = (await client.listPrompts()).prompts.map((p) => p.name);
  assert.ok(names.includes('args-prompt') && names.includes('simple-prompt'), `${names}`);
  assert.ok(!names.includes('completable-prompt'), 'a prompt the caller may not get was listed');
  console.log(`ok prompts/list filtered by policy (${names.join(', ')}; completable-prompt hidden)`);

  const city = `Springfield-${randomBytes(3).toString('hex')}`;
  const got = await client.getPrompt({ name: 'args-prompt', arguments: { city, state: 'Oregon' } });
  assert.deepEqual(got.messages, [{ role: 'user', content: { type: 'text', text: `What's weather in ${city}, Oregon?` } }]);
  const receipt = got._meta?.[RECEIPT];
  assert.ok(receipt, 'no receipt in result._meta: ' + JSON.stringify(got));
  assert.equal(receipt.decision, 'allow');
  assert.deepEqual(receipt.reasons, ['everything-all']);
  assert.match(receipt.definition_hash, /^[0-9a-f]{64}$/, 'a listed prompt is pinned');
  await assertReceiptVerifies(ctx, receipt.receipt, receipt.ledger_index, { decision: 'allow', action: 'get_prompt' });
  const traced = await tracedWithOutcome(ctx, receipt.action_id);
  assert.equal(traced.request.target.type, 'Prompt');
  assert.equal(traced.request.target.id, 'args-prompt');
  assert.equal(traced.outcome.status, 'ok');
  const forwarded = received('everything').filter((m) => m.method === 'prompts/get' && m.params.name === 'args-prompt');
  assert.equal(forwarded.length, 1);
  assert.deepEqual(forwarded[0].params.arguments, { city, state: 'Oregon' }, 'the arguments were not passed on as sent');
  console.log('ok prompts/get with arguments returns the rendered messages with them, plus a receipt (outcome ok)');

  const e = await rejection(client.getPrompt({ name: 'completable-prompt',
    arguments: { department: 'Sales', name: 'Eve' } }));
  const denial = assertDenied(e, 'no-team-prompt', ctx.policyHash);
  const later = await client.getPrompt({ name: 'simple-prompt' });
  await tracedWithOutcome(ctx, later._meta[RECEIPT].action_id);
  assert.ok(received('everything').some((m) => m.method === 'prompts/get' && m.params.name === 'simple-prompt'));
  assert.ok(!received('everything').some((m) => m.method === 'prompts/get' && m.params.name === 'completable-prompt'),
    'a denied prompts/get reached the server');
  const recorded = (await sessionActions(ctx, ctx.tokenEverything)).get(denial.action_id);
  assert.equal(recorded?.decision, 'deny', JSON.stringify(recorded));
  assert.equal(recorded.action, 'get_prompt');
  assert.equal(recorded.outcome, undefined);
  console.log('ok a prompt forbidden by Cedar is refused (-32001), recorded as a denial with no outcome, never forwarded');
}

// --- server-filesystem: the file is readable (through a permitted tool), but a resources/read
// of it that Cedar forbids returns no content, is recorded as a denial, and never reaches the
// server; a permitted resources/read does reach it (the server has no resources: its own
// -32601 comes back with the receipt, and the outcome is recorded as an error).
async function checkFilesystem(ctx) {
  const { client, transport } = ctx.fs;
  const caps = client.getServerCapabilities();
  assert.ok(!caps.resources && !caps.prompts, 'offered what server-filesystem lacks: ' + JSON.stringify(caps));

  const viaTool = await client.callTool({ name: 'read_text_file', arguments: { path: secretFile } });
  assert.equal(viaTool.content[0].text, secretText);

  const secretUri = pathToFileURL(secretFile).href;
  const raw = await request(ctx.url, '/mcp/fs', { token: ctx.tokenFs, body: { jsonrpc: '2.0', id: 'deny-1',
    method: 'resources/read', params: { uri: secretUri } }, headers: { accept: 'application/json, text/event-stream',
    'mcp-session-id': transport.sessionId, 'mcp-protocol-version': '2025-06-18' } });
  assert.equal(raw.status, 200, raw.text);
  assert.equal(raw.json.id, 'deny-1');
  assert.equal(raw.json.result, undefined, raw.text);
  assert.ok(!raw.text.includes(secretText.trim()), 'the denied answer carries the file');
  const denial = assertDenied(raw.json.error, 'fs-no-secret', ctx.policyHash);

  const notesUri = pathToFileURL(join(fsRoot, 'notes.txt')).href;
  const upstreamError = await rejection(client.readResource({ uri: notesUri }));
  assert.equal(upstreamError.code, -32601, String(upstreamError));
  const r = upstreamError.data?.[RECEIPT];
  assert.ok(r, 'no receipt with the upstream error: ' + JSON.stringify(upstreamError.data));
  assert.deepEqual(r.reasons, ['fs-all']);
  const traced = await tracedWithOutcome(ctx, r.action_id);
  assert.equal(traced.outcome.status, 'error');
  const reads = received('fs').filter((m) => m.method === 'resources/read');
  assert.deepEqual(reads.map((m) => m.params.uri), [notesUri], 'the tap saw other reads than the permitted one');

  const deniedTrace = await request(ctx.url, `/v1/trace/${denial.action_id}`, { method: 'GET', token: ctx.adminToken });
  assert.equal(deniedTrace.json.decision, 'deny');
  assert.equal(deniedTrace.json.request.target.key, `fs/resource:${secretUri}`);
  assert.equal(deniedTrace.json.outcome, undefined, 'a denied read has an outcome');
  const recorded = (await sessionActions(ctx, ctx.tokenFs)).get(denial.action_id);
  assert.equal(recorded?.decision, 'deny');
  assert.equal(recorded.outcome, undefined);
  console.log('ok server-filesystem: a forbidden resources/read of a readable file carries no content, is recorded as a denial with no outcome, and never reaches the server (a permitted one does)');
}

// --- Malformed params of resources/read and prompts/get: -32602, nothing recorded, nothing
// forwarded. Raw JSON-RPC on the SDK client's MCP session; each carries a marker that would
// show in the server's input if it were passed on.
async function checkMalformedParams(ctx) {
  const { transport, client } = ctx.everything;
  const headers = { accept: 'application/json, text/event-stream', 'mcp-session-id': transport.sessionId,
    'mcp-protocol-version': '2025-06-18' };
  const marker = `malformed-${randomBytes(6).toString('hex')}`;
  const cases = [
    ['resources/read', { marker }],
    ['resources/read', { uri: 42, marker }],
    ['resources/read', { uri: [ALLOWED_DOC], marker }],
    ['resources/read', { uri: { href: ALLOWED_DOC }, marker }],
    ['resources/read', { uri: null, marker }],
    ['resources/read', { uri: '', marker }],
    ['prompts/get', { arguments: { city: 'x' }, marker }],
    ['prompts/get', { name: 7, marker }],
    ['prompts/get', { name: ['args-prompt'], marker }],
    ['prompts/get', { name: 'args-prompt', arguments: `city=${marker}` }],
    ['prompts/get', { name: 'args-prompt', arguments: ['Paris', marker] }],
    ['prompts/get', { name: 'args-prompt', arguments: 5, marker }],
  ];
  const before = (await sessionActions(ctx, ctx.tokenEverything)).size;
  let id = 100;
  for (const [method, params] of cases) {
    const r = await request(ctx.url, '/mcp/everything', { token: ctx.tokenEverything, headers,
      body: { jsonrpc: '2.0', id: ++id, method, params } });
    const what = `${method} ${JSON.stringify(params)}`;
    assert.equal(r.status, 200, `${what}: ${r.status} ${r.text}`);
    assert.equal(r.json.id, id, what);
    assert.equal(r.json.result, undefined, `${what} got a result: ${r.text}`);
    assert.equal(r.json.error?.code, -32602, `${what}: ${r.text}`);
    assert.match(r.json.error.message, method === 'resources/read' ? /params\.uri/ : /params\.(name|arguments)/, what);
  }
  // No params at all is as malformed as empty ones.
  for (const method of ['resources/read', 'prompts/get']) {
    const r = await request(ctx.url, '/mcp/everything', { token: ctx.tokenEverything, headers,
      body: { jsonrpc: '2.0', id: ++id, method } });
    assert.equal(r.json.error?.code, -32602, `${method} without params: ${r.text}`);
  }
  // The SDK client's own calls with missing fields get the same -32602.
  assert.equal((await rejection(client.readResource({}))).code, -32602);
  assert.equal((await rejection(client.getPrompt({ arguments: {} }))).code, -32602);
  // A well-formed read afterwards reaches the server: none of the malformed ones did before it.
  const after = await client.readResource({ uri: ALLOWED_DOC });
  await tracedWithOutcome(ctx, after._meta[RECEIPT].action_id);
  const log = readFileSync(tapLog('everything'), 'utf8');
  assert.ok(log.includes(after._meta[RECEIPT].traceparent.split('-')[1]), 'the tap missed the well-formed read');
  assert.ok(!log.includes(marker), 'a malformed request reached the server');
  const actions = await sessionActions(ctx, ctx.tokenEverything);
  assert.equal(actions.size, before + 1, 'a malformed request was recorded as an action');
  console.log(`ok ${cases.length + 4} malformed resources/read and prompts/get params get -32602, none recorded or forwarded`);
}

// Elicitation, sampling and log notifications through the gateway (the upstream's requests to
// the client, relayed on the call's stream) are checked in relay_e2e.mjs (Mcp.RelayE2E): they
// need a short mcp.request_timeout_ms of their own.

async function main() {
  mkdirSync(fsRoot);
  writeFileSync(join(fsRoot, 'notes.txt'), 'custody was here\n');
  writeFileSync(secretFile, secretText);
  writeFileSync(tapScript, TAP);
  const started = await startCustody(custody, dir, `
[mcp]
request_timeout_ms = 20000
${upstreamConfig('everything', [everything, 'stdio'])}
${upstreamConfig('fs', [filesystem, fsRoot])}`);
  server = started.server;
  stderrOf = started.stderr;
  const ctx = { url: started.url, adminToken: started.adminToken };

  const { session } = await registerAgent(ctx.url, ctx.adminToken, AGENT, ['everything/*', 'fs/*']);
  ctx.tokenEverything = await session();
  ctx.tokenFs = await session();
  ctx.policyHash = await publish(ctx, PERMITS + NO_FEATURES);

  // The gateway offers resources and prompts where the server behind declares them, which it
  // knows once that server's handshake is done; listing tools waits for it.
  const warm = await session();
  for (const name of ['everything', 'fs']) {
    const w = await connect(ctx, name, warm);
    await w.client.listTools();
    await w.client.close();
  }
  ctx.everything = await connect(ctx, 'everything', ctx.tokenEverything);
  ctx.fs = await connect(ctx, 'fs', ctx.tokenFs);

  await checkResources(ctx);
  await checkPrompts(ctx);
  await checkFilesystem(ctx);
  await checkMalformedParams(ctx);

  for (const c of [ctx.everything, ctx.fs]) {
    await c.transport.terminateSession();
    await c.client.close();
  }
}

try {
  await main();
  await stopCleanly(server, stderrOf);
  console.log('PASS mcp sdk clients e2e');
  cleanup();
} catch (e) {
  console.error('FAIL:', e?.stack ?? e);
  const stderr = stderrOf();
  if (stderr) console.error('--- custody serve stderr (last 6 KiB) ---\n' + stderr.slice(-6144));
  cleanup();
  process.exit(1);
}
