// A real MCP server that speaks only revision 2026-07-28 (stateless, per-request _meta), built on
// the official TypeScript SDK's server (@modelcontextprotocol/server 2.x). A peer for the gateway's
// tests: a legacy `initialize` is refused (legacy: 'reject'), input is asked through
// `input_required` results, change notifications go out on `subscriptions/listen` streams.
//   node modern_server.mjs http <port>   Streamable HTTP on 127.0.0.1:<port>, path /mcp; prints
//                                        `listening <port>` once ready (0: a free port, printed)
//   node modern_server.mjs stdio         newline-delimited JSON-RPC on stdin/stdout
// MODERN_SERVER_LOG=<file>: one JSON line per JSON-RPC message received, appended:
//   { transport, method, id?, meta: [params._meta keys], capabilities?, logLevel?,
//     tool?, inputResponses?, requestState?, headers? (HTTP: the mcp-* request headers),
//     txnToken? (the gateway's Transaction Token: the Txn-Token header, or stdio _meta) }
// Offers:
//   tools    echo {text} -> text; ask -> form elicitation of `name` -> "hello <name>";
//            sample -> sampling/createMessage -> the model's text; roots -> roots/list -> the
//            uris joined with ","; log -> notifications/message at debug, info, warning (as
//            _meta logLevel allows) -> "logged"; change -> registers added_<n> and fires
//            tools list_changed -> "changed"; touch {uri} -> resources/updated for uri -> "touched"
//   resources memo://one, memo://two (text/plain); subscribe and listChanged
//   prompts  greet {who (required)}
import { appendFileSync } from 'node:fs';
import http from 'node:http';

import { McpServer, createMcpHandler, fromJsonSchema, inputRequired, inputResponse } from '@modelcontextprotocol/server';
import { StdioServerTransport, serveStdio } from '@modelcontextprotocol/server/stdio';

const [mode, portArg] = process.argv.slice(2);
if (mode !== 'http' && mode !== 'stdio') {
  console.error('usage: node modern_server.mjs http <port> | stdio');
  process.exit(2);
}

const SERVER_INFO = { name: 'custody-modern-server', version: '1.0.0' };
const ASK_STATE = 'ask-state-v1';  // the opaque requestState the ask tool expects echoed
const MEMOS = { 'memo://one': 'first memo', 'memo://two': 'second memo' };

// --- What reached the server (MODERN_SERVER_LOG).
const LOG_FILE = process.env.MODERN_SERVER_LOG;
function record(message, transport, headers, txnToken) {
  if (!LOG_FILE || !message || typeof message !== 'object' || typeof message.method !== 'string') return;
  const params = message.params && typeof message.params === 'object' ? message.params : {};
  const meta = params._meta && typeof params._meta === 'object' ? params._meta : undefined;
  const line = { transport, method: message.method };
  if ('id' in message) line.id = message.id;
  line.meta = meta ? Object.keys(meta) : [];
  if (meta?.['io.modelcontextprotocol/clientCapabilities'] !== undefined) {
    line.capabilities = meta['io.modelcontextprotocol/clientCapabilities'];
  }
  if (meta?.['io.modelcontextprotocol/logLevel'] !== undefined) line.logLevel = meta['io.modelcontextprotocol/logLevel'];
  if (message.method === 'tools/call') {
    line.tool = params.name;
    line.inputResponses = params.inputResponses !== undefined;
    line.requestState = params.requestState !== undefined;
  }
  if (headers) line.headers = headers;
  // The Custody gateway's Transaction Token (HTTP: the Txn-Token header; stdio: _meta).
  const txn = txnToken ?? meta?.['dev.custody/txn-token'];
  if (txn !== undefined) line.txnToken = txn;
  try { appendFileSync(LOG_FILE, JSON.stringify(line) + '\n'); } catch (e) { console.error('MODERN_SERVER_LOG: ' + e.message); }
}

// --- The server surface, the same for both transports.
const text = (t) => ({ content: [{ type: 'text', text: t }] });
const objectSchema = (properties = {}, required = []) =>
  fromJsonSchema({ type: 'object', properties, ...(required.length ? { required } : {}) });
let added = 0;  // tools added by `change`, for the whole process
let httpHandler;  // HTTP: publishes change events to the listen streams

