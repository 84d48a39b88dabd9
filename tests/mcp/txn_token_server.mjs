// A tool server that wants to know who is behind each call: a real MCP server built on the
// official TypeScript SDK (@modelcontextprotocol/sdk 1.x) that verifies the Transaction Token
// the Custody gateway sends with each tools/call (draft-ietf-oauth-transaction-tokens) with the
// `jose` npm package against Custody's JWKS, and answers with what it saw.
//   node txn_token_server.mjs http <port>   Streamable HTTP (stateless) on 127.0.0.1:<port>, path
//                                           /mcp; prints `listening <port>` (0: a free port)
//   node txn_token_server.mjs stdio         newline-delimited JSON-RPC on stdin/stdout
// Environment:
//   CUSTODY_JWKS_URL_FILE  a file holding the URL of Custody's /.well-known/jwks.json (the
//                      keys are fetched from the running server)
//   TXN_ISSUER         the iss the token must carry
//   TXN_AUDIENCE       the aud the token must carry (this server's audience)
//   TXN_SERVER_LOG     a file: everything that reached the server, raw (HTTP: each request's
//                      headers and body; stdio: every byte read from stdin)
// Tool `whoami` answers (JSON text):
//   { present: false }                       no token came with the call
//   { present: true, verified: false, error } the token did not verify
//   { present: true, verified: true, header, claims }
// Where the token is read: the Txn-Token HTTP header (HTTP), params._meta["dev.custody/txn-token"]
// (stdio). A token found in the other place is reported as `misplaced: true`.
import { appendFileSync, readFileSync } from 'node:fs';
import http from 'node:http';

import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { createRemoteJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';

const [mode, portArg] = process.argv.slice(2);
if (mode !== 'http' && mode !== 'stdio') {
  console.error('usage: node txn_token_server.mjs http <port> | stdio');
  process.exit(2);
}
const { CUSTODY_JWKS_URL_FILE, TXN_ISSUER, TXN_AUDIENCE, TXN_SERVER_LOG } = process.env;
if (!CUSTODY_JWKS_URL_FILE || !TXN_ISSUER || !TXN_AUDIENCE) {
  console.error('CUSTODY_JWKS_URL_FILE, TXN_ISSUER and TXN_AUDIENCE must be set');
  process.exit(2);
}
// Custody's JWKS URL is known only once it listens (port 0), after this server may have
// started: it is read from the file at the first token.
let jwks;
const keys = () => (jwks ??= createRemoteJWKSet(new URL(readFileSync(CUSTODY_JWKS_URL_FILE, 'utf8').trim())));
const META_KEY = 'dev.custody/txn-token';

function log(text) {
  if (TXN_SERVER_LOG) appendFileSync(TXN_SERVER_LOG, text);
}

// What the server makes of one call's token, as a relying party following the draft (§7.2):
// signature against the issuer's JWKS, typ, ES256 only, iss, aud, exp, and a short life.
async function examine(token) {
  if (!token) return { present: false };
  try {
    const { payload, protectedHeader } = await jwtVerify(token, keys(), {
      issuer: TXN_ISSUER,
      audience: TXN_AUDIENCE,
      typ: 'txntoken+jwt',
      algorithms: ['ES256'],
      requiredClaims: ['iat', 'exp', 'txn', 'sub', 'scope', 'req_wl'],
    });
    if (payload.exp - payload.iat > 60) throw new Error('lives longer than 60 s');
    return { present: true, verified: true, header: protectedHeader, claims: payload };
  } catch (e) {
    let header;
    try { header = decodeProtectedHeader(token); } catch { header = null; }
    return { present: true, verified: false, error: `${e.code ?? 'error'}: ${e.message}`, header };
  }
}

function newServer() {
  const server = new McpServer({ name: 'custody-txn-token-server', version: '1.0.0' });
  server.registerTool('whoami', { description: 'Says who the transaction token names' },
    async (extra) => {
      const fromHeader = extra.requestInfo?.headers?.['txn-token'];
      const fromMeta = extra._meta?.[META_KEY];
      const token = mode === 'http' ? fromHeader : fromMeta;
      const misplaced = mode === 'http' ? fromMeta !== undefined : fromHeader !== undefined;
      const seen = await examine(typeof token === 'string' ? token : undefined);
      return { content: [{ type: 'text', text: JSON.stringify({ ...seen, misplaced }) }] };
    });
  return server;
}

if (mode === 'stdio') {
  process.stdin.on('data', (chunk) => log(chunk.toString()));
  await newServer().connect(new StdioServerTransport());
} else {
  const httpServer = http.createServer(async (req, res) => {
    let body = '';
    for await (const chunk of req) body += chunk;
    log(JSON.stringify({ method: req.method, url: req.url, headers: req.headers, body }) + '\n');
    if (req.url !== '/mcp') {
      res.writeHead(404).end();
      return;
    }
    if (req.method !== 'POST') {  // stateless: no GET stream, no session to end
      res.writeHead(405, { allow: 'POST' }).end();
      return;
    }
    let parsed;
    try { parsed = JSON.parse(body); } catch {
      res.writeHead(400).end();
      return;
    }
    const server = newServer();
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
    res.on('close', () => { transport.close(); server.close(); });
    await server.connect(transport);
    await transport.handleRequest(req, res, parsed);
  });
  httpServer.listen(Number(portArg ?? 0), '127.0.0.1', () => {
    console.log(`listening ${httpServer.address().port}`);
  });
}
