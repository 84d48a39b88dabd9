// A tiny MCP stdio server for the gateway's unit and end-to-end tests (no dependencies).
// Tools: echo (returns its arguments and the _meta it received), slow (answers after `ms`),
// crash (exits with status 3 without answering), touch (writes the file named by
// FAKE_MARKER_FILE: proof that a call reached this server); slow also writes
// FAKE_MARKER_FILE.slow-started when it begins (and progress 0 when it has a progressToken), so a
// test knows the call is in flight, and a
// notifications/cancelled for it is recorded in FAKE_MARKER_FILE.cancelled. The description of echo is read from the file
// named by FAKE_DESC_FILE on every tools/list when that is set, so a test can change a tool's
// definition under the gateway. An echo whose arguments have list_changed: true first sends
// notifications/tools/list_changed.
// Beyond tools it declares resources and prompts, for the gateway's benchmark
// (tests/mcp/overhead_bench.mjs): one text resource, fake://echo (resources/list, resources/read),
// and one prompt, echo, with a `text` argument (prompts/list, prompts/get). Both answer at once.
// resources/subscribe and unsubscribe are answered and logged; the tool `subscriptions` returns
// that log. An echo with resource_updated: true sends notifications/resources/updated for
// fake://echo, with prompts_changed: true notifications/prompts/list_changed.
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { createInterface } from 'node:readline';

// A marker appears whole: a test that sees the file may read it at once (written, then renamed).
const writeMarker = (path, text) => {
  writeFileSync(path + '.tmp', text);
  renameSync(path + '.tmp', path);
};

process.stderr.write('fake server started\n');
const send = (m) => process.stdout.write(JSON.stringify({ jsonrpc: '2.0', ...m }) + '\n');
const description = () => {
  const f = process.env.FAKE_DESC_FILE;
  if (f) {
    try { return readFileSync(f, 'utf8').trim(); } catch { /* fall through */ }
  }
  return 'Echoes its arguments';
};

const resource = { uri: 'fake://echo', name: 'echo', description: 'A short text', mimeType: 'text/plain' };
const prompt = { name: 'echo', description: 'Repeats its text argument',
  arguments: [{ name: 'text', description: 'What to repeat', required: true }] };

