// OTLP ingest end to end (docs/OTLP.md): an agent instrumented with the OpenTelemetry JS SDK
// (pinned in this folder) exports GenAI spans to `custody serve` at /v1/traces with the
// official OTLP exporters: protobuf (exporter-trace-otlp-proto) with an ingest-role token, and
// gzip-compressed JSON (exporter-trace-otlp-http) with a sub-agent's own session token.
//   - a tool call made through Custody (native authorize; the returned traceparent is the
//     parent of the tool's span) links to its decision and is mediated;
//   - tool calls made directly (under the agent's span, and with no link at all) are listed by
//     `custody unmediated`;
//   - the sub-agent's invocation, sent with its session token, is linked and verified.
// Bad input is refused with the OTLP error shape and records nothing: malformed protobuf and
// JSON, an oversized body, a zip bomb, absurd timestamps and ids, anonymous and wrong-role
// callers, and a flood from one credential (429 with Retry-After). The server stays up.
//
// Usage: node otlp_e2e.mjs <custody binary> <source root>
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { context, trace, TraceFlags } from '@opentelemetry/api';
import { OTLPTraceExporter as ProtoExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { OTLPTraceExporter as JsonExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BatchSpanProcessor, NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import { ISSUER, registerAgent, request, startCustody, stopCleanly } from '../mcp/harness.mjs';

const [custody] = process.argv.slice(2);
if (!custody) throw new Error('usage: otlp_e2e.mjs <custody> <source root>');

const dir = mkdtempSync(join(tmpdir(), 'custody-otlp-'));
const dataDir = join(dir, 'data');

function adminToken(role) {
  const out = execFileSync(custody, ['admin', 'token', 'create', '--role', role, '--label', role,
    '--data-dir', dataDir], { encoding: 'utf8' });
  return JSON.parse(out.trim().split('\n').pop()).token;
}

function provider(url, token, exporterClass, serviceName, compression = 'none') {
  const exporter = new exporterClass({ url: url + '/v1/traces', compression,
    headers: { authorization: `Bearer ${token}` } });
  const p = new NodeTracerProvider({
    resource: resourceFromAttributes({ 'service.name': serviceName }),
    spanProcessors: [new BatchSpanProcessor(exporter)] });
  return p;
}

// A context whose active span is the remote span of a W3C traceparent.
function fromTraceparent(tp) {
  const [, traceId, spanId, flags] = tp.split('-');
  return trace.setSpanContext(context.active(), { traceId, spanId,
    traceFlags: parseInt(flags, 16) || TraceFlags.SAMPLED, isRemote: true });
}
const traceparentOf = (span) => {
  const c = span.spanContext();
  return `00-${c.traceId}-${c.spanId}-01`;
};

async function ledgerEvents(url, token, from = 0) {
  const out = [];
  for (let i = from; ; i++) {
    const r = await request(url, `/v1/ledger/entries/${i}`, { method: 'GET', token });
    if (r.status === 404) return out;
    assert.equal(r.status, 200, r.text);
    out.push(r.json.event);
  }
}
const observed = async (url, token) =>
  (await ledgerEvents(url, token)).filter((e) => e.kind === 'action.observed');

let c;
try {
  c = await startCustody(custody, dir, `
[ingest]
max_body_bytes = 200000
max_spans_per_request = 400
spans_per_second = 20
burst_spans = 400
`);
  const { url, adminToken: admin } = c;
  const ingestToken = adminToken('ingest');
  const readerToken = adminToken('reader');

  const published = await request(url, '/v1/policies', { token: admin, body: {
    policies: '@id("files-ok") permit(principal, action == Action::"call_tool", resource in Server::"files");' } });
  assert.equal(published.status, 200, published.text);
  const planner = await registerAgent(url, admin, 'planner', ['files/*']);
  const researcher = await registerAgent(url, admin, 'researcher', ['files/*']);
  const plannerToken = await planner.session(ISSUER);
  const researcherToken = await researcher.delegate(plannerToken, ISSUER);
  const plannerSid = JSON.parse(Buffer.from(plannerToken.split('.')[1], 'base64url')).sid;
  const researcherSid = JSON.parse(Buffer.from(researcherToken.split('.')[1], 'base64url')).sid;
  assert.ok(plannerSid && researcherSid, 'session tokens carry their sid');

  // --- The planner: protobuf export with an ingest token.
  const p = provider(url, ingestToken, ProtoExporter, 'planner-agent');
  const tracer = p.getTracer('planner', '1.0.0');
  const agentSpan = tracer.startSpan('invoke_agent planner', { attributes: {
    'gen_ai.operation.name': 'invoke_agent', 'gen_ai.agent.name': 'planner',
    'gen_ai.agent.id': 'planner-1', 'custody.session.id': plannerSid } });
  const agentCtx = trace.setSpan(context.active(), agentSpan);

  // Through Custody: the decision's traceparent is the tool span's parent.
  const decided = await request(url, '/v1/actions:authorize', { token: plannerToken, body: {
    target: { server: 'files', tool: 'read_file' }, arguments: { path: '/etc/motd' },
    traceparent: traceparentOf(agentSpan) } });
  assert.equal(decided.status, 200, decided.text);
  assert.equal(decided.json.decision, 'allow', decided.text);
  const mediated = tracer.startSpan('execute_tool read_file', { attributes: {
    'gen_ai.operation.name': 'execute_tool', 'gen_ai.tool.name': 'read_file',
    'gen_ai.tool.call.id': 'call-1', 'gen_ai.agent.name': 'planner' } },
  fromTraceparent(decided.json.traceparent));
  mediated.end();
  // Directly, under the agent's span: no decision.
  const direct = tracer.startSpan('execute_tool shell', { attributes: {
    'gen_ai.operation.name': 'execute_tool', 'gen_ai.tool.name': 'shell',
    'gen_ai.tool.call.id': 'call-2', 'gen_ai.agent.name': 'planner' } }, agentCtx);
  direct.setStatus({ code: 2, message: 'exit 1' });
  direct.setAttribute('error.type', 'ExitCode');
  direct.end();
  // An MCP tools/call sent straight to a server, claimed by an agent Custody does not know.
  const rogue = tracer.startSpan('tools/call http_get', { attributes: {
    'mcp.method.name': 'tools/call', 'gen_ai.tool.name': 'http_get',
    'gen_ai.agent.name': 'ghost' } }, context.active());
  rogue.end();
  // Not an agent or tool operation: accepted, not recorded.
  tracer.startSpan('chat gpt', { attributes: { 'gen_ai.operation.name': 'chat' } }, agentCtx).end();
  agentSpan.end();
  await p.forceFlush();

  // --- The sub-agent: OTLP JSON, gzip-compressed, with its own session token.
  const sub = provider(url, researcherToken, JsonExporter, 'researcher-agent', 'gzip');
  const subSpan = sub.getTracer('researcher').startSpan('invoke_agent researcher', { attributes: {
    'gen_ai.operation.name': 'invoke_agent', 'gen_ai.agent.name': 'researcher' } }, agentCtx);
  subSpan.end();
  await sub.forceFlush();

  const events = await observed(url, admin);
  const byTool = Object.fromEntries(events.map((e) => [e.tool.name || e.operation + ':' + e.claimed_agent.name, e]));
  assert.equal(events.length, 5, JSON.stringify(events, null, 1));
  for (const e of events) assert.equal(e.observed, true);
  const m = byTool.read_file;
  assert.equal(m.link.how, 'decision-span');
  assert.equal(m.link.decision, decided.json.action_id);
  assert.equal(m.link.decision_target, 'files/read_file');
  assert.equal(m.link.session, plannerSid);
  assert.equal(m.link.verification, 'asserted');
  assert.match(m.link.asserted_by, /^ingest-token:[0-9a-f]{16}$/);
  assert.equal(m.claimed_agent.registered, 'planner');
  assert.equal(m.span.service, 'planner-agent');
  assert.equal(byTool.shell.link.how, 'parent-span');
  assert.equal(byTool.shell.link.session, plannerSid);
  assert.equal(byTool.shell.status.code, 'error');
  assert.equal(byTool.shell.status.error_type, 'ExitCode');
  assert.equal(byTool.http_get.link.how, 'none');
  assert.equal(byTool.http_get.claimed_agent.registered, '');
  assert.equal(byTool.http_get.operation, 'mcp:tools/call');
  const agentEvent = byTool['invoke_agent:planner'];
  assert.equal(agentEvent.link.how, 'session-attribute');
  const subEvent = byTool['invoke_agent:researcher'];
  assert.equal(subEvent.link.how, 'session-token');
  assert.equal(subEvent.link.session, researcherSid);
  assert.equal(subEvent.link.verification, 'verified');
  assert.equal(subEvent.credential.type, 'session');

  // --- custody unmediated: the direct calls, not the mediated one.
  const cli = JSON.parse(execFileSync(custody, ['unmediated', '--since', '1h', '--server', url,
    '--token', readerToken], { encoding: 'utf8' }));
  assert.deepEqual(cli.calls.map((x) => x.tool).sort(), ['http_get', 'shell']);
  const shell = cli.calls.find((x) => x.tool === 'shell');
  assert.equal(shell.session, plannerSid);
  assert.match(shell.reason, /no Custody decision/);
  const api = await request(url, '/v1/unmediated?since=1h', { method: 'GET', token: readerToken });
  assert.equal(api.status, 200, api.text);
  assert.equal(api.json.calls.length, 2);
  assert.equal((await request(url, '/v1/unmediated', { method: 'GET' })).status, 401);
  // The session's events list its observed actions apart from its decided ones.
  const se = await request(url, `/v1/sessions/${plannerSid}/events`, { method: 'GET', token: readerToken });
  assert.equal(se.status, 200, se.text);
  const root = se.json.sessions.find((x) => x.sid === plannerSid);
  assert.deepEqual(root.observed_actions.map((e) => e.tool.name || e.operation).sort(),
    ['invoke_agent', 'read_file', 'shell']);
  assert.ok(root.observed_actions.every((e) => e.observed === true && e.kind === 'action.observed'));
  assert.equal(root.actions.length, 1, 'the one decided action');
  const subTree = se.json.sessions.find((x) => x.sid === researcherSid);
  assert.equal(subTree.observed_actions.length, 1);
  // The decision's trace shows what the agent reported doing under it.
  const traced = await request(url, `/v1/trace/${decided.json.action_id}`, { method: 'GET', token: readerToken });
  assert.equal(traced.status, 200, traced.text);
  assert.deepEqual(traced.json.observed.map((e) => e.tool.name), ['read_file']);
  assert.equal(traced.json.observed[0].observed, true);

  // --- Bad input: the OTLP error shape (google.rpc.Status), nothing recorded, server fine.
  const before = (await ledgerEvents(url, admin)).length;
  const post = (body, { token = ingestToken, type = 'application/json', encoding } = {}) => {
    const headers = { 'content-type': type };
    if (token) headers.authorization = `Bearer ${token}`;
    if (encoding) headers['content-encoding'] = encoding;
    return fetch(url + '/v1/traces', { method: 'POST', headers, body });
  };
  const expectError = async (r, status) => {
    assert.equal(r.status, status);
    if (r.headers.get('content-type') === 'application/json') {
      const j = await r.json();
      assert.equal(typeof j.code, 'number');
      assert.equal(typeof j.message, 'string');
    } else {
      assert.equal(r.headers.get('content-type'), 'application/x-protobuf');
      await r.arrayBuffer();
    }
    return r;
  };
  const nowNs = BigInt(Date.now()) * 1000000n;
  const span = (over) => ({ resourceSpans: [{ scopeSpans: [{ spans: [{
    traceId: '0af7651916cd43dd8448eb211c80319c', spanId: 'b7ad6b7169203331', name: 'x',
    startTimeUnixNano: String(nowNs), endTimeUnixNano: String(nowNs + 1000n),
    attributes: [{ key: 'gen_ai.operation.name', value: { stringValue: 'execute_tool' } }],
    ...over }] }] }] });
  await expectError(await post('{"resourceSpans": ['), 400);
  await expectError(await post(JSON.stringify(span({ traceId: 'not-hex' }))), 400);
  await expectError(await post(Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f]),
    { type: 'application/x-protobuf' }), 400);
  await expectError(await post(JSON.stringify(span({ startTimeUnixNano: '1', endTimeUnixNano: '2' }))), 400);
  await expectError(await post(JSON.stringify(span({ startTimeUnixNano: String(nowNs * 10n) }))), 400);
  await expectError(await post(JSON.stringify(span({ traceId: '00000000000000000000000000000000' }))), 400);
  await expectError(await post(JSON.stringify(span({ spanId: 'abcd' }))), 400);
  await expectError(await post('x'.repeat(300000)), 413);
  await expectError(await post(gzipSync(Buffer.alloc(20 << 20, 0x20)), { encoding: 'gzip' }), 413);
  await expectError(await post(JSON.stringify(span({})), { token: null }), 401);
  await expectError(await post(JSON.stringify(span({})), { token: 'cst_0000000000000000_' + 'A'.repeat(43) }), 401);
  await expectError(await post(JSON.stringify(span({})), { token: readerToken }), 403);
  assert.equal((await post('{}', { type: 'text/plain' })).status, 415);
  // A flood from one credential: 20 spans/s, bursts of 400.
  const floodToken = adminToken('ingest');
  const chat = (i) => ({ traceId: '1af7651916cd43dd8448eb211c80319c', spanId: (0x1000 + i).toString(16).padStart(16, '0'),
    name: 'chat', startTimeUnixNano: String(nowNs), endTimeUnixNano: String(nowNs + 1n),
    attributes: [{ key: 'gen_ai.operation.name', value: { stringValue: 'chat' } }] });
  const flood = JSON.stringify({ resourceSpans: [{ scopeSpans: [{ spans: Array.from({ length: 150 }, (_, i) => chat(i)) }] }] });
  const statuses = [];
  let limited;
  for (let i = 0; i < 5; i++) {
    const r = await post(flood, { token: floodToken });
    statuses.push(r.status);
    if (r.status === 429) limited = r;
    await r.arrayBuffer().catch(() => {});
  }
  assert.deepEqual(statuses.slice(0, 2), [200, 200], statuses.join());
  assert.ok(statuses.slice(2).every((s) => s === 429), statuses.join());
  assert.ok(Number(limited.headers.get('retry-after')) >= 1);
  // Another credential is not held back by it.
  const ok = await post(JSON.stringify({ resourceSpans: [] }), { token: ingestToken });
  assert.equal(ok.status, 200);
  assert.deepEqual(await ok.json(), {});
  // A batch with one absurd span among sound ones: partial success.
  const partial = await post(JSON.stringify({ resourceSpans: [{ scopeSpans: [{ spans: [
    chat(900), { ...chat(901), traceId: '00000000000000000000000000000000' }] }] }] }));
  assert.equal(partial.status, 200);
  const pj = await partial.json();
  assert.equal(pj.partialSuccess.rejectedSpans, '1');
  assert.match(pj.partialSuccess.errorMessage, /trace_id/);
  assert.equal((await ledgerEvents(url, admin)).length, before, 'refused requests recorded nothing');
  assert.equal((await request(url, '/healthz', { method: 'GET' })).status, 200);

  await p.shutdown();
  await sub.shutdown();
  await stopCleanly(c.server, c.stderr);
  c = undefined;
  console.log(`otlp e2e: ok (${events.length} observed actions, 2 unmediated, bad input refused)`);
} finally {
  if (c) c.server.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
}
