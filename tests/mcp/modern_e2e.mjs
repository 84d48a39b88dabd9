// MCP 2026-07-28 ("modern": stateless, each request carries its version, capabilities and client
// in params._meta) and 2025-11-25 served by the same gateway on the same endpoints:
// `custody serve` in front of @modelcontextprotocol/server-everything and the conformance suite's
// reference server (tests/mcp_conformance/everything-server-stdio.ts, run with tsx), both stdio.
//   node modern_e2e.mjs /path/to/custody [source root]
// Checks:
// 1. The released 2026-07-28 client (@modelcontextprotocol/client 2.x, pinned to 2026-07-28)
//    and the 2025-11-25 client (@modelcontextprotocol/sdk 1.x), with one token, calling
//    interleaved (Promise.all): right answers, receipts, the same filtered tools/list, each call
//    attributed to its own era in the ledger, log messages on each call's own stream.
// 2. Raw HTTP: every rung of the validation ladder (-32602, -32020, -32022; HTTP 400) and its
//    order; server/discover; removed methods (404, -32601); resultType, ttlMs, cacheScope and
//    serverInfo on results; handler errors in-band (HTTP 200); -32002 never sent to a modern
//    client; an upstream's elicitation/sampling during a modern call asked through input_required; the
//    ledger's per-request attribution (caller.mcp_protocol, caller.mcp_client).
// 3. Log messages reach a modern call only with _meta logLevel, at that level or more severe.
// Exits non-zero on the first failure; needs `npm ci` in tests/mcp and tests/mcp_conformance
// (scripts/test.sh does both).
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { loadModernSdk, loadSdk, referenceServer, registerAgent, request, startCustody, stopCleanly, rejection } from './harness.mjs';
import { digest, tracedWithOutcome } from './traced.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const custody = process.argv[2];
const sourceRoot = resolve(process.argv[3] ?? join(here, '..', '..'));
if (!custody) {
  console.error('usage: node modern_e2e.mjs /path/to/custody [source root]');
  process.exit(2);
}
const everything = referenceServer('@modelcontextprotocol/server-everything');
const TSX = join(sourceRoot, 'tests/mcp_conformance/node_modules/tsx/dist/loader.mjs');
const CONF_SERVER = join(sourceRoot, 'tests/mcp_conformance/everything-server-stdio.ts');
for (const path of [TSX, CONF_SERVER]) {
  if (!existsSync(path)) {
    console.error(`FAIL: ${path} is missing; run \`npm ci\` in tests/mcp_conformance`);
    process.exit(1);
  }
}

const { Client: LegacyClient, StreamableHTTPClientTransport: LegacyTransport } = await loadSdk();
const { Client: ModernClient, StreamableHTTPClientTransport: ModernTransport } = await loadModernSdk();

const MODERN = '2026-07-28';
const SUPPORTED = [MODERN, '2025-11-25', '2025-06-18', '2025-03-26'];
const PV = 'io.modelcontextprotocol/protocolVersion';
const CAPS = 'io.modelcontextprotocol/clientCapabilities';
const INFO = 'io.modelcontextprotocol/clientInfo';
const LOG_LEVEL = 'io.modelcontextprotocol/logLevel';
const SERVER_INFO = 'io.modelcontextprotocol/serverInfo';
const RECEIPT = 'dev.custody/receipt';
const AGENT = 'mcp-modern-agent';
const REQUEST_TIMEOUT_MS = 2500;  // mcp.request_timeout_ms: a longer upstream call fails
const DOC = 'demo://resource/static/document/architecture.md';
const RAW_CLIENT = { name: 'custody-modern-e2e-raw', version: '0.7.1' };
const LOG_TEXTS = ['Tool execution started', 'Tool processing data', 'Tool execution completed'];

const dir = mkdtempSync(join(tmpdir(), 'custody-mcp-modern-'));
let server;
let stderrOf = () => '';

function cleanup() {
  if (server && server.exitCode === null) server.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
}

const POLICY = `
@id("everything-all") permit(principal, action, resource in Server::"everything");
@id("conf-all") permit(principal, action, resource in Server::"conf");
@id("no-env") forbid(principal, action == Action::"call_tool", resource == Tool::"everything/get-env");
`;

// --- Raw HTTP (node:http, so header values go out byte for byte, whitespace included).

// The JSON-RPC messages of an SSE body (the data lines of each event).
function sseMessages(text) {
  return text.split(/\r?\n\r?\n/).map((event) => event.split(/\r?\n/)
    .filter((l) => l.startsWith('data:')).map((l) => l.slice(5).replace(/^ /, '')).join('\n'))
    .filter((d) => d).map((d) => JSON.parse(d));
}

// POSTs `body` to `path`; resolves once the answer has ended with { status, headers, text,
// messages (every JSON-RPC message, JSON or SSE), json (the response: the message with a result
// or an error) }. A header whose value is undefined is not sent.
function post(ctx, path, body, { headers = {}, token = ctx.token } = {}) {
  const payload = typeof body === 'string' ? body : JSON.stringify(body);
  const { hostname, port } = new URL(ctx.url);
  const h = { 'content-type': 'application/json', accept: 'application/json, text/event-stream',
    authorization: token ? `Bearer ${token}` : undefined, ...headers };
  for (const k of Object.keys(h)) if (h[k] === undefined) delete h[k];
  return new Promise((resolve, reject) => {
    const req = http.request({ hostname, port, path, method: 'POST', headers: h }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { text += d; });
      res.on('end', () => {
        const sse = (res.headers['content-type'] ?? '').includes('text/event-stream');
        let messages = [];
        try { messages = sse ? sseMessages(text) : text ? [JSON.parse(text)] : []; } catch { /* kept in text */ }
        const json = messages.findLast((m) => 'result' in m || 'error' in m);
        resolve({ status: res.statusCode, headers: res.headers, text, messages, json, sse });
      });
    });
    req.on('error', reject);
    req.setTimeout(15000, () => req.destroy(new Error(`no answer to ${payload.slice(0, 200)} in 15 s`)));
    req.end(payload);
  });
}

