// A tiny MCP Streamable HTTP server for HttpUpstream's tests (node's http module only).
// Usage: node fake_http_server.mjs [port] [--no-get] [--tls=CERT,KEY]; prints the port it
// listens on (127.0.0.1; HTTPS with --tls).
//
// POST /mcp: initialize issues an Mcp-Session-Id; every other message needs a known session
// (unknown: 404, missing: 400). Tools (tools/call):
//   echo         JSON answer with the arguments it got
//   slow         SSE answer: two notifications/progress (when _meta.progressToken is set), then
//                the result after `ms` (nothing if cancelled meanwhile)
//   ping_client  SSE: sends a ping request to the client and answers with the client's reply
//   fail500      HTTP 500
//   notify_get   sends notifications/message on every open GET stream (once one is open),
//                then answers
// Beyond tools it declares resources and prompts, for the gateway's benchmark
// (tests/mcp/overhead_bench.mjs): one text resource, fake://echo (resources/list, resources/read),
// and one prompt, echo, with a `text` argument (prompts/list, prompts/get). All JSON answers.
// GET /mcp: the server-to-client SSE stream (405 with --no-get).
// DELETE /mcp: ends the session.
// Test hooks (no MCP): GET /debug -> {headers, cancelled, deletes, sessions, gets};
// POST /debug/forget -> forgets every session; GET /debug/cancelled?id=N -> waits (10 s at most)
// until notifications/cancelled for request N arrived, then answers with its params.
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';

const args = process.argv.slice(2);
const port = Number(args.find((a) => /^\d+$/.test(a)) ?? 0);
const offerGet = !args.includes('--no-get');
const tls = args.find((a) => a.startsWith('--tls='))?.slice(6).split(',');
const createServer = (handler) => (tls
  ? createHttpsServer({ cert: readFileSync(tls[0]), key: readFileSync(tls[1]) }, handler)
  : createHttpServer(handler));

const sessions = new Set();
const seenHeaders = [];  // every request's headers, in order
const cancelled = [];    // params of every notifications/cancelled
const cancelWaiters = [];
let deletes = 0;
let gets = 0;
const getStreams = new Set();
const slowCalls = new Map();  // request id -> {timer, res}
const clientReplies = new Map();  // id of our request to the client -> resolve

const sse = (res) => {
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
  return (m) => res.write(`event: message\ndata: ${JSON.stringify({ jsonrpc: '2.0', ...m })}\n\n`);
};
const json = (res, status, body, headers = {}) => {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(body === undefined ? '' : JSON.stringify(body));
};
const readBody = (req) => new Promise((resolve) => {
  let data = '';
  req.on('data', (c) => { data += c; });
  req.on('end', () => resolve(data));
});

const tools = [
  { name: 'echo', description: 'Echoes its arguments', inputSchema: { type: 'object' } },
  { name: 'slow', description: 'Answers by SSE after ms', inputSchema: { type: 'object' } },
  { name: 'ping_client', description: 'Pings the client', inputSchema: { type: 'object' } },
  { name: 'fail500', description: 'HTTP 500', inputSchema: { type: 'object' } },
  { name: 'notify_get', description: 'Notifies on the GET stream', inputSchema: { type: 'object' } },
];

function callTool(m, res) {
  const args = m.params?.arguments ?? {};
  const name = m.params?.name;
  const result = (extra = {}) => ({ id: m.id, result: {
    content: [{ type: 'text', text: JSON.stringify(args) }],
    structuredContent: { arguments: args, ...extra } } });
  if (name === 'echo') return json(res, 200, { jsonrpc: '2.0', ...result() });
  if (name === 'fail500') return json(res, 500, { error: 'on demand' });
  if (name === 'notify_get') {  // waits (5 s at most) for a GET stream to be open
    const deadline = Date.now() + 5000;
    const go = () => {
      if (getStreams.size === 0 && Date.now() < deadline) return setTimeout(go, 10);
      for (const send of getStreams) send({ method: 'notifications/message', params: { level: 'info', data: args } });
      json(res, 200, { jsonrpc: '2.0', ...result({ streams: getStreams.size }) });
    };
    return go();
  }
  if (name === 'slow') {
    const send = sse(res);
    const token = m.params?._meta?.progressToken;
    if (token !== undefined) {
      send({ method: 'notifications/progress', params: { progressToken: token, progress: 1, total: 2 } });
      send({ method: 'notifications/progress', params: { progressToken: token, progress: 2, total: 2 } });
    }
    const timer = setTimeout(() => {
      slowCalls.delete(m.id);
      send(result());
      res.end();
    }, args.ms ?? 100);
    slowCalls.set(m.id, { timer, res });
    res.on('close', () => clearTimeout(timer));
    return;
  }
  if (name === 'ping_client') {
    const send = sse(res);
    const pingId = 'srv-' + randomUUID();
    clientReplies.set(pingId, (reply) => { send(result({ reply })); res.end(); });
    send({ id: pingId, method: 'ping' });
    return;
  }
  return json(res, 200, { jsonrpc: '2.0', id: m.id, error: { code: -32602, message: 'unknown tool' } });
}

