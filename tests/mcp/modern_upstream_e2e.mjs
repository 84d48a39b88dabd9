// The gateway as a client of an MCP 2026-07-28 upstream (docs/MCP.md, "Upstreams of either era"):
// `custody serve` in front of tests/mcp/modern_server.mjs, a 2026-07-28-only server on the
// official SDK (@modelcontextprotocol/server 2.4.0; it refuses `initialize`), once as an HTTP
// upstream (modern_http) and once as a stdio one (modern_stdio), and of
// src/mcp/testdata/fake_server.mjs (2025-era) pinned to `protocol = "2026-07-28"`.
//   node modern_upstream_e2e.mjs /path/to/custody [source root]
// Checks, for each of the two modern upstreams:
// 1. A 2025-era client (@modelcontextprotocol/sdk, declaring elicitation, sampling and roots)
//    sees the server as a 2025 server would be: tools, echo; the server's input_required
//    becomes elicitation/create, sampling/createMessage and roots/list on the call's stream,
//    under the gateway's ids, and the answers reach the server (its results show them);
//    logging/setLevel info then the `log` tool: info and warning reach the client, debug not;
//    resources/read, prompts/get; resources/subscribe then `touch`: resources/updated; `change`:
//    tools/list_changed, and the new tool is listed and callable.
// 2. A client without elicitation or roots: `ask` and `roots` fail with the server's -32021 and
//    requiredCapabilities, passed on as they are (over HTTP the server answers them with 400).
// 3. A 2026-07-28 client (@modelcontextprotocol/client 2.4.0, pinned): echo; `ask` answered by
//    its elicitation handler through the gateway's own input_required (its own requestState);
//    a subscriptions/listen for tools gets list_changed after `change`.
// 4. A call Cedar forbids is refused (-32001), recorded as a denial, and never reaches the server.
// 5. What reached the server (MODERN_SERVER_LOG): never `initialize`; every request with the
//    per-request _meta (2026-07-28, client info, client capabilities: on a call, read or get the
//    caller's own, on anything else what the gateway relays); over HTTP the
//    MCP-Protocol-Version, Mcp-Method and (tools/call) Mcp-Name headers; the ask retried with
//    inputResponses and the server's requestState; the log level as _meta logLevel.
// 6. The ask's outcome in the ledger records the relayed exchange (elicitation/create, answered).
// 7. The 2025-era server pinned to 2026-07-28 never becomes ready: a call to it fails while the
//    others work, and custody's log says "does not speak MCP 2026-07-28".
// Exits non-zero on the first failure; needs `npm ci` in tests/mcp (scripts/test.sh does it).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { isDeepStrictEqual } from 'node:util';
import { fileURLToPath } from 'node:url';

import { eventually, loadModernSdk, loadSdk, registerAgent, rejection, request, startCustody, stopCleanly,
  wireRecorder } from './harness.mjs';
import { digest, tracedWithOutcome } from './traced.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const custody = process.argv[2];
const sourceRoot = resolve(process.argv[3] ?? join(here, '..', '..'));
if (!custody) {
  console.error('usage: node modern_upstream_e2e.mjs /path/to/custody [source root]');
  process.exit(2);
}
const MODERN_SERVER = join(here, 'modern_server.mjs');
const FAKE_SERVER = join(sourceRoot, 'src/mcp/testdata/fake_server.mjs');
if (!existsSync(FAKE_SERVER)) {
  console.error(`FAIL: ${FAKE_SERVER} is missing (pass the source root)`);
  process.exit(2);
}

const { Client: LegacyClient, StreamableHTTPClientTransport: LegacyTransport,
  ToolListChangedNotificationSchema } = await loadSdk();
const { CreateMessageRequestSchema, ElicitRequestSchema, ListRootsRequestSchema,
  LoggingMessageNotificationSchema, ResourceUpdatedNotificationSchema } =
  await import('@modelcontextprotocol/sdk/types.js');
const { Client: ModernClient, StreamableHTTPClientTransport: ModernTransport } = await loadModernSdk();

