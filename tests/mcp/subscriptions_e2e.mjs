// Resource subscriptions and list changes through `custody serve`, both eras, over raw HTTP, in
// front of src/mcp/testdata/fake_server.mjs (stdio), which logs every resources/(un)subscribe it
// receives (its `subscriptions` tool) and announces an update or a list change on request.
// - Two 2025-11-25 MCP sessions subscribe to one resource (one spelled differently): the
//   upstream is subscribed once; one session's unsubscribe leaves the other's in place; an
//   update reaches the GET stream of the session still subscribed and not the other's.
// - A 2026-07-28 subscriptions/listen stream: the acknowledgement first, naming what it will
//   carry (a forbidden resource is left out); tool and prompt list changes and the resource's
//   updates on it, each tagged with the listen request's id; what was not asked for is not sent.
// - The last subscriber gone (the other session unsubscribed, the listener's session contained,
//   which closes its stream), the upstream is unsubscribed.
//   node subscriptions_e2e.mjs /path/to/custody [source root]
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { claims, registerAgent, request, startCustody } from './harness.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const custody = process.argv[2];
const sourceRoot = process.argv[3] ?? join(here, '..', '..');
if (!custody) {
  console.error('usage: node subscriptions_e2e.mjs /path/to/custody [source root]');
  process.exit(2);
}
const fake = join(sourceRoot, 'src/mcp/testdata/fake_server.mjs');
const dir = mkdtempSync(join(tmpdir(), 'custody-mcp-subs-'));
const SUB_ID = 'io.modelcontextprotocol/subscriptionId';
let server;
let stderrOf = () => '';
let nextId = 1;

// An SSE response read in the background: `messages` fills as events arrive.
function readStream(response) {
  const messages = [];
  const done = (async () => {
    const decoder = new TextDecoder();
    let buf = '';
    try {
      for await (const chunk of response.body) {
        buf += decoder.decode(chunk, { stream: true });
        let end;
        while ((end = buf.indexOf('\n\n')) >= 0) {
          const data = buf.slice(0, end).split('\n').filter((l) => l.startsWith('data:'))
            .map((l) => l.slice(5).trimStart()).join('\n');
          buf = buf.slice(end + 2);
          if (data) messages.push(JSON.parse(data));
        }
      }
    } catch { /* aborted */ }
  })();
  return { messages, done };
}