const resource = { uri: 'fake://echo', name: 'echo', description: 'A short text', mimeType: 'text/plain' };
const prompt = { name: 'echo', description: 'Repeats its text argument',
  arguments: [{ name: 'text', description: 'What to repeat', required: true }] };

function readResource(m, res) {
  if (m.params?.uri !== resource.uri) {
    return json(res, 200, { jsonrpc: '2.0', id: m.id, error: { code: -32002, message: 'resource not found: ' + m.params?.uri } });
  }
  return json(res, 200, { jsonrpc: '2.0', id: m.id, result: {
    contents: [{ uri: resource.uri, mimeType: 'text/plain', text: 'echo resource' }] } });
}

function getPrompt(m, res) {
  if (m.params?.name !== prompt.name) {
    return json(res, 200, { jsonrpc: '2.0', id: m.id, error: { code: -32602, message: 'unknown prompt ' + m.params?.name } });
  }
  return json(res, 200, { jsonrpc: '2.0', id: m.id, result: { description: prompt.description, messages: [
    { role: 'user', content: { type: 'text', text: String(m.params.arguments?.text ?? '') } }] } });
}

async function handlePost(req, res) {
  let m;
  try { m = JSON.parse(await readBody(req)); } catch { return json(res, 400, { error: 'bad json' }); }
  if (m.method === 'initialize') {
    const sid = randomUUID();
    sessions.add(sid);
    return json(res, 200, { jsonrpc: '2.0', id: m.id, result: {
      protocolVersion: m.params.protocolVersion, capabilities: { tools: {}, resources: {}, prompts: {} },
      serverInfo: { name: 'fake-http', version: '1' } } }, { 'mcp-session-id': sid });
  }
  const sid = req.headers['mcp-session-id'];
  if (!sid) return json(res, 400, { error: 'no session' });
  if (!sessions.has(sid)) return json(res, 404, { error: 'unknown session' });
  if (m.method === undefined) {  // a response to one of our requests
    clientReplies.get(m.id)?.(m);
    clientReplies.delete(m.id);
    res.writeHead(202).end();
    return;
  }
  if (m.id === undefined) {  // a notification
    if (m.method === 'notifications/cancelled') {
      cancelled.push(m.params);
      const call = slowCalls.get(m.params.requestId);
      if (call) { clearTimeout(call.timer); slowCalls.delete(m.params.requestId); }
      for (const w of cancelWaiters.splice(0)) w();
    }
    res.writeHead(202).end();
    return;
  }
  if (m.method === 'tools/list') return json(res, 200, { jsonrpc: '2.0', id: m.id, result: { tools } });
  if (m.method === 'tools/call') return callTool(m, res);
  if (m.method === 'resources/list') return json(res, 200, { jsonrpc: '2.0', id: m.id, result: { resources: [resource] } });
  if (m.method === 'resources/read') return readResource(m, res);
  if (m.method === 'prompts/list') return json(res, 200, { jsonrpc: '2.0', id: m.id, result: { prompts: [prompt] } });
  if (m.method === 'prompts/get') return getPrompt(m, res);
  return json(res, 200, { jsonrpc: '2.0', id: m.id, error: { code: -32601, message: 'method not found' } });
}

function waitCancelled(id, res) {
  const deadline = Date.now() + 10000;
  const check = () => {
    const found = cancelled.find((c) => c.requestId === id);
    if (found) return json(res, 200, found);
    if (Date.now() > deadline) return json(res, 200, null);
    cancelWaiters.push(check);
    setTimeout(() => { const i = cancelWaiters.indexOf(check); if (i >= 0) cancelWaiters.splice(i, 1); check(); },
      Math.max(0, deadline - Date.now()) + 1);
  };
  check();
}

const server = createServer(async (req, res) => {
  const url = new URL(req.url, 'http://x');
  if (url.pathname === '/debug') {
    return json(res, 200, { headers: seenHeaders, cancelled, deletes, sessions: sessions.size, gets });
  }
  if (url.pathname === '/debug/forget') { sessions.clear(); return json(res, 200, {}); }
  if (url.pathname === '/debug/cancelled') return waitCancelled(Number(url.searchParams.get('id')), res);
  if (url.pathname !== '/mcp') return json(res, 404, { error: 'not found' });
  seenHeaders.push({ method: req.method, headers: req.headers });
  if (req.method === 'POST') return handlePost(req, res);
  if (req.method === 'GET') {
    if (!offerGet) return json(res, 405, { error: 'no GET stream' });
    const sid = req.headers['mcp-session-id'];
    if (!sid || !sessions.has(sid)) return json(res, 404, { error: 'unknown session' });
    gets++;
    const send = sse(res);
    res.write(': open\n\n');
    getStreams.add(send);
    res.on('close', () => getStreams.delete(send));
    return;
  }
  if (req.method === 'DELETE') {
    deletes++;
    sessions.delete(req.headers['mcp-session-id']);
    res.writeHead(200).end();
    return;
  }
  json(res, 405, { error: 'method not allowed' });
});
server.keepAliveTimeout = 60000;
server.listen(port, '127.0.0.1', () => {
  process.stdout.write(`${server.address().port}\n`);
});