let nextId = 1;
const NAMED = { 'tools/call': 'name', 'prompts/get': 'name', 'resources/read': 'uri' };

// A 2026-07-28 request as the specification writes it: the _meta claim and the standard
// headers. `meta` and `headers` override the defaults (undefined removes one).
function modern(ctx, path, method, params = {}, { meta = {}, headers = {}, token } = {}) {
  const _meta = { [PV]: MODERN, [CAPS]: {}, [INFO]: RAW_CLIENT, ...meta };
  for (const k of Object.keys(_meta)) if (_meta[k] === undefined) delete _meta[k];
  const named = NAMED[method] && params[NAMED[method]];
  const h = { 'mcp-protocol-version': MODERN, 'mcp-method': method,
    ...(typeof named === 'string' ? { 'mcp-name': named } : {}), ...headers };
  return post(ctx, path, { jsonrpc: '2.0', id: nextId++, method, params: { ...params, _meta } },
    { headers: h, token });
}

// A refusal: HTTP `status` and JSON-RPC `code`, no result.
function assertRefused(r, status, code, what) {
  assert.equal(r.status, status, `${what}: HTTP ${r.status} ${r.text}`);
  assert.equal(r.json?.error?.code, code, `${what}: ${r.text}`);
  assert.equal(r.json.result, undefined, what);
}

// A modern result: HTTP 200, resultType "complete", serverInfo in _meta; the result.
function assertModernResult(r, what, { cacheable = false } = {}) {
  assert.equal(r.status, 200, `${what}: HTTP ${r.status} ${r.text}`);
  assert.ok(r.json?.result, `${what}: no result: ${r.text}`);
  const res = r.json.result;
  assert.equal(res.resultType, 'complete', `${what}: ${r.text}`);
  const info = res._meta?.[SERVER_INFO];
  assert.ok(typeof info?.name === 'string' && info.name && typeof info.version === 'string',
    `${what}: serverInfo: ${r.text}`);
  if (cacheable) {
    assert.equal(res.ttlMs, 0, `${what}: ttlMs: ${r.text}`);
    assert.equal(res.cacheScope, 'private', `${what}: cacheScope: ${r.text}`);
  }
  assert.equal(r.headers['mcp-session-id'], undefined, `${what}: a modern answer opened a session`);
  return res;
}

const receiptOf = (res, what) => {
  const rc = res?._meta?.[RECEIPT];
  assert.ok(rc, `${what}: no receipt: ${JSON.stringify(res)}`);
  assert.equal(rc.decision, 'allow', what);
  assert.match(rc.action_id, /^[0-9a-f-]{36}$/, what);
  assert.ok(Number.isInteger(rc.ledger_index), what);
  assert.match(rc.receipt, new RegExp(`^c2sp\\.org/tlog-proof@v1\\nindex ${rc.ledger_index}\\n`), what);
  return rc;
};

const textOf = (result) => result.content.map((c) => c.text).join('\n');
const b64 = (s) => `=?base64?${Buffer.from(s, 'utf8').toString('base64')}?=`;

// Who the ledger's decision event says called: context.caller of the event itself, as
// GET /v1/ledger/entries serves it (and as the trace shows it).
async function callerOf(ctx, receipt) {
  const entry = await request(ctx.url, `/v1/ledger/entries/${receipt.ledger_index}`, { method: 'GET' });
  assert.equal(entry.status, 200, entry.text);
  const event = entry.json.event;
  assert.equal(event.kind, 'action.decision', entry.text);
  assert.equal(event.event_id, receipt.action_id, entry.text);
  const t = await request(ctx.url, `/v1/trace/${receipt.action_id}`, { method: 'GET', token: ctx.adminToken });
  assert.equal(t.status, 200, t.text);
  assert.deepEqual(t.json.allowed_by.context.caller, event.context.caller, t.text);
  return event.context.caller;
}

// --- SDK clients, with what went over the wire kept on the side: every POST (its headers and
// message) and every SSE message, by the POST that opened the stream.
function wireTap() {
  const wire = { posts: [], streams: [] };
  wire.fetch = async (url, init) => {
    const body = init?.method === 'POST' && typeof init.body === 'string' ? JSON.parse(init.body) : null;
    if (body) wire.posts.push({ headers: new Headers(init.headers), body });
    const res = await fetch(url, init);
    if (!(res.headers.get('content-type') ?? '').includes('text/event-stream') || !res.body) return res;
    const [forSdk, forUs] = res.body.tee();
    const stream = { request: body, messages: [] };
    stream.ended = new Response(forUs).text().then((t) => { stream.messages = sseMessages(t); }, () => {});
    wire.streams.push(stream);
    return new Response(forSdk, { status: res.status, statusText: res.statusText, headers: res.headers });
  };
  return wire;
}

async function connectModern(ctx, path, token, name) {
  const wire = wireTap();
  const transport = new ModernTransport(new URL(ctx.url + path),
    { requestInit: { headers: { authorization: `Bearer ${token}` } }, fetch: wire.fetch });
  const info = { name, version: '2.4.0-e2e' };
  const client = new ModernClient(info, { versionNegotiation: { mode: { pin: MODERN } } });
  await client.connect(transport);
  return { client, transport, wire, info };
}