const until = async (what, check, ms = 3000) => {
  const t0 = Date.now();
  while (!check()) {
    if (Date.now() - t0 > ms) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
};
const quiet = () => new Promise((r) => setTimeout(r, 300));

async function main() {
  const started = await startCustody(custody, dir, `
[mcp.servers.fake]
command = ${JSON.stringify(process.execPath)}
args = [${JSON.stringify(fake)}]
`);
  server = started.server;
  stderrOf = started.stderr;
  const { url, adminToken } = started;
  const { session } = await registerAgent(url, adminToken, 'subs-agent', ['fake/*']);
  const pub = await request(url, '/v1/policies', { token: adminToken, body: { policies: `
@id("fake-all") permit(principal, action, resource in Server::"fake");
@id("no-secret") forbid(principal, action == Action::"read_resource", resource == Resource::"fake/fake://secret");
` } });
  assert.equal(pub.status, 200, pub.text);
  const token = await session();
  const post = (body, headers = {}) => request(url, '/mcp/fake', { token, body,
    headers: { accept: 'application/json, text/event-stream', ...headers } });
  const rpc = (sid, method, params = {}) =>
    post({ jsonrpc: '2.0', id: nextId++, method, params }, { 'mcp-session-id': sid });
  const open = async () => {
    const init = await post({ jsonrpc: '2.0', id: nextId++, method: 'initialize', params: {
      protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } });
    assert.equal(init.status, 200, init.text);
    const sid = init.headers.get('mcp-session-id');
    // The server's flags are offered: the gateway relays subscriptions and list changes.
    assert.deepEqual(init.json.result.capabilities.resources, { subscribe: true, listChanged: true }, init.text);
    assert.deepEqual(init.json.result.capabilities.prompts, { listChanged: true }, init.text);
    const get = await fetch(url + '/mcp/fake', { headers: { authorization: `Bearer ${token}`,
      accept: 'text/event-stream', 'mcp-session-id': sid } });
    assert.equal(get.status, 200);
    return { sid, stream: readStream(get) };
  };
  const log = async (sid) => {
    const r = await rpc(sid, 'tools/call', { name: 'subscriptions', arguments: {} });
    return r.json.result.structuredContent.log;
  };
  const announce = (sid, args) => rpc(sid, 'tools/call', { name: 'echo', arguments: args });

  // --- Two sessions, one upstream subscription.
  const a = await open();
  const b = await open();
  assert.deepEqual((await rpc(a.sid, 'resources/subscribe', { uri: 'FAKE://echo' })).json.result, {});
  assert.deepEqual((await rpc(b.sid, 'resources/subscribe', { uri: 'fake://echo' })).json.result, {});
  assert.deepEqual(await log(a.sid), [['resources/subscribe', 'fake://echo']]);
  assert.deepEqual((await rpc(a.sid, 'resources/unsubscribe', { uri: 'fake://echo' })).json.result, {});
  assert.deepEqual(await log(a.sid), [['resources/subscribe', 'fake://echo']],
    "one session's unsubscribe ended the other's subscription upstream");
  const denied = await rpc(a.sid, 'resources/subscribe', { uri: 'fake://secret' });
  assert.equal(denied.json.error?.code, -32001, denied.text);
  await announce(a.sid, { resource_updated: true });
  await until('the update on the subscribed session', () =>
    b.stream.messages.some((m) => m.method === 'notifications/resources/updated'));
  await quiet();
  assert.ok(!a.stream.messages.some((m) => m.method === 'notifications/resources/updated'),
    'an update reached a session that had unsubscribed');
  assert.equal(b.stream.messages.find((m) => m.method === 'notifications/resources/updated').params.uri,
    'fake://echo');
  console.log('ok two sessions, one upstream subscription: an unsubscribe ends only its own; ' +
    'updates reach only the subscribed');

  // --- A 2026-07-28 listen stream.
  const listenId = 'listen-1';
  const listenAbort = new AbortController();
  const listen = await fetch(url + '/mcp/fake', { method: 'POST', signal: listenAbort.signal, headers: {
    authorization: `Bearer ${token}`, 'content-type': 'application/json',
    accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2026-07-28',
    'mcp-method': 'subscriptions/listen' },
  body: JSON.stringify({ jsonrpc: '2.0', id: listenId, method: 'subscriptions/listen', params: {
    notifications: { toolsListChanged: true, promptsListChanged: true,
      resourceSubscriptions: ['fake://echo', 'fake://secret'] },
    _meta: { 'io.modelcontextprotocol/protocolVersion': '2026-07-28',
      'io.modelcontextprotocol/clientCapabilities': {} } } }) });
  assert.equal(listen.status, 200);
  assert.match(listen.headers.get('content-type'), /text\/event-stream/);
  const ls = readStream(listen);
  await until('the acknowledgement', () => ls.messages.length >= 1);
  const ack = ls.messages[0];
  assert.equal(ack.method, 'notifications/subscriptions/acknowledged', JSON.stringify(ack));
  assert.equal(ack.params._meta[SUB_ID], listenId);
  assert.deepEqual(ack.params.notifications, { toolsListChanged: true, promptsListChanged: true,
    resourceSubscriptions: ['fake://echo'] }, 'the acknowledgement names what will be carried');
  await announce(b.sid, { list_changed: true, prompts_changed: true, resource_updated: true });
  const methods = ['notifications/tools/list_changed', 'notifications/prompts/list_changed',
    'notifications/resources/updated'];
  await until('three notifications on the listen stream', () =>
    methods.every((m) => ls.messages.some((x) => x.method === m)));
  for (const m of ls.messages.slice(1)) {
    assert.equal(m.params?._meta?.[SUB_ID], listenId, `untagged: ${JSON.stringify(m)}`);
    assert.ok(methods.includes(m.method), `not asked for: ${JSON.stringify(m)}`);
  }
  console.log('ok a 2026-07-28 listen stream: acknowledged first (a forbidden resource left out), ' +
    'tool and prompt list changes and resource updates on it, each tagged with its id');

  // --- The last subscriber gone, the upstream is unsubscribed.
  await rpc(b.sid, 'resources/unsubscribe', { uri: 'fake://echo' });
  assert.deepEqual(await log(a.sid), [['resources/subscribe', 'fake://echo']],
    'unsubscribed upstream while the listen stream still held the resource');
  const contain = await request(url, '/v1/contain', { token: adminToken,
    body: { session: claims(token).sid, reason: 'subscriptions e2e' } });
  assert.equal(contain.status, 200, contain.text);
  await ls.done;  // containment closes the listen stream
  listenAbort.abort();
  // The session is contained: read the fake server's log through a new session's token.
  const other = await session();
  const init = await request(url, '/mcp/fake', { token: other, body: { jsonrpc: '2.0', id: nextId++,
    method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {},
      clientInfo: { name: 'raw', version: '1' } } } });
  const sid = init.headers.get('mcp-session-id');
  let last;
  for (let i = 0; i < 50 && last?.length !== 2; i++) {
    const r = await request(url, '/mcp/fake', { token: other, headers: { 'mcp-session-id': sid },
      body: { jsonrpc: '2.0', id: nextId++, method: 'tools/call', params: { name: 'subscriptions', arguments: {} } } });
    last = r.json?.result?.structuredContent?.log;
    if (last?.length !== 2) await new Promise((r2) => setTimeout(r2, 20));
  }
  assert.deepEqual(last, [['resources/subscribe', 'fake://echo'], ['resources/unsubscribe', 'fake://echo']]);
  console.log('ok the last subscriber gone (a session unsubscribed, a listener contained), the ' +
    'upstream is unsubscribed once');
}

try {
  await main();
  console.log('PASS');
} catch (e) {
  console.error('FAIL:', e);
  console.error('--- custody serve stderr ---\n' + stderrOf());
  process.exitCode = 1;
} finally {
  server?.kill('SIGTERM');
  rmSync(dir, { recursive: true, force: true });
}