const subscriptionLog = [];  // [method, uri] of every resources/(un)subscribe received
const timers = new Map();  // request id -> timer of a pending slow call
for await (const line of createInterface({ input: process.stdin })) {
  if (!line.trim()) continue;
  const m = JSON.parse(line);
  if (m.method === 'initialize') {
    // FAKE_INIT_DELAY_MS: a server slow to start; FAKE_INIT_FILE: written just before it answers
    // (after would race a gateway that reads the answer and listens before the file is there).
    const answer = () => {
      if (process.env.FAKE_INIT_FILE) writeMarker(process.env.FAKE_INIT_FILE, String(Date.now()));
      send({ id: m.id, result: { protocolVersion: m.params.protocolVersion, capabilities: { tools: {}, resources: { subscribe: true, listChanged: true }, prompts: { listChanged: true } },
        serverInfo: { name: 'fake', version: '1' } } });
    };
    const delay = Number(process.env.FAKE_INIT_DELAY_MS ?? 0);
    if (delay > 0) setTimeout(answer, delay); else answer();
  } else if (m.method === 'tools/list') {
    send({ id: m.id, result: { tools: [
      { name: 'echo', description: description(), inputSchema: { type: 'object' } },
      { name: 'slow', description: 'Answers after ms milliseconds', inputSchema: { type: 'object' } },
      { name: 'crash', description: 'Exits without answering', inputSchema: { type: 'object' } },
      { name: 'touch', description: 'Writes a marker file', inputSchema: { type: 'object' } },
      { name: 'fail', description: 'Answers with a JSON-RPC error of about `bytes` bytes', inputSchema: { type: 'object' } },
      { name: 'subscriptions', description: 'The resources/(un)subscribe requests received', inputSchema: { type: 'object' } },
    ] } });
  } else if (m.method === 'tools/call') {
    const args = m.params.arguments ?? {};
    if (m.params.name === 'crash') process.exit(3);
    const answer = () => send({ id: m.id, result: {
      content: [{ type: 'text', text: JSON.stringify(args) }],
      structuredContent: { arguments: args, meta: m.params._meta ?? null, pid: process.pid } } });
    if (m.params.name === 'echo' && args.list_changed === true) {
      send({ method: 'notifications/tools/list_changed' });
    }
    if (m.params.name === 'echo' && args.prompts_changed === true) {
      send({ method: 'notifications/prompts/list_changed' });
    }
    if (m.params.name === 'echo' && args.resource_updated === true) {
      send({ method: 'notifications/resources/updated', params: { uri: resource.uri } });
    }
    if (m.params.name === 'subscriptions') {
      send({ id: m.id, result: { content: [{ type: 'text', text: JSON.stringify(subscriptionLog) }],
        structuredContent: { log: subscriptionLog } } });
      continue;
    }
    if (m.params.name === 'touch') writeMarker(process.env.FAKE_MARKER_FILE, 'reached\n');
    if (m.params.name === 'slow' && process.env.FAKE_MARKER_FILE) {
      writeMarker(process.env.FAKE_MARKER_FILE + '.slow-started', 'started\n');
    }
    // slow with a progressToken reports progress 0 at once (so its answer is a stream).
    const token = m.params._meta?.progressToken;
    if (m.params.name === 'slow' && token !== undefined) {
      send({ method: 'notifications/progress', params: { progressToken: token, progress: 0 } });
    }
    if (m.params.name === 'fail') {
      send({ id: m.id, error: { code: -32000, message: 'failed: ' + 'x'.repeat(args.bytes ?? 10) } });
    } else if (m.params.name === 'slow') timers.set(m.id, setTimeout(answer, args.ms ?? 100));
    else if (m.params.name === 'echo' || m.params.name === 'touch') answer();
    else send({ id: m.id, error: { code: -32602, message: 'unknown tool ' + m.params.name } });
  } else if (m.method === 'resources/subscribe' || m.method === 'resources/unsubscribe') {
    subscriptionLog.push([m.method, m.params?.uri]);
    send({ id: m.id, result: {} });
  } else if (m.method === 'resources/list') {
    send({ id: m.id, result: { resources: [resource] } });
  } else if (m.method === 'resources/read') {
    if (m.params?.uri === resource.uri) {
      send({ id: m.id, result: { contents: [{ uri: resource.uri, mimeType: 'text/plain', text: 'echo resource' }] } });
    } else send({ id: m.id, error: { code: -32002, message: 'resource not found: ' + m.params?.uri } });
  } else if (m.method === 'prompts/list') {
    send({ id: m.id, result: { prompts: [prompt] } });
  } else if (m.method === 'prompts/get') {
    if (m.params?.name === prompt.name) {
      send({ id: m.id, result: { description: prompt.description, messages: [
        { role: 'user', content: { type: 'text', text: String(m.params.arguments?.text ?? '') } }] } });
    } else send({ id: m.id, error: { code: -32602, message: 'unknown prompt ' + m.params?.name } });
  } else if (m.method === 'notifications/cancelled') {
    // A cancelled request is not answered; FAKE_MARKER_FILE.cancelled records that it came.
    clearTimeout(timers.get(m.params.requestId));
    timers.delete(m.params.requestId);
    if (process.env.FAKE_MARKER_FILE) {
      writeMarker(process.env.FAKE_MARKER_FILE + '.cancelled', JSON.stringify(m.params) + '\n');
    }
  } else if (m.id !== undefined && m.method) {
    send({ id: m.id, error: { code: -32601, message: 'method not found' } });
  }
}