const MODERN = '2026-07-28';
const PV = 'io.modelcontextprotocol/protocolVersion';
const CAPS = 'io.modelcontextprotocol/clientCapabilities';
const INFO = 'io.modelcontextprotocol/clientInfo';
const GATEWAY_CAPS = { sampling: {}, elicitation: { form: {}, url: {} } };  // what the gateway relays
const ACTIONS = ['tools/call', 'resources/read', 'prompts/get'];  // sent with the caller's capabilities
// Each client's capabilities as declared, and as the server is told them on its actions.
const LEGACY_FULL = { elicitation: {}, sampling: {}, roots: { listChanged: true } };
const CALLER_CAPS = {
  full: { sampling: {}, roots: {}, elicitation: { form: {} } },  // LEGACY_FULL
  undeclared: { sampling: {} },
  modern: { elicitation: { form: {} } },  // the 2026-07-28 client
};
const RECEIPT = 'dev.custody/receipt';
const AGENT = 'mcp-modern-upstream-agent';
const REQUEST_TIMEOUT_MS = 4000;  // mcp.request_timeout_ms
const RELAY_ID = /^custody-relay-\d+$/;
const PINNED = 'pinned_legacy';  // fake_server.mjs (2025-era) with protocol = "2026-07-28"
const UPSTREAMS = ['modern_http', 'modern_stdio'];
const TOOLS = ['echo', 'ask', 'sample', 'roots', 'log', 'change', 'touch'];
const CLASSIFIED = 'classified';  // an echo of this text Cedar forbids (section 4)
const POLICY = `
@id("modern-http-all") permit(principal, action, resource in Server::"modern_http");
@id("modern-stdio-all") permit(principal, action, resource in Server::"modern_stdio");
@id("pinned-all") permit(principal, action, resource in Server::"${PINNED}");
@id("no-classified") forbid(principal, action == Action::"call_tool", resource)
  when { context has arguments && context.arguments has text && context.arguments.text == "${CLASSIFIED}" };
`;

const dir = mkdtempSync(join(tmpdir(), 'custody-mcp-modern-upstream-'));
const logOf = (name) => join(dir, `${name}.log`);
let server;
let httpUpstream;
let stderrOf = () => '';

function cleanup() {
  for (const p of [server, httpUpstream]) if (p && p.exitCode === null) p.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
}

