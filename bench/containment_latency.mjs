// Cross-node containment latency (#19): a session revoked at node A (POST
// /v1/sessions/{sid}/revoke), and node B polled in a tight loop (POST /v1/actions:authorize with
// that session's token, one keep-alive connection, one request in flight) until it refuses it
// (401). Each round takes a fresh session (token exchange at A with the agent's JWT-SVID), checks
// that B allows it, then revokes and polls. Measured from sending the revoke to B's first 401,
// and from A's answer to the revoke to B's first 401 (negative when B refused before A's answer
// arrived). With B = A, the same-node figure for comparison.
// Used by bench/multi_node_bench.sh:
//   node bench/containment_latency.mjs URL_A URL_B ADMIN_TOKEN ISSUER CLIENT SECRET [rounds=200]
import http from 'node:http';

const [urlA, urlB, admin, issuer, client, secret] = process.argv.slice(2, 8);
const rounds = Number(process.argv[8] ?? 200);
if (!secret) {
  console.error('usage: node containment_latency.mjs URL_A URL_B ADMIN_TOKEN ISSUER CLIENT SECRET [rounds]');
  process.exit(2);
}
// One keep-alive connection per node and role, so the poll never waits for a connection.
const agents = new Map();
function agentFor(key) {
  if (!agents.has(key)) agents.set(key, new http.Agent({ keepAlive: true, maxSockets: 1 }));
  return agents.get(key);
}
function post(base, path, headers, body, role) {
  const u = new URL(path, base);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: u.hostname, port: u.port, path: u.pathname, method: 'POST',
      agent: agentFor(`${base} ${role}`),
      headers: { ...headers, 'content-length': Buffer.byteLength(body) } }, (res) => {
      let data = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { data += d; });
      res.on('end', () => resolve({ status: res.statusCode, body: data }));
    });
    req.on('error', reject);
    req.end(body);
  });
}
const form = (o) => Object.entries(o).map(([k, v]) => `${k}=${encodeURIComponent(v)}`).join('&');
const formHeaders = { 'content-type': 'application/x-www-form-urlencoded' };

async function token(fields) {
  const r = await post(urlA, '/oauth2/token', formHeaders, form(fields), 'setup');
  if (r.status !== 200) throw new Error(`/oauth2/token: ${r.status} ${r.body}`);
  return JSON.parse(r.body).access_token;
}
const svid = await token({ grant_type: 'client_credentials', client_id: client,
  client_secret: secret, audience: issuer });
async function session() {
  return token({ grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange', client_id: client,
    client_secret: secret, audience: `${issuer}/mcp`,
    subject_token: JSON.stringify({ sub: 'bench-initiator' }),
    subject_token_type: 'urn:custody:params:oauth:token-type:initiator-assertion',
    actor_token: svid, actor_token_type: 'urn:ietf:params:oauth:token-type:jwt' });
}
const authorizeBody = JSON.stringify({ action: 'call_tool',
  target: { server: 'github', tool: 'get_issue' } });
const authorize = (tok) => post(urlB, '/v1/actions:authorize',
  { 'content-type': 'application/json', authorization: `Bearer ${tok}` }, authorizeBody, 'poll');

const fromSend = [];
const fromAnswer = [];
const polls = [];
for (let i = 0; i < rounds; ++i) {
  const tok = await session();
  const sid = JSON.parse(Buffer.from(tok.split('.')[1], 'base64url').toString()).sid;
  const before = await authorize(tok);
  if (before.status !== 200 || JSON.parse(before.body).decision !== 'allow') {
    throw new Error(`round ${i}: B does not allow the fresh session: ${before.status} ${before.body}`);
  }
  let answered = null;
  const t0 = process.hrtime.bigint();
  const revoke = post(urlA, `/v1/sessions/${sid}/revoke`,
    { 'content-type': 'application/json', authorization: `Bearer ${admin}` },
    '{"reason":"containment latency benchmark"}', 'revoke').then((r) => {
    answered = process.hrtime.bigint();
    if (r.status !== 200) throw new Error(`revoke: ${r.status} ${r.body}`);
  });
  let n = 0;
  let refusedAt = null;
  while (refusedAt === null) {
    const r = await authorize(tok);
    ++n;
    if (r.status === 401) refusedAt = process.hrtime.bigint();
    else if (r.status !== 200) throw new Error(`round ${i}: B answered ${r.status} ${r.body}`);
    if (n > 200000) throw new Error(`round ${i}: B still allows the session after ${n} polls`);
  }
  await revoke;
  fromSend.push(Number(refusedAt - t0) / 1e6);
  fromAnswer.push(Number(refusedAt - answered) / 1e6);
  polls.push(n);
}
const pct = (a, p) => {
  const s = [...a].sort((x, y) => x - y);
  return s[Math.min(s.length - 1, Math.floor(p * s.length))];
};
const f = (x) => x.toFixed(2);
console.log(`containment ${urlA} -> ${urlB}, ${rounds} rounds: ` +
  `revoke sent -> B refuses p50 ${f(pct(fromSend, 0.5))} ms p99 ${f(pct(fromSend, 0.99))} ms ` +
  `max ${f(pct(fromSend, 1))} ms; revoke answered -> B refuses p50 ${f(pct(fromAnswer, 0.5))} ms ` +
  `p99 ${f(pct(fromAnswer, 0.99))} ms; polls per round p50 ${pct(polls, 0.5)} max ${pct(polls, 1)}`);
for (const a of agents.values()) a.destroy();
