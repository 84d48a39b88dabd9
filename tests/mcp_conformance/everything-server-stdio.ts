// The conformance suite's reference everything-server (everything-server.ts, pinned) served over
// stdio instead of Streamable HTTP, so Custody's stdio upstream can be tested with the same
// McpServer. Upstream runs it over HTTP only; this adds nothing but the transport.
//   tsx everything-server-stdio.ts
// stdout is the JSON-RPC channel, so the fixture's console.log diagnostics go to stderr.
// Its Streamable-HTTP-only tool (test_reconnection closes an SSE stream) has no stream to close
// here; the other tools, resources, prompts, logging, completion and the server-to-client
// requests (sampling, elicitation) behave as over HTTP.
console.log = (...args: unknown[]) => console.error(...args);

const { StdioServerTransport } = await import('@modelcontextprotocol/sdk/server/stdio.js');
const { createMcpServer } = await import('./everything-server.ts');

await createMcpServer().connect(new StdioServerTransport());
