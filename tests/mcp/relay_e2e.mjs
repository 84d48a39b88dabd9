// The upstream's requests to the client and its log messages, relayed by the MCP gateway on the
// call they came during: `custody serve` in front of @modelcontextprotocol/server-everything
// (stdio), seen by the official TypeScript SDK client (@modelcontextprotocol/sdk, Streamable
// HTTP) and by raw HTTP.
//   node relay_e2e.mjs /path/to/custody [source root]
// Checks: an elicitation and a sampling request reach the SDK client that declared the
// capability, under an id of the gateway's, and its answer reaches the server (the tool result
// shows it); the exchange is recorded with the call's outcome (method, MCP session, digest of
// what was asked, digest of the answer). A client that did not declare sampling, or URL-mode
// elicitation, is never asked: the server gets -32601 and the exchange is recorded as refused.
// A log message sent during a call reaches that call's client on the call's stream, and no
// other client. Raw HTTP: an answer with an id never sent, an answer from another MCP session,
// and a second answer are refused with 400 (the session asked can still answer, the server is
// unaffected); an answer that is a JSON-RPC error reaches the server as one; a request never
// answered: the call still ends at mcp.request_timeout_ms with -32002, the client gets
// notifications/cancelled for the relayed id first, and the exchange is recorded as unanswered.
// Exits non-zero on the first failure; needs `npm ci` in tests/mcp (scripts/test.sh does it).
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { loadSdk, referenceServer, registerAgent, request, startCustody, stopCleanly } from './harness.mjs';
import { digest, tracedWithOutcome } from './traced.mjs';

const { Client, StreamableHTTPClientTransport } = await loadSdk();
const { CreateMessageRequestSchema, ElicitRequestSchema, LoggingMessageNotificationSchema } =
  await import('@modelcontextprotocol/sdk/types.js');

const custody = process.argv[2];
if (!custody) {
  console.error('usage: node relay_e2e.mjs /path/to/custody [source root]');
  process.exit(2);
}
const everything = referenceServer('@modelcontextprotocol/server-everything');

const AGENT = 'mcp-relay-agent';
const RECEIPT = 'dev.custody/receipt';
const PROTOCOL = '2025-06-18';
const REQUEST_TIMEOUT_MS = 2500;  // mcp.request_timeout_ms: how long an unanswered call lasts
const RELAY_ID = /^custody-relay-\d+$/;
const ELICIT_TOOL = 'trigger-elicitation-request';
const SAMPLE_TOOL = 'trigger-sampling-request';
const SAMPLING_ROUNDS = 8;
const dir = mkdtempSync(join(tmpdir(), 'custody-mcp-relay-'));
let server;
let stderrOf = () => '';

// The JSON-RPC messages of an SSE body, as they come: the `data:` lines of each event (an event
// ends at a blank line).
async function* sseMessages(body) {
  const decoder = new TextDecoder();
  let buf = '';
  for await (const chunk of body) {
    buf += decoder.decode(chunk, { stream: true });
    for (let end = /\r?\n\r?\n/.exec(buf); end; end = /\r?\n\r?\n/.exec(buf)) {
      const data = buf.slice(0, end.index).split(/\r?\n/).filter((l) => l.startsWith('data:'))
        .map((l) => l.slice(5).replace(/^ /, '')).join('\n');
      buf = buf.slice(end.index + end[0].length);
      if (data) yield JSON.parse(data);
    }
  }
}