async function connectLegacy(ctx, path, token) {
  const wire = wireTap();
  const transport = new LegacyTransport(new URL(ctx.url + path),
    { requestInit: { headers: { authorization: `Bearer ${token}` } }, fetch: wire.fetch });
  const client = new LegacyClient({ name: 'custody-modern-e2e-legacy', version: '1.0.0' });
  await client.connect(transport);
  return { client, transport, wire };
}

// The log messages on the stream of the POST whose message had JSON-RPC id `id`.
async function logsOnStreamOf(wire, id) {
  const s = wire.streams.find((x) => x.request?.id === id);
  if (!s) return [];
  await s.ended;
  return s.messages.filter((m) => m.method === 'notifications/message').map((m) => m.params);
}

// 1. Both eras at once, on the same token and endpoints. Log messages come from the conformance
// server during calls to it; a stdio upstream does not say which call a log message belongs to,
// so in each round only one client has a call in flight there (the gateway gives a message to
// nobody when calls of several clients are), while both clients call server-everything.
async function checkBothEras(ctx) {
  const token = await ctx.session();
  const m = await connectModern(ctx, '/mcp/everything', token, 'custody-modern-e2e-sdk2');
  const l = await connectLegacy(ctx, '/mcp/everything', token);
  const mc = await connectModern(ctx, '/mcp/conf', token, 'custody-modern-e2e-sdk2-conf');
  const lc = await connectLegacy(ctx, '/mcp/conf', token);
  assert.equal(m.client.getProtocolEra(), 'modern');
  // Stateless: no initialize, no session; the first request is server/discover.
  assert.ok(!m.wire.posts.some((p) => p.body.method === 'initialize'), 'the 2026-07-28 client initialized');
  assert.equal(m.wire.posts[0].body.method, 'server/discover');
  assert.ok(l.transport.sessionId, 'the 2025-11-25 client got no Mcp-Session-Id');
  assert.deepEqual(m.client.getServerCapabilities()?.tools, { listChanged: true });

  const logging = (c, meta) => c.client.callTool({ name: 'test_tool_with_logging', arguments: {}, ...(meta && { _meta: meta }) });
  const logged = (r) => assert.equal(textOf(r), 'Tool with logging executed successfully');
  const rounds = [
    ['modern', 'logging at info', () => logging(mc, { [LOG_LEVEL]: 'info' }), logged],
    ['legacy', 'logging', () => logging(lc), logged],
    ['modern', 'logging, no logLevel', () => logging(mc), logged],
  ];
  const jobs = [];
  let results = [];
  for (const [round, conf] of rounds.entries()) {
    const batch = [];
    for (let j = 0; j < 3; j++) {
      const i = round * 3 + j;
      batch.push(['modern', `sum ${i}`, () => m.client.callTool({ name: 'get-sum', arguments: { a: i, b: 1000 } }),
        (r) => assert.equal(textOf(r), `The sum of ${i} and 1000 is ${i + 1000}.`)]);
      batch.push(['legacy', `sum ${i}`, () => l.client.callTool({ name: 'get-sum', arguments: { a: i, b: 2000 } }),
        (r) => assert.equal(textOf(r), `The sum of ${i} and 2000 is ${i + 2000}.`)]);
      batch.push(['modern', `echo ${i}`, () => m.client.callTool({ name: 'echo', arguments: { message: `modern ${i}` } }),
        (r) => assert.equal(textOf(r), `Echo: modern ${i}`)]);
      batch.push(['legacy', `echo ${i}`, () => l.client.callTool({ name: 'echo', arguments: { message: `legacy ${i}` } }),
        (r) => assert.equal(textOf(r), `Echo: legacy ${i}`)]);
    }
    batch.splice(2, 0, conf);  // the conformance server's call, amid the others
    jobs.push(...batch);
    results = results.concat(await Promise.all(batch.map((b) => b[2]())));
  }
  const tail = [
    ['modern', 'read', () => m.client.readResource({ uri: DOC }), (r) => assert.equal(r.contents[0].uri, DOC)],
    ['legacy', 'read', () => l.client.readResource({ uri: DOC }), (r) => assert.equal(r.contents[0].uri, DOC)],
    ['modern', 'prompt', () => m.client.getPrompt({ name: 'args-prompt', arguments: { city: 'Lyon' } }),
      (r) => assert.equal(r.messages[0].content.text, "What's weather in Lyon?")],
    ['legacy', 'prompt', () => l.client.getPrompt({ name: 'args-prompt', arguments: { city: 'Oslo' } }),
      (r) => assert.equal(r.messages[0].content.text, "What's weather in Oslo?")],
  ];
  jobs.push(...tail);
  const lists = Promise.all([m.client.listTools(), l.client.listTools()]);
  results = results.concat(await Promise.all(tail.map((t) => t[2]())));
  const receipts = [];
  for (const [i, [era, what, , check]] of jobs.entries()) {
    check(results[i]);
    receipts.push([era, receiptOf(results[i], `${era} ${what}`)]);
  }
  assert.equal(new Set(receipts.map(([, r]) => r.action_id)).size, receipts.length, 'an action id was reused');

  const [mt, lt] = (await lists).map((x) => x.tools.map((t) => t.name).sort());
  assert.deepEqual(mt, lt, 'the two eras were listed different tools');
  assert.ok(mt.includes('get-sum') && mt.includes('echo'), mt.join());
  assert.ok(!mt.includes('get-env'), 'a tool the policy forbids was listed');

  // A denial, in both eras: -32001 with the refused decision's receipt.
  for (const c of [m.client, l.client]) {
    const e = await rejection(c.callTool({ name: 'get-env', arguments: {} }));
    assert.equal(e.code, -32001, String(e));
    assert.deepEqual(e.data.reasons, ['no-env']);
    assert.match(e.data.receipt, /^c2sp\.org\/tlog-proof@v1\n/);
  }

  // Each call is attributed to its own era in the ledger, however they interleaved.
  for (const [i, [era, r]] of receipts.entries()) {
    const caller = await callerOf(ctx, r);
    const who = jobs[i][1].startsWith('logging') ? (era === 'modern' ? mc : lc) : (era === 'modern' ? m : l);
    if (era === 'modern') {
      assert.deepEqual(caller, { mcp_protocol: MODERN, mcp_client: who.info }, JSON.stringify(caller));
    } else {
      assert.deepEqual(caller, { mcp_session: who.transport.sessionId }, JSON.stringify(caller));
    }
  }
  // What went over the wire from the 2026-07-28 clients: no session, the standard headers.
  for (const p of [...m.wire.posts, ...mc.wire.posts]) {
    assert.equal(p.headers.get('mcp-session-id'), null, 'the 2026-07-28 client sent a session id');
    assert.equal(p.headers.get('mcp-protocol-version'), MODERN);
    assert.equal(p.body.params._meta[PV], MODERN);
  }

  // The log messages: on the stream of the call they came during, for the modern client only
  // with logLevel; nothing on any stream of server-everything's calls.
  const idsOf = (wire) => wire.posts.filter((p) => p.body.method === 'tools/call').map((p) => p.body.id);
  const [withLevel, without] = idsOf(mc.wire);
  const [legacyCall] = idsOf(lc.wire);
  const expected = LOG_TEXTS.map((data) => ({ level: 'info', data }));
  const strip = (ps) => ps.map(({ level, data }) => ({ level, data }));
  assert.deepEqual(strip(await logsOnStreamOf(mc.wire, withLevel)), expected, 'modern call with logLevel info');
  assert.deepEqual(strip(await logsOnStreamOf(lc.wire, legacyCall)), expected, 'legacy call');
  assert.deepEqual(await logsOnStreamOf(mc.wire, without), [], 'modern call without logLevel got log messages');
  for (const c of [m, l]) {
    for (const s of c.wire.streams.filter((x) => x.request)) {  // not the legacy GET stream
      await s.ended;
      assert.ok(!s.messages.some((x) => x.method === 'notifications/message'), 'a log message reached another call');
    }
  }

  await l.transport.terminateSession();
  await lc.transport.terminateSession();
  for (const c of [m, l, mc, lc]) await c.client.close();
  console.log(`ok a 2026-07-28 SDK client and a 2025-11-25 SDK client on one token, ${jobs.length} calls ` +
    'interleaved: right answers with receipts, the same filtered tools/list, denials in both eras, ' +
    'each call attributed to its own era and client in the ledger, log messages on their call\'s stream');
}

