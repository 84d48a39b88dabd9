// A tiny MCP 2026-07-28 stdio server for StdioUpstream's tests (no dependencies): it answers
// server/discover as a 2026-07-28 server, and its one tool, ask, first answers input_required
// (one elicitation), then, sent again with inputResponses, completes with the Transaction Token
// (params._meta["dev.custody/txn-token"]) each send of it carried.
import { createInterface } from 'node:readline';

const send = (m) => process.stdout.write(JSON.stringify({ jsonrpc: '2.0', ...m }) + '\n');
const tokens = [];
for await (const line of createInterface({ input: process.stdin })) {
  if (!line.trim()) continue;
  const m = JSON.parse(line);
  if (m.method === 'server/discover') {
    send({ id: m.id, result: { resultType: 'complete', supportedVersions: ['2026-07-28'],
      capabilities: { tools: {} }, serverInfo: { name: 'fake-modern', version: '1' } } });
  } else if (m.method === 'tools/call' && m.params?.name === 'ask') {
    tokens.push(m.params._meta?.['dev.custody/txn-token'] ?? null);
    if (!m.params.inputResponses) {
      send({ id: m.id, result: { resultType: 'input_required', requestState: 'round-1',
        inputRequests: { who: { method: 'elicitation/create',
          params: { message: 'Who?', requestedSchema: { type: 'object', properties: {} } } } } } });
    } else {
      send({ id: m.id, result: { resultType: 'complete', content: [],
        structuredContent: { tokens, responses: m.params.inputResponses } } });
    }
  } else if (m.id !== undefined && m.method) {
    send({ id: m.id, error: { code: -32601, message: 'method not found' } });
  }
}