// The messages of an MCP POST's answer, JSON or SSE, one at a time: next() waits at most `ms`
// for the next one (undefined once the answer has ended).
function answerOf(res) {
  const type = res.headers.get('content-type') ?? '';
  const it = type.includes('text/event-stream') ? sseMessages(res.body)
    : (async function* () { yield JSON.parse(await res.text()); })();
  return {
    sse: type.includes('text/event-stream'),
    async next(what, ms = 10 * REQUEST_TIMEOUT_MS) {
      let timer;
      const late = new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no ${what} within ${ms} ms`)), ms);
      });
      try {
        const r = await Promise.race([it.next(), late]);
        return r.done ? undefined : r.value;
      } finally {
        clearTimeout(timer);
      }
    },
  };
}

// --- The SDK client, with every POST it sends and every SSE message it is sent kept on the side
// (a fetch that tees event streams), so what went over the wire is checked, not what the SDK
// made of it. streams: [{ request (the POSTed message, or null for GET), messages, ended }].
async function connectSdk(ctx, token, capabilities) {
  const wire = { sent: [], streams: [], unexpected: [] };
  const tap = async (url, init) => {
    const sent = init?.method === 'POST' && typeof init.body === 'string' ? JSON.parse(init.body) : null;
    if (sent) wire.sent.push(sent);
    const res = await fetch(url, init);
    if (!(res.headers.get('content-type') ?? '').includes('text/event-stream') || !res.body) return res;
    const [forSdk, forUs] = res.body.tee();
    const stream = { request: sent, messages: [] };
    stream.ended = (async () => { for await (const m of sseMessages(forUs)) stream.messages.push(m); })()
      .catch(() => {});  // the SDK closing its GET stream
    wire.streams.push(stream);
    return new Response(forSdk, { status: res.status, statusText: res.statusText, headers: res.headers });
  };
  const transport = new StreamableHTTPClientTransport(new URL(`${ctx.url}/mcp/everything`),
    { requestInit: { headers: { authorization: `Bearer ${token}` } }, fetch: tap });
  const client = new Client({ name: 'custody-relay-e2e', version: '1.0.0' }, { capabilities });
  // Any request without a handler of its own (it would otherwise be answered -32601).
  client.fallbackRequestHandler = async (req) => {
    wire.unexpected.push(req);
    throw new Error(`unexpected ${req.method}`);
  };
  const logs = [];
  client.setNotificationHandler(LoggingMessageNotificationSchema, (n) => logs.push(n.params));
  await client.connect(transport);
  return { client, transport, wire, logs };
}

// The SSE stream that carried the `nth` call of `tool` answered on one, once it has ended.
async function streamOfCall(wire, tool, nth = 0) {
  const s = wire.streams.filter((x) => x.request?.method === 'tools/call' && x.request.params.name === tool)[nth];
  assert.ok(s, `${tool} was not answered on an event stream: ${JSON.stringify(wire.streams.map((x) => x.request))}`);
  await s.ended;
  return s;
}

const textOf = (result) => result.content.map((c) => c.text).join('\n');

// --- A client speaking raw HTTP on its own MCP session.
async function rawSession(ctx, token, capabilities) {
  const headers = { authorization: `Bearer ${token}`, accept: 'application/json, text/event-stream',
    'content-type': 'application/json' };
  const init = await fetch(`${ctx.url}/mcp/everything`, { method: 'POST', headers, body: JSON.stringify({
    jsonrpc: '2.0', id: 0, method: 'initialize',
    params: { protocolVersion: PROTOCOL, capabilities, clientInfo: { name: 'raw', version: '1' } } }) });
  const initialized = await init.text();
  assert.equal(init.status, 200, initialized);
  const id = init.headers.get('mcp-session-id');
  assert.ok(id, `no Mcp-Session-Id: ${initialized}`);
  const h = { ...headers, 'mcp-session-id': id, 'mcp-protocol-version': PROTOCOL };
  const post = (message) => fetch(`${ctx.url}/mcp/everything`, { method: 'POST', headers: h, body: JSON.stringify(message) });
  assert.equal((await post({ jsonrpc: '2.0', method: 'notifications/initialized' })).status, 202);
  let next = 1;
  return {
    id,
    // Starts a tools/call; its answer's messages are read with next().
    async call(name, args = {}) {
      const callId = next++;
      const res = await post({ jsonrpc: '2.0', id: callId, method: 'tools/call', params: { name, arguments: args } });
      assert.equal(res.status, 200, `tools/call ${name}: HTTP ${res.status}`);
      return { id: callId, ...answerOf(res) };
    },
    // POSTs a JSON-RPC response (result or error: `answer`'s members) to request `rid`.
    answer: (rid, answer) => request(ctx.url, '/mcp/everything', { headers: h, body: { jsonrpc: '2.0', id: rid, ...answer } }),
  };
}

// An answer the gateway refused: HTTP 400 with a JSON-RPC error that has no id (a response has
// none to give).
function assertAnswerRefused(r, what) {
  assert.equal(r.status, 400, `${what}: HTTP ${r.status} ${r.text}`);
  assert.equal(r.json?.error?.code, -32600, `${what}: ${r.text}`);
  assert.equal(r.json.id ?? null, null, `${what}: the error carries an id: ${r.text}`);
  assert.equal(r.json.result, undefined, r.text);
}

// The call's answer, the last message of its stream (the test has read those before it).
async function resultOf(call) {
  const m = await call.next('tools/call result');
  assert.equal(m?.id, call.id, `expected the call's answer, got ${JSON.stringify(m)}`);
  assert.equal(await call.next('end of the stream'), undefined, 'the stream went on after the result');
  return m;
}

// --- 1. Elicitation: the SDK client that declared it is asked, under the gateway's id, and the
// tool's result carries its answer; the exchange is recorded with the call's outcome.
async function checkElicitation(ctx) {
  const { client, transport, wire } = ctx.sdk;
  const asked = [];
  const name = `Ada-${randomBytes(4).toString('hex')}`;
  const answer = { action: 'accept', content: { name, check: true, integer: 7 } };
  client.setRequestHandler(ElicitRequestSchema, async (req, extra) => {
    asked.push({ id: extra.requestId, params: req.params });
    return answer;
  });
  const result = await client.callTool({ name: ELICIT_TOOL, arguments: {} });
  assert.equal(asked.length, 1, 'the client was not asked exactly once');
  assert.match(String(asked[0].id), RELAY_ID, 'the client saw an id that is not the gateway\'s');
  assert.equal(asked[0].params.message, 'Please provide inputs for the following fields:');
  const text = textOf(result);
  assert.ok(!result.isError, text);
  assert.match(text, /User provided the requested information/);
  assert.ok(text.includes(`- Name: ${name}`) && text.includes('- Favorite Integer: 7'), `the answer did not reach the server: ${text}`);

  // On the wire: the request came on the call's stream, before its result; the answer POSTed
  // is what the handler returned.
  const stream = await streamOfCall(wire, ELICIT_TOOL);
  const relayed = stream.messages.find((m) => m.method === 'elicitation/create');
  assert.equal(relayed?.id, asked[0].id, JSON.stringify(stream.messages).slice(0, 500));
  assert.equal(stream.messages.at(-1).id, stream.request.id, 'the call\'s result did not end its stream');
  const posted = wire.sent.filter((m) => m.id === relayed.id && !m.method);
  assert.deepEqual(posted.map((m) => m.result), [answer]);

  const receipt = result._meta[RECEIPT];
  const traced = await tracedWithOutcome(ctx, receipt.action_id);
  assert.equal(traced.outcome.status, 'ok');
  const exchanges = [{ method: 'elicitation/create', client: transport.sessionId,
    asked: { digest: digest(relayed.params) }, status: 'answered', answer_digest: digest(answer) }];
  assert.deepEqual(traced.outcome.exchanges, exchanges);
  // The ledger's outcome event itself, as GET /v1/ledger/entries serves it.
  const entry = await request(ctx.url, `/v1/ledger/entries/${traced.outcome.index}`, { method: 'GET' });
  assert.equal(entry.status, 200, entry.text);
  assert.equal(entry.json.event.kind, 'action.outcome');
  assert.equal(entry.json.event.event_id, receipt.outcome.event_id);
  assert.deepEqual(entry.json.event.outcome.exchanges, exchanges, JSON.stringify(entry.json.event));
  console.log(`ok elicitation/create reaches the SDK client under ${relayed.id}, its answer reaches the server, and the exchange is in the outcome event (ledger index ${traced.outcome.index})`);
}

// --- 2. Sampling, likewise: the client's handler writes the message the tool returns. Several
// rounds: the answer is taken on the client's POST and the outcome written when the server
// answers the call, on another thread; however soon that is, the exchange must be in it.
async function checkSampling(ctx) {
  const { client, transport, wire } = ctx.sdk;
  let asked;
  let answer;
  client.setRequestHandler(CreateMessageRequestSchema, async (req, extra) => {
    asked.push({ id: extra.requestId, params: req.params });
    return answer;
  });
  const ids = [];
  for (let round = 0; round < SAMPLING_ROUNDS; round++) {
    asked = [];
    const reply = `sampled-${randomBytes(4).toString('hex')}`;
    answer = { role: 'assistant', model: 'relay-test-model', content: { type: 'text', text: reply } };
    const result = await client.callTool({ name: SAMPLE_TOOL, arguments: { prompt: ctx.samplePrompt, maxTokens: 20 } });
    assert.equal(asked.length, 1, 'the client was not asked exactly once');
    assert.match(String(asked[0].id), RELAY_ID);
    assert.equal(asked[0].params.messages[0].content.text, `Resource ${SAMPLE_TOOL} context: ${ctx.samplePrompt}`);
    assert.equal(asked[0].params.maxTokens, 20);
    const text = textOf(result);
    assert.ok(!result.isError, text);
    assert.ok(text.includes(reply) && text.includes('relay-test-model'), `the answer did not reach the server: ${text}`);

    const relayed = (await streamOfCall(wire, SAMPLE_TOOL, round)).messages.find((m) => m.method === 'sampling/createMessage');
    assert.equal(relayed?.id, asked[0].id);
    assert.deepEqual(wire.sent.filter((m) => m.id === relayed.id && !m.method).map((m) => m.result), [answer]);
    const traced = await tracedWithOutcome(ctx, result._meta[RECEIPT].action_id);
    assert.equal(traced.outcome.status, 'ok');
    assert.deepEqual(traced.outcome.exchanges, [{ method: 'sampling/createMessage', client: transport.sessionId,
      asked: { digest: digest(relayed.params) }, status: 'answered', answer_digest: digest(answer) }],
    `round ${round}: ${JSON.stringify(traced.outcome)}`);
    ctx.sampleAskedDigest = digest(relayed.params);
    ids.push(relayed.id);
  }
  assert.equal(new Set(ids).size, SAMPLING_ROUNDS, `relayed ids reused: ${ids}`);
  console.log(`ok sampling/createMessage reaches the SDK client (${ids.join(', ')}), the tool returns its message, and each exchange is recorded`);
}

// --- 3. A client that did not declare sampling (nor URL-mode elicitation) is never asked: the
// server gets -32601 (its tool reports the error) and the exchange is recorded as refused.
async function checkUndeclared(ctx) {
  const { client, transport, wire } = ctx.plain;
  // Nothing reached the client: no request on any of its streams, none handled, none answered.
  const assertNotAsked = () => {
    const requests = wire.streams.flatMap((s) => s.messages).filter((m) => m.method && m.id !== undefined);
    assert.deepEqual(requests, [], 'a request reached a client that did not declare it');
    assert.deepEqual(wire.unexpected, []);
    assert.deepEqual(wire.sent.filter((m) => !m.method), [], 'the client answered a request');
  };
  const sampled = await client.callTool({ name: SAMPLE_TOOL, arguments: { prompt: ctx.samplePrompt, maxTokens: 20 } });
  assertNotAsked();
  assert.equal(sampled.isError, true, JSON.stringify(sampled));
  assert.match(textOf(sampled), /-32601/, 'the server did not get method-not-found');
  assert.match(textOf(sampled), /sampling capability/);
  let traced = await tracedWithOutcome(ctx, sampled._meta[RECEIPT].action_id);
  assert.equal(traced.outcome.status, 'error');
  const [x] = traced.outcome.exchanges ?? [];
  assert.equal(traced.outcome.exchanges?.length, 1, JSON.stringify(traced.outcome));
  assert.match(x.note ?? '', /did not declare the sampling capability/, JSON.stringify(x));
  // Asked the same as the sampling client was (same prompt), never answered.
  assert.deepEqual(x, { method: 'sampling/createMessage', client: transport.sessionId,
    asked: { digest: ctx.sampleAskedDigest }, status: 'refused', note: x.note });

  // Form-mode elicitation declared, URL mode not.
  const url = 'https://example.com/consent';
  const args = { url, message: 'Open this to consent', elicitationId: `e-${randomBytes(4).toString('hex')}` };
  const viaUrl = await client.callTool({ name: 'trigger-url-elicitation', arguments: args });
  assertNotAsked();
  assert.equal(viaUrl.isError, true, JSON.stringify(viaUrl));
  assert.match(textOf(viaUrl), /-32601/);
  traced = await tracedWithOutcome(ctx, viaUrl._meta[RECEIPT].action_id);
  assert.equal(traced.outcome.exchanges?.length, 1, JSON.stringify(traced.outcome));
  const [u] = traced.outcome.exchanges;
  assert.match(u.note ?? '', /elicitation\.url/, JSON.stringify(u));
  assert.deepEqual(u, { method: 'elicitation/create', client: transport.sessionId,
    asked: { digest: digest({ mode: 'url', ...args }) }, status: 'refused', note: u.note });

  console.log('ok a client without sampling (or URL-mode elicitation) is never asked: the server gets -32601 and the exchange is recorded as refused, naming the capability');
}

// --- 4. A log message sent during a call reaches that call's client on the call's stream, before
// the result, and no other client.
async function checkLogMessages(ctx) {
  const { client, wire, logs } = ctx.sdk;
  await client.setLoggingLevel('debug');  // the server's messages have a random level
  const LEVELS = ['debug', 'info', 'notice', 'warning', 'error', 'critical', 'alert', 'emergency'];
  // The tool starts the server's simulated logging with one message at once (then one every
  // 5 s); calling it again stops it.
  const started = await client.callTool({ name: 'toggle-simulated-logging', arguments: {} });
  const seenByResult = logs.length;
  const stopped = await client.callTool({ name: 'toggle-simulated-logging', arguments: {} });
  assert.match(textOf(started), /Started simulated/);
  assert.match(textOf(stopped), /Stopped simulated/);
  assert.equal(seenByResult, 1, `log messages seen when the call returned: ${JSON.stringify(logs)}`);
  assert.ok(LEVELS.includes(logs[0].level), JSON.stringify(logs[0]));
  assert.match(logs[0].data, /-level message|level-message/);
  const stream = await streamOfCall(wire, 'toggle-simulated-logging');
  assert.deepEqual(stream.messages.map((m) => m.method ?? `result ${m.id}`),
    ['notifications/message', `result ${stream.request.id}`]);
  assert.deepEqual(stream.messages[0].params, logs[0]);
  // The other client, connected all along, got none. (A ping it answers first: anything sent
  // its way before is in.)
  await ctx.plain.client.ping();
  assert.deepEqual(ctx.plain.logs, [], 'another client got the log message');
  assert.ok(!ctx.plain.wire.streams.some((s) => s.messages.some((m) => m.method === 'notifications/message')));
  console.log(`ok a log message (${logs[0].level}) sent during a call reaches that call's SDK client on the call's stream, and no other client`);
}

// --- 5. Raw HTTP: answers the gateway must refuse, an error answer, and a request never answered.
async function checkForeignAnswers(ctx) {
  const a = await rawSession(ctx, ctx.token, { elicitation: {} });
  const b = await rawSession(ctx, ctx.token, { elicitation: {} });

  // An id it was never sent, with nothing waiting and while something is.
  assertAnswerRefused(await a.answer('custody-relay-999999', { result: { action: 'cancel' } }), 'an unknown id');
  assertAnswerRefused(await a.answer(7, { result: {} }), 'a numeric id');
  const echo = await a.call('echo', { message: 'still here' });
  assert.equal(textOf((await resultOf(echo)).result), 'Echo: still here', 'the server is not unaffected');

  const call = await a.call(ELICIT_TOOL);
  assert.ok(call.sse, 'the call with a relayed request did not become an event stream');
  const asked = await call.next('elicitation/create');
  assert.equal(asked?.method, 'elicitation/create', JSON.stringify(asked));
  assert.match(asked.id, RELAY_ID);
  assertAnswerRefused(await a.answer(asked.id + '0', { result: { action: 'cancel' } }), 'a near-miss id');
  // Another MCP session (same delegated session, another client) answering for it.
  const intruder = { action: 'accept', content: { name: 'Mallory' } };
  assertAnswerRefused(await b.answer(asked.id, { result: intruder }), 'an answer from another MCP session');
  // The session asked still can.
  const name = `Grace-${randomBytes(4).toString('hex')}`;
  const answer = { action: 'accept', content: { name } };
  const ok = await a.answer(asked.id, { result: answer });
  assert.equal(ok.status, 202, ok.text);
  const done = await resultOf(call);
  const text = textOf(done.result);
  assert.ok(text.includes(`- Name: ${name}`), text);
  assert.ok(!text.includes('Mallory'), 'the other session\'s answer reached the server');
  assertAnswerRefused(await a.answer(asked.id, { result: answer }), 'a second answer');
  const traced = await tracedWithOutcome(ctx, done.result._meta[RECEIPT].action_id);
  assert.deepEqual(traced.outcome.exchanges, [{ method: 'elicitation/create', client: a.id,
    asked: { digest: digest(asked.params) }, status: 'answered', answer_digest: digest(answer) }]);
  console.log('ok raw answers with an id never sent, from another MCP session, or a second time get HTTP 400 (JSON-RPC error, no id); the session asked still answers, and only its answer is recorded');

  // An answer that is a JSON-RPC error reaches the server as one.
  const declined = await a.call(ELICIT_TOOL);
  const again = await declined.next('elicitation/create');
  const error = { code: -32000, message: `the person closed the dialog ${randomBytes(3).toString('hex')}` };
  assert.equal((await a.answer(again.id, { error })).status, 202);
  const failed = await resultOf(declined);
  assert.equal(failed.result?.isError, true, JSON.stringify(failed));
  assert.ok(textOf(failed.result).includes(error.message), textOf(failed.result));
  const tracedError = await tracedWithOutcome(ctx, failed.result._meta[RECEIPT].action_id);
  assert.deepEqual(tracedError.outcome.exchanges, [{ method: 'elicitation/create', client: a.id,
    asked: { digest: digest(again.params) }, status: 'error', answer_digest: digest(error) }]);
  console.log('ok an error answer reaches the server as an error and is recorded with status error and its digest');
  ctx.raw = a;
}

// A request the client never answers: the call ends at its deadline all the same.
async function checkUnanswered(ctx) {
  const a = ctx.raw;
  const t0 = Date.now();
  const call = await a.call(ELICIT_TOOL);
  const asked = await call.next('elicitation/create');
  assert.equal(asked?.method, 'elicitation/create', JSON.stringify(asked));
  const cancelled = await call.next('notifications/cancelled');
  assert.deepEqual({ method: cancelled?.method, requestId: cancelled?.params?.requestId },
    { method: 'notifications/cancelled', requestId: asked.id }, JSON.stringify(cancelled));
  const end = await call.next('tools/call answer');
  const elapsed = Date.now() - t0;
  assert.equal(end?.id, call.id, JSON.stringify(end));
  assert.equal(end.error?.code, -32002, JSON.stringify(end));
  assert.ok(elapsed >= REQUEST_TIMEOUT_MS, `the call failed after ${elapsed} ms, before its deadline`);
  assert.equal(await call.next('end of the stream'), undefined);
  assertAnswerRefused(await a.answer(asked.id, { result: { action: 'cancel' } }), 'an answer after the call ended');

  const actionId = end.error.data?.[RECEIPT]?.action_id;
  assert.ok(actionId, `no receipt with the error: ${JSON.stringify(end.error)}`);
  const traced = await tracedWithOutcome(ctx, actionId);
  assert.equal(traced.outcome.status, 'error');
  assert.equal(traced.outcome.exchanges?.length, 1, JSON.stringify(traced.outcome));
  const [x] = traced.outcome.exchanges;
  assert.match(x.note ?? '', /before the client answered/, JSON.stringify(x));
  assert.deepEqual(x, { method: 'elicitation/create', client: a.id, asked: { digest: digest(asked.params) },
    status: 'unanswered', note: x.note });
  const echo = await a.call('echo', { message: 'after the deadline' });
  assert.equal(textOf((await resultOf(echo)).result), 'Echo: after the deadline');
  console.log(`ok a relayed request never answered: the call still fails at its deadline (-32002 after ${elapsed} ms), the client gets notifications/cancelled for ${asked.id} first, and the exchange is recorded as unanswered`);
}

async function main() {
  const started = await startCustody(custody, dir, `
[mcp]
request_timeout_ms = ${REQUEST_TIMEOUT_MS}

[mcp.servers.everything]
command = ${JSON.stringify(process.execPath)}
args = ${JSON.stringify([everything, 'stdio'])}
`);
  server = started.server;
  stderrOf = started.stderr;
  const ctx = { url: started.url, adminToken: started.adminToken, samplePrompt: `why-${randomBytes(3).toString('hex')}` };
  const { session } = await registerAgent(ctx.url, ctx.adminToken, AGENT, ['everything/*']);
  const policies = '@id("everything-all") permit(principal, action, resource in Server::"everything");';
  const pub = await request(ctx.url, '/v1/policies', { token: ctx.adminToken, body: { policies } });
  assert.equal(pub.status, 200, pub.text);
  ctx.token = await session();

  ctx.sdk = await connectSdk(ctx, ctx.token, { elicitation: {}, sampling: {} });
  ctx.plain = await connectSdk(ctx, await session(), { elicitation: {} });
  // The server registers these tools once it knows the gateway relays sampling and elicitation;
  // listing them also waits for its handshake.
  const tools = (await ctx.sdk.client.listTools()).tools.map((t) => t.name);
  for (const t of [ELICIT_TOOL, SAMPLE_TOOL, 'trigger-url-elicitation', 'toggle-simulated-logging']) {
    assert.ok(tools.includes(t), `${t} not offered: ${tools}`);
  }

  await checkElicitation(ctx);
  await checkSampling(ctx);
  await checkUndeclared(ctx);
  await checkLogMessages(ctx);
  await checkForeignAnswers(ctx);
  await checkUnanswered(ctx);

  for (const c of [ctx.sdk, ctx.plain]) {
    await c.transport.terminateSession();
    await c.client.close();
  }
}

try {
  await main();
  await stopCleanly(server, stderrOf);
  console.log('PASS mcp relay e2e');
  rmSync(dir, { recursive: true, force: true });
} catch (e) {
  console.error('FAIL:', e?.stack ?? e);
  const stderr = stderrOf();
  if (stderr) console.error('--- custody serve stderr (last 6 KiB) ---\n' + stderr.slice(-6144));
  if (server && server.exitCode === null) server.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
  process.exit(1);
}