// 2a. The validation ladder, rung by rung, each against a request that otherwise succeeds.
async function checkLadder(ctx) {
  const P = '/mcp/everything';
  const sum = { name: 'get-sum', arguments: { a: 2, b: 3 } };
  const ok = async (r, what) => {
    const res = assertModernResult(r, what);
    assert.equal(textOf(res), 'The sum of 2 and 3 is 5.', what);
    receiptOf(res, what);
  };
  await ok(await modern(ctx, P, 'tools/call', sum), 'the well-formed request');

  // The bearer token is still required.
  const anon = await modern(ctx, P, 'tools/call', sum, { token: null });
  assert.equal(anon.status, 401, anon.text);
  assert.match(anon.headers['www-authenticate'] ?? '', /^Bearer resource_metadata="[^"]+\/mcp\/everything"/);

  // Malformed _meta: -32602 (before any header check: the header disagrees too in the first).
  const malformed = [
    ['protocolVersion a number', { [PV]: 20260728 }],
    ['clientCapabilities missing', { [CAPS]: undefined }],
    ['clientCapabilities an array', { [CAPS]: [] }],
    ['clientCapabilities a string', { [CAPS]: 'all' }],
    ['clientCapabilities null', { [CAPS]: null }],
    ['clientInfo a string', { [INFO]: 'me' }],
    ['clientInfo an array', { [INFO]: [RAW_CLIENT] }],
  ];
  for (const [what, meta] of malformed) {
    assertRefused(await modern(ctx, P, 'tools/call', sum, { meta }), 400, -32602, what);
  }
  assertRefused(await modern(ctx, P, 'tools/call', sum,
    { meta: { [CAPS]: undefined }, headers: { 'mcp-protocol-version': '2025-11-25', 'mcp-method': 'tools/list' } }),
  400, -32602, 'malformed _meta and mismatched headers');
  const anonymous = await modern(ctx, P, 'tools/call', sum, { meta: { [INFO]: undefined } });
  await ok(anonymous, 'no clientInfo (optional)');
  assert.equal((await callerOf(ctx, anonymous.json.result._meta[RECEIPT])).mcp_protocol, MODERN);

  // MCP-Protocol-Version different from the claim: -32020, before the version gate.
  assertRefused(await modern(ctx, P, 'tools/call', sum, { headers: { 'mcp-protocol-version': '2025-11-25' } }),
    400, -32020, 'MCP-Protocol-Version 2025-11-25 with a 2026-07-28 claim');
  assertRefused(await modern(ctx, P, 'tools/call', sum, { meta: { [PV]: '2099-01-01' } }),
    400, -32020, 'a 2099-01-01 claim with MCP-Protocol-Version 2026-07-28');

  // Mcp-Method different from the body: -32020, compared case-sensitively, whitespace stripped,
  // and before the version gate.
  assertRefused(await modern(ctx, P, 'tools/call', sum, { headers: { 'mcp-method': 'tools/list' } }),
    400, -32020, 'Mcp-Method tools/list on tools/call');
  assertRefused(await modern(ctx, P, 'tools/call', sum, { headers: { 'mcp-method': 'Tools/Call' } }),
    400, -32020, 'Mcp-Method in another case');
  await ok(await modern(ctx, P, 'tools/call', sum, { headers: { 'mcp-method': ' \ttools/call  ' } }),
    'Mcp-Method with surrounding whitespace');
  assertRefused(await modern(ctx, P, 'tools/call', sum,
    { meta: { [PV]: '2099-01-01' }, headers: { 'mcp-protocol-version': '2099-01-01', 'mcp-method': 'tools/list' } }),
  400, -32020, 'Mcp-Method mismatch with an unsupported version');

  // An unsupported version: -32022 naming every supported one (2026-07-28 first) and the one
  // requested; it comes before the missing-header checks.
  for (const [what, headers] of [
    ['unsupported version', { 'mcp-protocol-version': '2099-01-01' }],
    ['unsupported version, no MCP-Protocol-Version', { 'mcp-protocol-version': undefined }],
    ['unsupported version, no Mcp-Method', { 'mcp-protocol-version': '2099-01-01', 'mcp-method': undefined }],
  ]) {
    const r = await modern(ctx, P, 'tools/call', sum, { meta: { [PV]: '2099-01-01' }, headers });
    assertRefused(r, 400, -32022, what);
    assert.deepEqual(r.json.error.data?.supported, SUPPORTED, `${what}: ${r.text}`);
    assert.equal(r.json.error.data.requested, '2099-01-01', `${what}: ${r.text}`);
  }

  // Missing standard headers: -32020.
  assertRefused(await modern(ctx, P, 'tools/call', sum, { headers: { 'mcp-protocol-version': undefined } }),
    400, -32020, 'no MCP-Protocol-Version');
  assertRefused(await modern(ctx, P, 'tools/list', {}, { headers: { 'mcp-method': undefined } }),
    400, -32020, 'no Mcp-Method');

  // Mcp-Name: params.name of tools/call and prompts/get, params.uri of resources/read.
  const name = (v) => ({ headers: { 'mcp-name': v } });
  assertRefused(await modern(ctx, P, 'tools/call', sum, name(undefined)), 400, -32020, 'tools/call, no Mcp-Name');
  assertRefused(await modern(ctx, P, 'tools/call', sum, name('echo')), 400, -32020, 'tools/call, Mcp-Name of another tool');
  assertRefused(await modern(ctx, P, 'tools/call', sum, name('GET-SUM')), 400, -32020, 'Mcp-Name in another case');
  await ok(await modern(ctx, P, 'tools/call', sum, name('  get-sum\t')), 'Mcp-Name with surrounding whitespace');
  await ok(await modern(ctx, P, 'tools/call', sum, name(b64('get-sum'))), 'Mcp-Name in base64');
  assertRefused(await modern(ctx, P, 'tools/call', sum, name(b64('get-sums'))), 400, -32020, 'Mcp-Name in base64, another name');
  assertRefused(await modern(ctx, P, 'tools/call', sum, name('=?base64?!!not base64!!?=')), 400, -32020, 'Mcp-Name, bad base64');
  // A name that is not ASCII travels base64-encoded: it passes the ladder and reaches the
  // handler, which knows no such tool (-32602 in-band).
  const weird = 'météo-☂';
  const unknown = await modern(ctx, P, 'tools/call', { name: weird, arguments: {} }, name(b64(weird)));
  assert.equal(unknown.status, 200, unknown.text);
  assert.equal(unknown.json?.error?.code, -32602, unknown.text);
  assertRefused(await modern(ctx, P, 'tools/call', { name: weird, arguments: {} }, name(b64('meteo-?'))),
    400, -32020, 'a non-ASCII name, base64 of another');
  // tools/call without a name: nothing for Mcp-Name to match; the handler refuses it in-band.
  const nameless = await modern(ctx, P, 'tools/call', { arguments: {} });
  assert.equal(nameless.status, 200, nameless.text);
  assert.equal(nameless.json?.error?.code, -32602, nameless.text);

  const prompt = { name: 'args-prompt', arguments: { city: 'Quito' } };
  const p = assertModernResult(await modern(ctx, P, 'prompts/get', prompt), 'prompts/get');
  assert.equal(p.messages[0].content.text, "What's weather in Quito?");
  receiptOf(p, 'prompts/get');
  assertRefused(await modern(ctx, P, 'prompts/get', prompt, name(undefined)), 400, -32020, 'prompts/get, no Mcp-Name');
  assertRefused(await modern(ctx, P, 'prompts/get', prompt, name('simple-prompt')), 400, -32020, 'prompts/get, another Mcp-Name');
  const read = assertModernResult(await modern(ctx, P, 'resources/read', { uri: DOC }), 'resources/read', { cacheable: true });
  assert.equal(read.contents[0].uri, DOC);
  receiptOf(read, 'resources/read');
  assertRefused(await modern(ctx, P, 'resources/read', { uri: DOC }, name(undefined)), 400, -32020, 'resources/read, no Mcp-Name');
  assertRefused(await modern(ctx, P, 'resources/read', { uri: DOC }, name(DOC.replace('architecture', 'features'))),
    400, -32020, 'resources/read, Mcp-Name of another resource');

  // No claim, but the header says 2026-07-28: the _meta a modern request needs is missing.
  const noClaim = await post(ctx, P, { jsonrpc: '2.0', id: nextId++, method: 'tools/list', params: {} },
    { headers: { 'mcp-protocol-version': MODERN, 'mcp-method': 'tools/list' } });
  assertRefused(noClaim, 400, -32602, 'no _meta claim, MCP-Protocol-Version 2026-07-28');
  const otherMeta = await post(ctx, P, { jsonrpc: '2.0', id: nextId++, method: 'tools/list',
    params: { _meta: { [CAPS]: {}, progressToken: 'p' } } },
  { headers: { 'mcp-protocol-version': MODERN, 'mcp-method': 'tools/list' } });
  assertRefused(otherMeta, 400, -32602, '_meta without the version claim, MCP-Protocol-Version 2026-07-28');
  console.log('ok the 2026-07-28 validation ladder: malformed _meta -32602, header/body mismatches -32020, ' +
    'unsupported version -32022 {supported, requested}, then missing headers -32020, Mcp-Name ' +
    '(whitespace, case, base64) for tools/call, prompts/get and resources/read; all HTTP 400, in that order');
}