// modern_server.mjs over HTTP on a free port, logging to `log`; resolves with its port.
async function startModernHttp(log) {
  httpUpstream = spawn(process.execPath, [MODERN_SERVER, 'http', '0'], {
    env: { ...process.env, MODERN_SERVER_LOG: log }, stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise((_, reject) => httpUpstream.on('exit', (code, sig) =>
    reject(new Error(`modern_server.mjs http exited (${code ?? sig}) before listening`))));
  const listening = (async () => {
    for await (const line of createInterface({ input: httpUpstream.stdout })) {
      const m = /^listening (\d+)$/.exec(line);
      if (m) return Number(m[1]);
    }
    throw new Error('modern_server.mjs closed stdout before listening');
  })();
  return Promise.race([listening, exited]);
}

// What reached an upstream: the JSON lines of its MODERN_SERVER_LOG.
const received = (name) => (existsSync(logOf(name)) ? readFileSync(logOf(name), 'utf8') : '')
  .split('\n').filter(Boolean).map((l) => JSON.parse(l));
const toolCalls = (name, tool) => received(name).filter((l) => l.method === 'tools/call' && l.tool === tool);

const textOf = (result) => result.content.map((c) => c.text).join('\n');
const receiptOf = (result, what) => {
  const r = result?._meta?.[RECEIPT];
  assert.ok(r?.action_id, `${what}: no receipt: ${JSON.stringify(result)}`);
  return r;
};

// --- A 2025-era SDK client on /mcp/<name>, with handlers for what it declares: every request
// it is asked lands in `asked` ({ method, id, params }); `answers` says what to answer.
async function connectLegacy(ctx, name, capabilities) {
  const wire = wireRecorder();
  const transport = new LegacyTransport(new URL(`${ctx.url}/mcp/${name}`),
    { requestInit: { headers: { authorization: `Bearer ${await ctx.session()}` } }, fetch: wire.fetch });
  const client = new LegacyClient({ name: 'custody-modern-upstream-e2e', version: '1.0.0' }, { capabilities });
  const c = { client, transport, wire, asked: [], logs: [], updated: [], toolsChanged: 0, answers: {} };
  const handle = (schema, method) => client.setRequestHandler(schema, async (req, extra) => {
    c.asked.push({ method, id: extra.requestId, params: req.params });
    return c.answers[method];
  });
  if (capabilities.elicitation) handle(ElicitRequestSchema, 'elicitation/create');
  if (capabilities.sampling) handle(CreateMessageRequestSchema, 'sampling/createMessage');
  if (capabilities.roots) handle(ListRootsRequestSchema, 'roots/list');
  client.fallbackRequestHandler = async (req) => {
    c.asked.push({ method: req.method, unexpected: true });
    throw new Error(`unexpected ${req.method}`);
  };
  client.setNotificationHandler(LoggingMessageNotificationSchema, (n) => c.logs.push(n.params));
  client.setNotificationHandler(ResourceUpdatedNotificationSchema, (n) => c.updated.push(n.params.uri));
  client.setNotificationHandler(ToolListChangedNotificationSchema, () => { c.toolsChanged += 1; });
  await client.connect(transport);
  return c;
}

async function closeLegacy(c) {
  await c.transport.terminateSession();
  await c.client.close();
}

// The event stream that answered the tools/call of `tool` (the last one), once it has ended.
async function streamOfCall(wire, tool) {
  const s = wire.answers.filter((x) => x.request?.method === 'tools/call' && x.request.params.name === tool).at(-1);
  assert.ok(s?.sse, `${tool} was not answered on an event stream`);
  await s.ended;
  return s;
}

// Which streams carried notification `method`: 'GET' for the client's GET stream, else the
// method of the POST whose answer it came on.
const carriers = (wire, method) => wire.answers.filter((a) => a.messages.some((m) => m.method === method))
  .map((a) => a.request?.method ?? 'GET');

// The one request the client was asked during a call: its method and the gateway's id; it came
// on the call's stream, and the client's answer went back as the handler returned it.
async function assertAskedOnCall(c, tool, method, answer) {
  assert.deepEqual(c.asked.map((a) => a.method), [method], `${tool}: asked ${JSON.stringify(c.asked)}`);
  const [{ id, params }] = c.asked;
  assert.match(String(id), RELAY_ID, `${tool}: the client saw an id that is not the gateway's`);
  const relayed = (await streamOfCall(c.wire, tool)).messages.find((m) => m.method === method);
  assert.equal(relayed?.id, id, `${tool}: ${method} did not come on the call's stream`);
  assert.deepEqual(c.wire.posts.filter((p) => p.body.id === id && !p.body.method).map((p) => p.body.result),
    [answer], `${tool}: the answer POSTed`);
  c.asked.length = 0;
  return { id, params };
}

// 1 (and 4, 6). The 2025-era client, through /mcp/<name>.
async function checkLegacyClient(ctx, name) {
  const c = await connectLegacy(ctx, name, LEGACY_FULL);
  const listed = (await c.client.listTools()).tools.map((t) => t.name);
  for (const t of TOOLS) assert.ok(listed.includes(t), `${name}: ${t} not listed: ${listed}`);
  const said = `hi-${randomBytes(3).toString('hex')}`;
  const echo = await c.client.callTool({ name: 'echo', arguments: { text: said } });
  assert.equal(textOf(echo), said);
  receiptOf(echo, 'echo');

  // ask: the server's input_required becomes elicitation/create on the call's stream.
  const who = `Ada-${randomBytes(3).toString('hex')}`;
  const elicited = { action: 'accept', content: { name: who } };
  c.answers['elicitation/create'] = elicited;
  const ask = await c.client.callTool({ name: 'ask', arguments: {} });
  const { params: askParams } = await assertAskedOnCall(c, 'ask', 'elicitation/create', elicited);
  assert.equal(askParams.message, 'What is your name?', JSON.stringify(askParams));
  assert.deepEqual(askParams.requestedSchema?.required, ['name'], JSON.stringify(askParams));
  assert.ok(!ask.isError, textOf(ask));
  assert.equal(textOf(ask), `hello ${who}`);
  // 6. The outcome records the exchange.
  const traced = await tracedWithOutcome(ctx, receiptOf(ask, 'ask').action_id);
  assert.equal(traced.outcome.status, 'ok', JSON.stringify(traced.outcome));
  assert.deepEqual(traced.outcome.exchanges, [{ method: 'elicitation/create', client: c.transport.sessionId,
    asked: { digest: digest(askParams) }, status: 'answered', answer_digest: digest(elicited) }],
  JSON.stringify(traced.outcome));
  console.log(`ok ${name}: a 2025 client's elicitation handler answers the server's input_required ` +
    `(asked under a gateway id on the call's stream), the tool says "hello ${who}", and the outcome ` +
    `records the exchange (elicitation/create, answered; ledger index ${traced.outcome.index})`);

  // sample and roots: sampling/createMessage and roots/list, their answers are the tools' results.
  const reply = `sampled-${randomBytes(3).toString('hex')}`;
  const sampledAnswer = { role: 'assistant', model: 'e2e-model', content: { type: 'text', text: reply } };
  c.answers['sampling/createMessage'] = sampledAnswer;
  const sampled = await c.client.callTool({ name: 'sample', arguments: {} });
  const { params: sampleParams } = await assertAskedOnCall(c, 'sample', 'sampling/createMessage', sampledAnswer);
  assert.equal(sampleParams.messages?.[0]?.content?.text, 'Say something.', JSON.stringify(sampleParams));
  assert.equal(textOf(sampled), reply);
  const rootsAnswer = { roots: [{ uri: 'file:///work/a', name: 'a' }, { uri: `file:///tmp/${who}` }] };
  c.answers['roots/list'] = rootsAnswer;
  const roots = await c.client.callTool({ name: 'roots', arguments: {} });
  await assertAskedOnCall(c, 'roots', 'roots/list', rootsAnswer);
  assert.equal(textOf(roots), rootsAnswer.roots.map((r) => r.uri).join(','));
  console.log(`ok ${name}: sampling/createMessage and roots/list reach the 2025 client's handlers, and their answers are the tools' results`);

  // logging/setLevel info (kept by the gateway, sent as _meta logLevel): info and warning, no debug.
  await c.client.setLoggingLevel('info');
  const logged = await c.client.callTool({ name: 'log', arguments: {} });
  assert.equal(textOf(logged), 'logged');
  await eventually(`${name}: the log messages`, () => c.logs.length >= 2);
  assert.deepEqual(c.logs.map((l) => [l.level, l.data]),
    [['info', 'log tool: info'], ['warning', 'log tool: warning']], JSON.stringify(c.logs));
  const onStream = (await streamOfCall(c.wire, 'log')).messages.filter((m) => m.method === 'notifications/message');
  assert.deepEqual(onStream.map((m) => m.params.level), ['info', 'warning'], 'the log messages were not on the call\'s stream');
  console.log(`ok ${name}: logging/setLevel info, then the log tool: the client gets info and warning on the call's stream, not debug`);

  // resources/read and prompts/get.
  const read = await c.client.readResource({ uri: 'memo://one' });
  assert.deepEqual(read.contents.map((x) => [x.uri, x.text]), [['memo://one', 'first memo']]);
  receiptOf(read, 'resources/read');
  const prompt = await c.client.getPrompt({ name: 'greet', arguments: { who } });
  assert.equal(prompt.messages[0].content.text, `Please greet ${who}.`);
  receiptOf(prompt, 'prompts/get');

  // resources/subscribe, then touch: resources/updated on the client's GET stream. The gateway
  // opens the upstream listen stream again with the new filter; an update sent while it is being
  // reopened is lost (docs/MCP.md), so touch is repeated until one arrives.
  assert.deepEqual(await c.client.subscribeResource({ uri: 'memo://one' }), {});
  let touches = 0;
  for (; touches < 10 && !c.updated.length; touches++) {
    assert.equal(textOf(await c.client.callTool({ name: 'touch', arguments: { uri: 'memo://one' } })), 'touched');
    await eventually('resources/updated', () => c.updated.length, 1000).catch(() => {});
  }
  assert.ok(c.updated.length, `${name}: no notifications/resources/updated after ${touches} touches`);
  assert.deepEqual([...new Set(c.updated)], ['memo://one']);
  assert.deepEqual([...new Set(carriers(c.wire, 'notifications/resources/updated'))], ['GET']);

  // change: tools/list_changed, and the tool it added is listed and callable.
  const before = new Set((await c.client.listTools()).tools.map((t) => t.name));
  assert.equal(textOf(await c.client.callTool({ name: 'change', arguments: {} })), 'changed');
  await eventually(`${name}: notifications/tools/list_changed`, () => c.toolsChanged > 0);
  assert.deepEqual([...new Set(carriers(c.wire, 'notifications/tools/list_changed'))], ['GET']);
  const added = (await c.client.listTools()).tools.map((t) => t.name).filter((t) => !before.has(t));
  assert.equal(added.length, 1, `${name}: tools added by change: ${added}`);
  assert.match(added[0], /^added_\d+$/);
  assert.equal(textOf(await c.client.callTool({ name: added[0], arguments: {} })), added[0]);
  console.log(`ok ${name}: resources/read and prompts/get; resources/subscribe then touch: resources/updated ` +
    `on the GET stream (${touches} touch(es)); change: tools/list_changed, and ${added[0]} is listed and callable`);

  // 4. A call Cedar forbids: -32001, recorded as a denial, never sent upstream.
  const echoes = toolCalls(name, 'echo').length;
  const e = await rejection(c.client.callTool({ name: 'echo', arguments: { text: CLASSIFIED } }));
  assert.equal(e.code, -32001, String(e));
  assert.deepEqual(e.data?.reasons, ['no-classified'], JSON.stringify(e.data));
  const trace = await request(ctx.url, `/v1/trace/${e.data.action_id}`, { method: 'GET', token: ctx.adminToken });
  assert.equal(trace.status, 200, trace.text);
  assert.equal(trace.json.decision, 'deny', trace.text);
  assert.equal(trace.json.outcome, undefined, `a denial has an outcome: ${trace.text}`);
  const entry = await request(ctx.url, `/v1/ledger/entries/${e.data.ledger_index}`, { method: 'GET' });
  assert.equal(entry.json?.event?.kind, 'action.decision', entry.text);
  assert.equal(entry.json.event.event_id, e.data.action_id, entry.text);
  // Nothing reached the server: a permitted echo after it is the next one there.
  const after = `after-${randomBytes(3).toString('hex')}`;
  assert.equal(textOf(await c.client.callTool({ name: 'echo', arguments: { text: after } })), after);
  assert.equal(toolCalls(name, 'echo').length, echoes + 1, `${name}: the forbidden echo reached the server`);
  console.log(`ok ${name}: a call Cedar forbids is refused with -32001, recorded as a denial (ledger index ` +
    `${e.data.ledger_index}, no outcome), and never reaches the server`);
  await closeLegacy(c);
}

// 2. A client that did not declare elicitation (nor roots): the server is told the caller's own
// capabilities, so it refuses ask (and roots) itself with -32021 and requiredCapabilities, which
// reach the client as the server gave them (over HTTP, in an HTTP 400); the client is never asked.
async function checkUndeclared(ctx, name) {
  const c = await connectLegacy(ctx, name, { sampling: {} });
  const refusals = [];
  for (const [tool, required] of [['ask', { elicitation: { form: {} } }], ['roots', { roots: {} }]]) {
    const e = await rejection(c.client.callTool({ name: tool, arguments: {} }));
    assert.equal(e.code, -32021, `${name}: ${tool}: ${e} ${JSON.stringify(e.data)}`);
    assert.deepEqual(e.data?.requiredCapabilities, required, `${name}: ${tool}: ${JSON.stringify(e.data)}`);
    // Recorded: the call's outcome is the error, with no exchange (nothing was asked).
    const traced = await tracedWithOutcome(ctx, e.data[RECEIPT]?.action_id);
    assert.equal(traced.outcome.status, 'error', JSON.stringify(traced.outcome));
    assert.deepEqual(traced.outcome.exchanges ?? [], [], JSON.stringify(traced.outcome));
    refusals.push(`${tool} ${JSON.stringify(required)}`);
  }
  assert.deepEqual(c.asked, [], 'a client that did not declare the capability was asked');
  assert.ok(!c.wire.answers.some((a) => a.messages.some((m) => m.method && m.id !== undefined)),
    'a request reached the client');
  console.log(`ok ${name}: a client without elicitation or roots gets the server's -32021 with ` +
    `requiredCapabilities (${refusals.join(', ')}), and is never asked`);
  await closeLegacy(c);
}

// 3. The 2026-07-28 client, through /mcp/<name>.
async function checkModernClient(ctx, name) {
  const wire = wireRecorder();
  const transport = new ModernTransport(new URL(`${ctx.url}/mcp/${name}`),
    { requestInit: { headers: { authorization: `Bearer ${await ctx.session()}` } }, fetch: wire.fetch });
  const client = new ModernClient({ name: 'custody-modern-upstream-e2e-sdk2', version: '2.4.0-e2e' },
    { capabilities: { elicitation: { form: {} } }, versionNegotiation: { mode: { pin: MODERN } } });
  const asked = [];
  const who = `Grace-${randomBytes(3).toString('hex')}`;
  const answer = { action: 'accept', content: { name: who } };
  client.setRequestHandler('elicitation/create', async (req) => {
    asked.push(req.params);
    return answer;
  });
  let toolsChanged = 0;
  client.setNotificationHandler('notifications/tools/list_changed', () => { toolsChanged += 1; });
  await client.connect(transport);
  assert.equal(client.getProtocolEra(), 'modern');
  assert.ok(!wire.posts.some((p) => p.body.method === 'initialize'), 'the 2026-07-28 client initialized');

  const said = `modern-${randomBytes(3).toString('hex')}`;
  const echo = await client.callTool({ name: 'echo', arguments: { text: said } });
  assert.equal(textOf(echo), said);
  receiptOf(echo, 'echo');

  const ask = await client.callTool({ name: 'ask', arguments: {} });
  assert.equal(asked.length, 1, `the elicitation handler was called ${asked.length} times`);
  assert.equal(asked[0].message, 'What is your name?');
  assert.equal(textOf(ask), `hello ${who}`);
  // On the wire: the gateway's input_required (no request on any stream), then the retry with the
  // answer and the gateway's requestState, never the server's.
  const calls = wire.posts.filter((p) => p.body.method === 'tools/call' && p.body.params.name === 'ask');
  assert.equal(calls.length, 2, `ask was POSTed ${calls.length} times`);
  assert.equal(calls[0].body.params.requestState, undefined);
  assert.deepEqual(calls[0].body.params._meta?.[CAPS], CALLER_CAPS.modern, 'the client declared otherwise');
  const first = wire.answers.find((a) => a.request === calls[0].body);
  await first?.ended;
  const inputRequired = first?.messages.find((m) => m.id === calls[0].body.id)?.result;
  assert.equal(inputRequired?.resultType, 'input_required', JSON.stringify(first?.messages));
  assert.ok(!first.messages.some((m) => m.method && m.id !== undefined), 'a request came on the stream');
  const [key] = Object.keys(inputRequired.inputRequests);
  assert.equal(inputRequired.inputRequests[key].method, 'elicitation/create', JSON.stringify(inputRequired));
  assert.notEqual(inputRequired.requestState, 'ask-state-v1', "the server's requestState left the gateway");
  const retry = calls[1].body.params;
  assert.equal(retry.requestState, inputRequired.requestState, JSON.stringify(retry));
  assert.deepEqual(retry.inputResponses, { [key]: answer }, JSON.stringify(retry));
  const traced = await tracedWithOutcome(ctx, receiptOf(ask, 'ask').action_id);
  const ex = traced.outcome.exchanges ?? [];
  assert.deepEqual(ex.map((x) => [x.method, x.status, x.answer_digest]),
    [['elicitation/create', 'answered', digest(answer)]], JSON.stringify(traced.outcome));

  // A listen stream for tools: list_changed after change.
  const sub = await client.listen({ toolsListChanged: true });
  assert.equal(sub.honoredFilter.toolsListChanged, true, JSON.stringify(sub.honoredFilter));
  assert.equal(textOf(await client.callTool({ name: 'change', arguments: {} })), 'changed');
  await eventually(`${name}: tools/list_changed on the 2026-07-28 client's listen stream`, () => toolsChanged > 0);
  assert.deepEqual([...new Set(carriers(wire, 'notifications/tools/list_changed'))], ['subscriptions/listen']);
  await sub.close();
  await client.close();
  console.log(`ok ${name}: a 2026-07-28 client: echo; ask answered by its elicitation handler through the ` +
    "gateway's input_required (the gateway's requestState, not the server's), the exchange recorded; " +
    'its subscriptions/listen for tools gets list_changed after change');
}

// 5. What reached each modern server.
function checkServerLog(name) {
  const lines = received(name);
  assert.ok(lines.length > 0, `${name}: nothing logged`);
  assert.equal(lines[0].method, 'server/discover', `${name}: the first message was ${lines[0].method}`);
  assert.deepEqual(lines.filter((l) => l.method === 'initialize'), [], `${name}: initialize reached the server`);
  for (const m of ['ping', 'logging/setLevel', 'resources/subscribe', 'resources/unsubscribe']) {
    assert.ok(!lines.some((l) => l.method === m), `${name}: ${m} reached the server`);
  }
  const requests = lines.filter((l) => 'id' in l);
  for (const l of requests) {
    const what = `${name}: ${JSON.stringify(l)}`;
    assert.ok(l.meta.includes(PV), `no _meta protocolVersion: ${what}`);
    assert.ok(l.meta.includes(INFO), `no _meta clientInfo: ${what}`);
    // The probe declares nothing; an action (a call, read or get) the caller's own capabilities,
    // as far as the gateway relays them; anything else what the gateway relays at all.
    if (l.method === 'server/discover') assert.deepEqual(l.capabilities, {}, what);
    else if (!ACTIONS.includes(l.method)) assert.deepEqual(l.capabilities, GATEWAY_CAPS, what);
    else assert.ok(Object.values(CALLER_CAPS).some((c) => isDeepStrictEqual(c, l.capabilities)), `not a caller's: ${what}`);
    if (l.transport === 'http') {
      assert.equal(l.headers['mcp-protocol-version'], MODERN, what);
      assert.equal(l.headers['mcp-method'], l.method, what);
      if (l.method === 'tools/call') assert.equal(l.headers['mcp-name'], l.tool, what);
    }
  }
  // The asks: the 2025 client's (first, then the retry with inputResponses and the server's
  // requestState), the undeclared client's (refused by the server), the 2026-07-28 client's.
  const { full, undeclared, modern } = CALLER_CAPS;
  assert.deepEqual(toolCalls(name, 'ask').map((l) => [l.capabilities, l.inputResponses, l.requestState]),
    [[full, false, false], [full, true, true], [undeclared, false, false], [modern, false, false], [modern, true, true]],
    `${name}: the ask calls ([clientCapabilities, inputResponses, requestState])`);
  assert.deepEqual(toolCalls(name, 'roots').map((l) => [l.capabilities, l.inputResponses]),
    [[full, false], [full, true], [undeclared, false]], `${name}: the roots calls`);
  const logCalls = toolCalls(name, 'log');
  assert.deepEqual(logCalls.map((l) => l.logLevel), ['info'], `${name}: the log call's _meta logLevel`);
  assert.ok(lines.some((l) => l.method === 'subscriptions/listen'), `${name}: no subscriptions/listen`);
  console.log(`ok ${name}: ${requests.length} requests reached the server, server/discover first, never initialize, ` +
    'each with _meta protocolVersion and clientInfo, clientCapabilities the caller\'s own on actions (else the gateway\'s)' +
    `${lines[0].transport === 'http' ? ', MCP-Protocol-Version, Mcp-Method and Mcp-Name' : ''}; ` +
    'ping, logging/setLevel and resources/subscribe kept by the gateway; the ask retried with ' +
    'inputResponses and requestState; logLevel info on the log call');
}

// 7. The 2025-era server pinned to 2026-07-28: never ready, its calls fail, the others work.
async function checkPinnedLegacy(ctx) {
  assert.match(stderrOf(), /does not speak MCP 2026-07-28/, 'custody did not log why the server is not used');
  const c = await connectLegacy(ctx, PINNED, {});
  const t0 = Date.now();
  const e = await rejection(c.client.callTool({ name: 'echo', arguments: { text: 'anyone?' } }));
  const elapsed = Date.now() - t0;
  assert.equal(e.code, -32002, String(e));
  assert.equal(e.data?.reason, 'custody:upstream_unavailable', JSON.stringify(e.data));
  assert.match(e.message, new RegExp(PINNED), e.message);
  assert.ok(elapsed < REQUEST_TIMEOUT_MS + 3000, `the call took ${elapsed} ms`);
  await closeLegacy(c);
  // The others still work.
  for (const name of UPSTREAMS) {
    const o = await connectLegacy(ctx, name, {});
    assert.equal(textOf(await o.client.callTool({ name: 'echo', arguments: { text: 'still' } })), 'still');
    await closeLegacy(o);
  }
  const refusals = stderrOf().match(/does not speak MCP 2026-07-28/g).length;
  console.log(`ok a 2025-era server pinned to protocol = "2026-07-28" is never used (custody logged "does not ` +
    `speak MCP 2026-07-28" ${refusals} time(s)): a call to it fails with ${e.code} "${e.message}" after ` +
    `${elapsed} ms, and the other servers still answer`);
}

async function main() {
  const port = await startModernHttp(logOf('modern_http'));
  const started = await startCustody(custody, dir, `
[mcp]
request_timeout_ms = ${REQUEST_TIMEOUT_MS}

[mcp.servers.modern_http]
url = "http://127.0.0.1:${port}/mcp"

[mcp.servers.modern_stdio]
command = ${JSON.stringify(process.execPath)}
args = ${JSON.stringify([MODERN_SERVER, 'stdio'])}
env = { MODERN_SERVER_LOG = ${JSON.stringify(logOf('modern_stdio'))} }

[mcp.servers.${PINNED}]
command = ${JSON.stringify(process.execPath)}
args = ${JSON.stringify([FAKE_SERVER])}
protocol = "2026-07-28"
`);
  server = started.server;
  stderrOf = started.stderr;
  const ctx = { url: started.url, adminToken: started.adminToken };
  const { session } = await registerAgent(ctx.url, ctx.adminToken, AGENT,
    [...UPSTREAMS, PINNED].map((s) => `${s}/*`));
  ctx.session = session;
  const pub = await request(ctx.url, '/v1/policies', { token: ctx.adminToken, body: { policies: POLICY } });
  assert.equal(pub.status, 200, pub.text);

  for (const name of UPSTREAMS) {
    await checkLegacyClient(ctx, name);
    await checkUndeclared(ctx, name);
    await checkModernClient(ctx, name);
    checkServerLog(name);
  }
  await checkPinnedLegacy(ctx);
}

try {
  await main();
  await stopCleanly(server, stderrOf);
  console.log('PASS mcp modern upstream e2e');
  cleanup();
} catch (e) {
  console.error('FAIL:', e?.stack ?? e);
  const stderr = stderrOf();
  if (stderr) console.error('--- custody serve stderr (last 6 KiB) ---\n' + stderr.slice(-6144));
  cleanup();
  process.exit(1);
}