function build() {
  const server = new McpServer(SERVER_INFO, {
    capabilities: {
      tools: { listChanged: true },
      resources: { subscribe: true, listChanged: true },
      prompts: { listChanged: false },
      logging: {},
    },
    instructions: 'A 2026-07-28-only test server for the Custody gateway.',
  });

  server.registerTool('echo', { description: 'Returns its text argument',
    inputSchema: objectSchema({ text: { type: 'string' } }, ['text']) }, ({ text: t }) => text(t));

  server.registerTool('ask', { description: "Asks the user's name (form elicitation via input_required)" },
    (ctx) => {
      const answer = inputResponse(ctx.mcpReq.inputResponses, 'name');
      if (answer.kind === 'missing') {
        return inputRequired({
          inputRequests: {
            name: inputRequired.elicit({ mode: 'form', message: 'What is your name?',
              requestedSchema: { type: 'object', properties: { name: { type: 'string' } }, required: ['name'] } }),
          },
          requestState: ASK_STATE,
        });
      }
      const state = ctx.mcpReq.requestState();
      if (state !== ASK_STATE) {
        return { isError: true, ...text(`requestState not echoed: ${JSON.stringify(state ?? null)}`) };
      }
      if (answer.kind !== 'elicit') return { isError: true, ...text(`not an elicitation answer: ${answer.kind}`) };
      if (answer.action !== 'accept') return text(`ask ${answer.action}`);
      return text(`hello ${answer.content?.name}`);
    });

  server.registerTool('sample', { description: 'Asks for a model completion (sampling via input_required)' },
    (ctx) => {
      const answer = inputResponse(ctx.mcpReq.inputResponses, 'completion');
      if (answer.kind !== 'sampling') {
        return inputRequired({ inputRequests: { completion: inputRequired.createMessage({
          messages: [{ role: 'user', content: { type: 'text', text: 'Say something.' } }], maxTokens: 64 }) } });
      }
      const blocks = Array.isArray(answer.result.content) ? answer.result.content : [answer.result.content];
      return text(blocks.filter((b) => b?.type === 'text').map((b) => b.text).join(''));
    });

  server.registerTool('roots', { description: "Lists the client's roots (roots/list via input_required)" },
    (ctx) => {
      const answer = inputResponse(ctx.mcpReq.inputResponses, 'roots');
      if (answer.kind !== 'roots') return inputRequired({ inputRequests: { roots: inputRequired.listRoots() } });
      return text(answer.roots.map((r) => r.uri).join(','));
    });

  server.registerTool('log', { description: 'Logs at debug, info and warning' }, async (ctx) => {
    await ctx.mcpReq.log('debug', 'log tool: debug');
    await ctx.mcpReq.log('info', 'log tool: info');
    await ctx.mcpReq.log('warning', 'log tool: warning');
    return text('logged');
  });

  const addTool = (mcp, n) => mcp.registerTool(`added_${n}`, { description: `Added by change #${n}` },
    () => text(`added_${n}`));
  for (let n = 1; n <= added; n++) addTool(server, n);

  server.registerTool('change', { description: 'Adds a tool added_<n>; tools list_changed fires' }, () => {
    added += 1;
    if (httpHandler) httpHandler.notify.toolsChanged();
    else addTool(server, added);  // stdio: the connection's one instance; registering sends list_changed
    return text('changed');
  });

  server.registerTool('touch', { description: 'Marks a resource updated (resources/updated to subscribers)',
    inputSchema: objectSchema({ uri: { type: 'string' } }, ['uri']) }, async ({ uri }) => {
    if (httpHandler) httpHandler.notify.resourceUpdated(uri);
    else await server.server.sendResourceUpdated({ uri });  // routed onto listen streams
    return text('touched');
  });

  for (const [uri, body] of Object.entries(MEMOS)) {
    server.registerResource(uri.slice('memo://'.length), uri, { mimeType: 'text/plain', description: `Memo ${uri}` },
      (u) => ({ contents: [{ uri: u.href, mimeType: 'text/plain', text: body }] }));
  }

  server.registerPrompt('greet', { description: 'Greets someone',
    argsSchema: objectSchema({ who: { type: 'string', description: 'Who to greet' } }, ['who']) },
  ({ who }) => ({ messages: [{ role: 'user', content: { type: 'text', text: `Please greet ${who}.` } }] }));

  return server;
}

const onerror = (e) => { if (process.env.MODERN_SERVER_DEBUG) console.error('modern_server: ' + e.message); };
process.on('SIGTERM', () => process.exit(0));
process.on('SIGINT', () => process.exit(0));

if (mode === 'stdio') {
  // The SDK's stdio transport, with every inbound message recorded first.
  const wire = new StdioServerTransport();
  const logged = {
    start() {
      wire.onmessage = (m) => { record(m, 'stdio'); logged.onmessage?.(m); };
      wire.onclose = () => logged.onclose?.();
      wire.onerror = (e) => logged.onerror?.(e);
      return wire.start();
    },
    send: (m, o) => wire.send(m, o),
    close: () => wire.close(),
  };
  serveStdio(() => build(), { legacy: 'reject', transport: logged, onerror });
} else {
  httpHandler = createMcpHandler(() => build(), { legacy: 'reject', onerror });
  const server = http.createServer(async (req, res) => {
    try {
      const url = new URL(req.url, 'http://127.0.0.1');
      if (url.pathname !== '/mcp') {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
        return;
      }
      const chunks = [];
      for await (const c of req) chunks.push(c);
      const body = Buffer.concat(chunks);
      if (req.method === 'POST') {
        let parsed;
        try { parsed = JSON.parse(body.toString('utf8')); } catch { parsed = undefined; }
        const mcpHeaders = Object.fromEntries(Object.entries(req.headers).filter(([k]) => k.startsWith('mcp-')));
        for (const m of Array.isArray(parsed) ? parsed : [parsed]) record(m, 'http', mcpHeaders, req.headers['txn-token']);
      }
      // The web-standard handler: a Request in, a Response out; the client going away aborts it.
      const abort = new AbortController();
      res.on('close', () => { if (!res.writableFinished) abort.abort(); });
      const headers = new Headers();
      for (const [k, v] of Object.entries(req.headers)) {
        for (const one of Array.isArray(v) ? v : [v]) if (one !== undefined) headers.append(k, one);
      }
      const hasBody = req.method !== 'GET' && req.method !== 'HEAD';
      const response = await httpHandler.fetch(new Request(url, { method: req.method, headers,
        body: hasBody ? body : undefined, signal: abort.signal, duplex: 'half' }));
      res.writeHead(response.status, Object.fromEntries(response.headers));
      if (!response.body) {
        res.end();
        return;
      }
      res.flushHeaders();
      const reader = response.body.getReader();
      res.on('close', () => { reader.cancel().catch(() => {}); });
      try {
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          res.write(value);
        }
      } catch { /* the client went away */ }
      res.end();
    } catch (e) {
      onerror(e);
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
      res.end();
    }
  });
  server.listen(Number(portArg ?? 0), '127.0.0.1', () => {
    process.stdout.write(`listening ${server.address().port}\n`);
  });
}