// A legacy initialize on `path` (raw): its result and session id.
async function legacyInit(ctx, path) {
  const r = await post(ctx, path, { jsonrpc: '2.0', id: nextId++, method: 'initialize', params: {
    protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'raw-legacy', version: '1' } } });
  assert.equal(r.status, 200, r.text);
  return { result: r.json.result, sid: r.headers['mcp-session-id'] };
}

// 2b. server/discover on each endpoint, against what a 2025-11-25 initialize there says.
async function checkDiscover(ctx) {
  const want = {
    '/mcp/everything': ['completions', 'logging', 'prompts', 'resources', 'tools'],
    '/mcp/conf': ['completions', 'logging', 'prompts', 'resources', 'tools'],
    '/mcp': ['prompts', 'resources', 'tools'],  // every server's, named for it (aggregate.cc)
  };
  for (const [path, keys] of Object.entries(want)) {
    const d = await modern(ctx, path, 'server/discover');
    const res = assertModernResult(d, `server/discover on ${path}`, { cacheable: true });
    assert.deepEqual(res.supportedVersions, SUPPORTED, d.text);
    assert.deepEqual(res.capabilities.tools, { listChanged: true }, d.text);
    const got = Object.keys(res.capabilities).sort();
    assert.deepEqual(got, keys, `capabilities on ${path}: ${d.text}`);
    assert.ok(typeof res.instructions === 'string' && res.instructions.length > 0, d.text);
    const legacy = await legacyInit(ctx, path);
    assert.deepEqual(res._meta[SERVER_INFO], legacy.result.serverInfo, `serverInfo on ${path}`);
    assert.equal(res.instructions, legacy.result.instructions, `instructions on ${path}`);
    assert.equal(res.serverInfo, undefined, 'serverInfo belongs in _meta (spec PR #3002)');
    // What the upstream declared, the 2025-11-25 initialize offers too: the eras agree.
    for (const k of got) assert.ok(k in legacy.result.capabilities, `${k} on ${path}: only in discover`);
  }
  // Discover needs the _meta a modern request carries, too.
  assertRefused(await modern(ctx, '/mcp/everything', 'server/discover', {}, { meta: { [CAPS]: undefined } }),
    400, -32602, 'server/discover without clientCapabilities');
  console.log('ok server/discover: supportedVersions, capabilities as the upstream declared them ' +
    '(tools only on /mcp), instructions and serverInfo as initialize gives them, ttlMs 0, private, no session');
}

