// The conformance suite's reference everything-server (everything-server.ts, pinned) as a stdio
// MCP server, so Custody's stdio upstream can be tested with the same server code. Its
// 2026-07-28 (stateless) side is written in its Express handler rather than its McpServer, so a
// StdioServerTransport on the McpServer would miss it: this is a bridge instead. It starts its
// own everything-server.ts (tsx) on a free loopback port and serves newline-delimited JSON-RPC on
// stdin/stdout by POSTing each message to it:
//   - MCP-Protocol-Version from params._meta (2026-07-28) or from a legacy initialize's answer
//     (with its Mcp-Session-Id); Mcp-Method and Mcp-Name set as a 2026-07-28 HTTP client would;
//   - the answer (application/json, chunked NDJSON, or text/event-stream) written back message by
//     message, whatever the HTTP status (the server's 400/404 bodies are JSON-RPC errors);
//   - notifications/cancelled aborts the POST of the request it names (on HTTP, closing the
//     stream is the cancel); nothing is written back for a notification.
// Answers to the server's own requests are dropped (2026-07-28 servers send none).
//   node everything-server-stdio.mjs [URL]  BRIDGE_LOG=<file>: every line in (>) and out (<)
import { appendFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';

import { freePort } from '../mcp/harness.mjs';
import { installed, startEverything } from '../mcp_conformance/conformance.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const LOG = process.env.BRIDGE_LOG;
const log = (dir, text) => { if (LOG) appendFileSync(LOG, `${new Date().toISOString()} ${dir} ${text}\n`); };

// The server's URL when given (the conformance run starts it beforehand, so that this bridge
// answers the gateway's server/discover probe at once: starting everything-server.ts under tsx
// can take longer than the 3 s the gateway waits on a busy machine, and the upstream would then
// be taken for a 2025-era one); otherwise the bridge starts its own.
let url = process.argv[2];
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => process.exit(0));
if (!url) {
  const port = await freePort();
  const server = await startEverything(port,
    { server: join(here, 'everything-server.ts'), tsx: installed(here).tsx });
  process.on('exit', () => server.kill('SIGKILL'));
  server.on('exit', (code, sig) => {
    console.error(`everything-server-stdio: everything-server exited (${code ?? sig})`);
    process.exit(1);
  });
  url = `http://127.0.0.1:${port}/mcp`;
}

const out = (msg) => { const line = JSON.stringify(msg); log('<', line); process.stdout.write(line + '\n'); };
const inflight = new Map();  // JSON-RPC id (as JSON) -> AbortController of its POST
const legacy = { version: undefined, session: undefined };

async function forward(msg) {
  const isRequest = msg.id !== undefined && msg.id !== null;
  if (msg.method === 'notifications/cancelled') inflight.get(JSON.stringify(msg.params?.requestId))?.abort();
  const version = msg.params?._meta?.['io.modelcontextprotocol/protocolVersion'];
  const headers = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' };
  if (version) {
    headers['mcp-protocol-version'] = String(version);
    headers['mcp-method'] = msg.method;
    const name = msg.params?.name ?? msg.params?.uri;
    if (typeof name === 'string') headers['mcp-name'] = name;
  } else {
    if (legacy.version) headers['mcp-protocol-version'] = legacy.version;
    if (legacy.session) headers['mcp-session-id'] = legacy.session;
  }
  const ac = new AbortController();
  if (isRequest) inflight.set(JSON.stringify(msg.id), ac);
  try {
    const r = await fetch(url, { method: 'POST', headers, body: JSON.stringify(msg), signal: ac.signal });
    if (!version && r.headers.get('mcp-session-id')) legacy.session = r.headers.get('mcp-session-id');
    if (!isRequest || !r.body) { await r.body?.cancel(); return; }
    const sse = (r.headers.get('content-type') ?? '').includes('text/event-stream');
    const emit = (text) => {
      if (!text.trim()) return;
      try {
        const m = JSON.parse(text);
        if (msg.method === 'initialize' && m.result?.protocolVersion) legacy.version = m.result.protocolVersion;
        out(m);
      } catch { console.error('everything-server-stdio: not JSON from the server: ' + text.slice(0, 200)); }
    };
    // NDJSON: one message a line. SSE: the data lines of an event, up to its blank line.
    let data = [];
    for await (const line of createInterface({ input: Readable.fromWeb(r.body), crlfDelay: Infinity })) {
      if (!sse) emit(line);
      else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
      else if (line === '' && data.length) emit(data.splice(0).join('\n'));
    }
    if (data.length) emit(data.join('\n'));
  } catch (e) {
    if (e.name !== 'AbortError' && isRequest) {
      out({ jsonrpc: '2.0', id: msg.id, error: { code: -32603, message: `everything-server-stdio: ${e.message}` } });
    }
  } finally {
    if (isRequest) inflight.delete(JSON.stringify(msg.id));
  }
}

const pending = new Set();
for await (const line of createInterface({ input: process.stdin })) {
  if (!line.trim()) continue;
  log('>', line);
  let msg;
  try { msg = JSON.parse(line); } catch { continue; }
  if (typeof msg.method !== 'string') continue;  // an answer to a server request: none to send
  const p = forward(msg);
  pending.add(p);
  p.finally(() => pending.delete(p));
}
await Promise.allSettled([...pending]);
process.exit(0);