// 2c. Methods 2026-07-28 removed, and unknown ones: 404 with -32601.
async function checkRemoved(ctx) {
  const cases = [
    ['ping', {}],
    ['logging/setLevel', { level: 'debug' }],
    ['resources/subscribe', { uri: DOC }],
    ['resources/unsubscribe', { uri: DOC }],
    ['initialize', { protocolVersion: MODERN, capabilities: {}, clientInfo: RAW_CLIENT }],
    ['tools/frobnicate', {}],
  ];
  for (const [method, params] of cases) {
    for (const path of ['/mcp/conf', '/mcp']) {
      const r = await modern(ctx, path, method, params);
      assertRefused(r, 404, -32601, `${method} on ${path}`);
      assert.equal(r.headers['mcp-session-id'], undefined, `${method} on ${path} opened a session`);
    }
  }
  console.log(`ok ${cases.map((c) => c[0]).join(', ')} in 2026-07-28: HTTP 404 with -32601`);
}

// 2d. The shape of modern results, handler errors in-band, and per-request attribution.
async function checkResults(ctx) {
  const P = '/mcp/everything';
  const list = (method) => modern(ctx, P, method);
  const tools = assertModernResult(await list('tools/list'), 'tools/list', { cacheable: true });
  const names = tools.tools.map((t) => t.name);
  assert.ok(names.includes('get-sum') && !names.includes('get-env'), names.join());
  for (const [method, key] of [['resources/list', 'resources'], ['resources/templates/list', 'resourceTemplates'],
    ['prompts/list', 'prompts']]) {
    const res = assertModernResult(await list(method), method, { cacheable: true });
    assert.ok(Array.isArray(res[key]) && res[key].length > 0, `${method}: ${JSON.stringify(res).slice(0, 300)}`);
  }
  const done = assertModernResult(await modern(ctx, '/mcp/conf', 'completion/complete', {
    ref: { type: 'ref/prompt', name: 'test_prompt_with_arguments' }, argument: { name: 'arg1', value: 'x' } }),
  'completion/complete');
  assert.ok(Array.isArray(done.completion?.values), JSON.stringify(done));
  const aggregate = assertModernResult(await modern(ctx, '/mcp', 'tools/list'), 'tools/list on /mcp', { cacheable: true });
  assert.ok(aggregate.tools.some((t) => t.name === 'everything__get-sum'), 'the aggregate list lacks everything__get-sum');
  const viaAggregate = assertModernResult(await modern(ctx, '/mcp', 'tools/call',
    { name: 'conf__test_simple_text', arguments: {} }), 'tools/call on /mcp');
  receiptOf(viaAggregate, 'tools/call on /mcp');

  // A policy denial is the handler's answer: HTTP 200, -32001, the refused decision's receipt.
  const denied = await modern(ctx, P, 'tools/call', { name: 'get-env', arguments: {} });
  assert.equal(denied.status, 200, denied.text);
  assert.equal(denied.json?.error?.code, -32001, denied.text);
  assert.deepEqual(denied.json.error.data.reasons, ['no-env']);
  assert.match(denied.json.error.data.receipt, /^c2sp\.org\/tlog-proof@v1\n/);
  const deniedCaller = await callerOf(ctx, denied.json.error.data);
  assert.deepEqual(deniedCaller, { mcp_protocol: MODERN, mcp_client: RAW_CLIENT });

  // Attribution is per request: one token, two clients' infos, and a legacy session beside them.
  const other = { name: 'another-modern-client', version: '3.1.4' };
  const [a, b] = await Promise.all([RAW_CLIENT, other].map(async (info) => receiptOf(assertModernResult(
    await modern(ctx, P, 'tools/call', { name: 'echo', arguments: { message: info.name } }, { meta: { [INFO]: info } }),
    info.name), info.name)));
  assert.deepEqual(await callerOf(ctx, a), { mcp_protocol: MODERN, mcp_client: RAW_CLIENT });
  assert.deepEqual(await callerOf(ctx, b), { mcp_protocol: MODERN, mcp_client: other });
  const { sid } = await legacyInit(ctx, P);
  const legacy = await post(ctx, P, { jsonrpc: '2.0', id: nextId++, method: 'tools/call',
    params: { name: 'echo', arguments: { message: 'legacy' } } },
  { headers: { 'mcp-session-id': sid, 'mcp-protocol-version': '2025-11-25' } });
  assert.equal(legacy.status, 200, legacy.text);
  assert.equal(legacy.json.result.resultType, undefined, 'a 2025-11-25 result got resultType');
  assert.deepEqual(await callerOf(ctx, receiptOf(legacy.json.result, 'legacy echo')), { mcp_session: sid });
  console.log('ok modern results carry resultType and serverInfo (lists and reads ttlMs 0, private); ' +
    'a denial is -32001 in-band with its receipt; the ledger names each request\'s protocol and client ' +
    '(legacy: its MCP session)');
}

// 2e. The gateway's own "upstream unavailable" (-32002) is -32000 for a modern client: an
// upstream call longer than mcp.request_timeout_ms, in both eras at once.
async function checkUnavailable(ctx) {
  const slow = { name: 'trigger-long-running-operation', arguments: { duration: 6, steps: 2 } };
  const { sid } = await legacyInit(ctx, '/mcp/everything');
  const [m, l] = await Promise.all([
    modern(ctx, '/mcp/everything', 'tools/call', slow),
    post(ctx, '/mcp/everything', { jsonrpc: '2.0', id: nextId++, method: 'tools/call', params: slow },
      { headers: { 'mcp-session-id': sid, 'mcp-protocol-version': '2025-11-25' } }),
  ]);
  assert.equal(l.json?.error?.code, -32002, `legacy: ${l.text}`);  // the condition did happen
  assert.equal(m.status, 200, m.text);
  assert.equal(m.json?.error?.code, -32000, `modern: ${m.text}`);
  assert.ok(!m.messages.some((x) => x.error?.code === -32002), m.text);
  console.log('ok an upstream timeout: -32002 to the 2025-11-25 client, -32000 (in-band) to the 2026-07-28 one');
}

// 2f. An upstream's elicitation/create or sampling/createMessage during a modern call (the
// server is 2025-era): the client is sent no request on any stream; it is asked in an
// input_required result, and answers in its retry with inputResponses and the requestState. A
// state is good once, for its session and method; a retry without the answer is asked again;
// the exchange is recorded with the answer's digest. A client without the capability is not
// asked: the upstream gets an error and the exchange is recorded as refused.
async function checkServerRequests(ctx) {
  // The conformance server's test_elicitation, and server-everything's sampling tool (the
  // conformance server's test_sampling checks its answer against a schema no client answer meets).
  const cases = [
    ['/mcp/conf', 'test_elicitation', { message: 'Your name?' }, { elicitation: { form: {} } },
      'elicitation/create', { action: 'accept', content: { response: 'Ada' } },
      (t) => t === 'User response: action=accept, content={"response":"Ada"}',
      /did not declare the elicitation\.form capability/],
    ['/mcp/everything', 'trigger-sampling-request', { prompt: 'Say hi', maxTokens: 20 }, { sampling: {} },
      'sampling/createMessage',
      { role: 'assistant', content: { type: 'text', text: 'hi there' }, model: 'relay-model', stopReason: 'endTurn' },
      (t) => t.includes('hi there') && t.includes('relay-model'),
      /did not declare the sampling capability/],
  ];
  for (const [path, tool, args, caps, method, answer, expected, refusedText] of cases) {
    const call = (extra = {}) => modern(ctx, path, 'tools/call', { name: tool, arguments: args, ...extra },
      { meta: { [CAPS]: caps } });
    const first = await call();
    assert.equal(first.status, 200, first.text);
    const asked = first.json?.result;
    assert.equal(asked?.resultType, 'input_required', `${tool}: ${first.text}`);
    assert.deepEqual(first.messages.filter((x) => x.method && x.id !== undefined), [],
      `${tool}: the client was sent a request on a stream`);
    const keys = Object.keys(asked.inputRequests ?? {});
    assert.equal(keys.length, 1, first.text);
    assert.equal(asked.inputRequests[keys[0]].method, method, first.text);
    assert.equal(typeof asked.requestState, 'string', first.text);

    // A state that is not the gateway's, and one for another method, are refused in-band.
    const forged = await call({ requestState: asked.requestState + 'x', inputResponses: { [keys[0]]: answer } });
    assert.equal(forged.json?.error?.code, -32602, `${tool}: forged state: ${forged.text}`);
    // A retry without the answer is asked again, under a new state.
    const again = await call({ requestState: asked.requestState, inputResponses: {} });
    assert.equal(again.json?.result?.resultType, 'input_required', `${tool}: ${again.text}`);
    assert.deepEqual(Object.keys(again.json.result.inputRequests), keys, again.text);
    assert.notEqual(again.json.result.requestState, asked.requestState);
    const reused = await call({ requestState: asked.requestState, inputResponses: { [keys[0]]: answer } });
    assert.equal(reused.json?.error?.code, -32602, `${tool}: a used state: ${reused.text}`);
    // The answer: the tool completes with it, and the exchange is recorded.
    const done = await call({ requestState: again.json.result.requestState, inputResponses: { [keys[0]]: answer } });
    const res = assertModernResult(done, tool);
    assert.ok(expected(textOf(res)), `${tool}: ${done.text}`);
    const t = await tracedWithOutcome(ctx, receiptOf(res, tool).action_id);
    const ex = t.outcome.exchanges ?? [];
    assert.equal(ex.length, 1, JSON.stringify(t.outcome));
    assert.equal(ex[0].method, method, JSON.stringify(ex[0]));
    assert.equal(ex[0].status, 'answered', JSON.stringify(ex[0]));
    assert.equal(ex[0].answer_digest, digest(answer), JSON.stringify(ex[0]));

    // Without the capability in this request, the client is not asked.
    const bare = await modern(ctx, path, 'tools/call', { name: tool, arguments: args });
    const b = assertModernResult(bare, tool);
    assert.match(textOf(b), refusedText, `${tool}: the upstream got no error: ${textOf(b)}`);
    const tb = await tracedWithOutcome(ctx, receiptOf(b, tool).action_id);
    assert.equal(tb.outcome.exchanges?.[0]?.status, 'refused', JSON.stringify(tb.outcome));
  }
  console.log('ok elicitation/create and sampling/createMessage during a 2026-07-28 call: asked in an ' +
    'input_required result, answered in the retry (state used once, forged refused, unanswered asked ' +
    'again), recorded; without the capability the client is not asked');
}

// 3. Log messages for a modern call: only with _meta logLevel, and at that level or above (the
// tool logs three messages at info).
async function checkLogLevels(ctx) {
  const levels = [[undefined, false], ['debug', true], ['info', true], ['notice', false], ['warning', false],
    ['emergency', false]];
  // One at a time: over stdio, a log message says not which of several calls it came during.
  const answers = [];
  for (const [level] of levels) {
    answers.push(await modern(ctx, '/mcp/conf', 'tools/call',
      { name: 'test_tool_with_logging', arguments: {} }, { meta: { [LOG_LEVEL]: level } }));
  }
  for (const [i, [level, delivered]] of levels.entries()) {
    const r = answers[i];
    const res = assertModernResult(r, `logLevel ${level}`);
    assert.equal(textOf(res), 'Tool with logging executed successfully');
    const logs = r.messages.filter((m) => m.method === 'notifications/message');
    if (delivered) {
      assert.ok(r.sse, `logLevel ${level}: not an event stream`);
      assert.deepEqual(logs.map((m) => [m.params.level, m.params.data]), LOG_TEXTS.map((t) => ['info', t]),
        `logLevel ${level}: ${r.text}`);
      assert.equal(r.messages.at(-1), r.json, `logLevel ${level}: the response is not last`);
    } else {
      assert.deepEqual(logs, [], `logLevel ${level ?? '(none)'}: ${r.text}`);
    }
  }
  console.log('ok log messages reach a 2026-07-28 call only with _meta logLevel, at that level or more severe');
}

async function main() {
  const started = await startCustody(custody, dir, `
[mcp]
request_timeout_ms = ${REQUEST_TIMEOUT_MS}

[mcp.servers.everything]
command = ${JSON.stringify(process.execPath)}
args = ${JSON.stringify([everything, 'stdio'])}

[mcp.servers.conf]
command = ${JSON.stringify(process.execPath)}
args = ${JSON.stringify(['--import', TSX, CONF_SERVER])}
`);
  server = started.server;
  stderrOf = started.stderr;
  const ctx = { url: started.url, adminToken: started.adminToken };
  const { session } = await registerAgent(ctx.url, ctx.adminToken, AGENT, ['everything/*', 'conf/*']);
  ctx.session = session;
  ctx.token = await session();
  const pub = await request(ctx.url, '/v1/policies', { token: ctx.adminToken, body: { policies: POLICY } });
  assert.equal(pub.status, 200, pub.text);

  const t0 = Date.now();
  const timed = async (name, f) => {
    const t = Date.now();
    await f(ctx);
    console.log(`   (${name}: ${Date.now() - t} ms)`);
  };
  await timed('discover', checkDiscover);
  await timed('ladder', checkLadder);
  await timed('removed', checkRemoved);
  await timed('results', checkResults);
  await timed('both eras', checkBothEras);
  await timed('log levels', checkLogLevels);
  await timed('server requests', checkServerRequests);
  await timed('unavailable', checkUnavailable);
  console.log(`   (checks: ${Date.now() - t0} ms)`);
}

try {
  await main();
  await stopCleanly(server, stderrOf);
  console.log('PASS mcp modern e2e');
  cleanup();
} catch (e) {
  console.error('FAIL:', e?.stack ?? e);
  const stderr = stderrOf();
  if (stderr) console.error('--- custody serve stderr (last 6 KiB) ---\n' + stderr.slice(-6144));
  cleanup();
  process.exit(1);
}
