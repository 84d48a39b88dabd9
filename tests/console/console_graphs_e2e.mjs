// Console.GraphsE2E: the console's session trees, blast radius and identity graph
// (docs/CONSOLE.md) in a real browser (Debian's chromium, headless, driven by playwright-core),
// against a real `custody serve` holding a generated deployment of more than 2,000 graph nodes
// (agents, asserted initiators, sessions and tools, made through the API in AuthZEN batches).
//
// - The identity graph and a blast-radius graph render: the node counts cytoscape holds match
//   the API's answers; the graph library is not part of the first load (a chunk of its own).
// - Granted against used: a never-used grant is marked as a removal candidate.
// - An admin contains a session tree from the console (confirmation, required reason): the tree
//   turns revoked and the agent's next call is refused; then contains an agent.
// - A reader sees no contain button, and the API refuses the reader's console session anyway.
// Screenshots of each view go to argv[4] (the test's build directory).
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

import { request, startCustody } from '../mcp/harness.mjs';
import { agentWithSessions, collectBodies, createReaderToken, dataDir, evaluate, finish, launch, loadChromium, pool, signIn } from './lib.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const custody = process.argv[2];
const shotDir = process.argv[4] ?? join(here, '..', '..', 'build');
if (!custody) {
  console.error('usage: node console_graphs_e2e.mjs /path/to/custody [source root] [screenshot dir]');
  process.exit(2);
}
const chromium = await loadChromium();

const POLICY = '@id("allow-tools") permit(principal, action == Action::"call_tool", resource);\n' +
  '@id("no-vault") forbid(principal, action == Action::"call_tool", resource in Server::"vault");';
// Larger deployments for a measurement: CUSTODY_GRAPHS_SESSIONS=<per agent> (default 30).
const AGENTS = 40;
const SESSIONS_PER_AGENT = Number(process.env.CUSTODY_GRAPHS_SESSIONS ?? 30);
const USERS = 25;
const pad = (n) => String(n).padStart(2, '0');

const dir = mkdtempSync(join(tmpdir(), 'custody-console-graphs-'));
const t = { dir };  // what the test started, for finish()
let error;
try {
  t.proc = await startCustody(custody, dir, '');
  const { url, adminToken } = t.proc;
  const api = (path, opts = {}) => request(url, path, { method: 'GET', token: adminToken, ...opts });
  const pub = await request(url, '/v1/policies', { token: adminToken, body: { policies: POLICY } });
  assert.equal(pub.status, 200, pub.text);

  // --- A deployment: 40 agents, 1,200 sessions started for 25 people (asserted), ~800 tools,
  // a vault every agent is granted but the policies forbid, and one grant per agent never used.
  const t0 = Date.now();
  const agents = await pool(Array.from({ length: AGENTS }, (_, a) => () =>
    agentWithSessions(url, adminToken, `agent-${pad(a)}`, [`srv-${a % 10}/*`, 'vault/*', `unused-${a}/*`])), 8);
  const jobs = [];
  for (let s = 0; s < SESSIONS_PER_AGENT; s++) {
    agents.forEach((ag, a) => jobs.push(async () => {
      const token = await ag.session(`user-${pad((s + a) % USERS)}@example.com`);
      const targets = [`srv-${a % 10}/tool-${(s * 7 + a) % 80}`];
      if (s % 4 === 0) targets.push('vault/read-secret');
      const d = await evaluate(url, token, ag.name, targets);
      assert.equal(d[0].decision, true, JSON.stringify(d[0]));
      if (targets.length > 1) assert.equal(d[1].decision, false, JSON.stringify(d[1]));
    }));
  }
  await pool(jobs, 8);
  // Two session trees to contain: a root with a delegated child (another agent) each.
  const lead = await agentWithSessions(url, adminToken, 'triage-lead', ['files/*']);
  const helper = await agentWithSessions(url, adminToken, 'triage-helper', ['files/*']);
  const trees = [];
  for (const who of ['dana@example.com', 'erin@example.com']) {
    const rootToken = await lead.session(who);
    const childToken = await helper.delegate(rootToken);
    assert.equal((await evaluate(url, rootToken, lead.name, ['files/read']))[0].decision, true);
    assert.equal((await evaluate(url, childToken, helper.name, ['files/write']))[0].decision, true);
    const auth = await request(url, '/v1/actions:authorize', { token: childToken,
      body: { target: { server: 'files', tool: 'read' } } });
    assert.equal(auth.json?.decision, 'allow', auth.text);
    trees.push({ rootToken, childToken, sid: auth.json.session });
  }
  for (const t of trees) {
    const s = await api(`/v1/sessions/${t.sid}`);
    assert.equal(s.status, 200, s.text);
    t.root = s.json.session.root_sid;
  }
  const graph = await api('/v1/graph');
  assert.equal(graph.status, 200, graph.text);
  const nodeCount = graph.json.nodes.length;
  assert.ok(nodeCount >= 2000, `the deployment has ${nodeCount} graph nodes`);
  console.log(`ok a deployment of ${nodeCount} graph nodes and ${graph.json.edges.length} edges ` +
    `(${AGENTS} agents, ${AGENTS * SESSIONS_PER_AGENT + 4} sessions) made in ${Date.now() - t0} ms`);

  t.browser = await launch(chromium);
  const context = await t.browser.newContext({ viewport: { width: 1500, height: 950 } });
  const page = await context.newPage();
  t.page = page;
  const pageErrors = [];
  page.on('pageerror', (e) => pageErrors.push(String(e)));
  page.on('console', (m) => { if (m.type() === 'error') pageErrors.push(m.text()); });
  const { loaded, allLoaded } = collectBodies(page);

  // --- Sign in; the graph library is not in the first load.
  await signIn(page, url, adminToken);
  await allLoaded();
  const first = loaded.filter((r) => r.url.includes('/console/'));
  const gz = first.reduce((n, r) => n + gzipSync(r.body).length, 0);
  assert.ok(gz < 300 * 1024, `first load is ${gz} bytes gzip`);
  assert.ok(!first.some((r) => /cytoscape/.test(r.url)), 'cytoscape is loaded only with a graph');
  console.log(`ok first load ${gz} bytes gzip, without the graph library`);

  // --- The identity graph of the whole deployment.
  const t1 = Date.now();
  await page.click('[data-testid=nav-graph]');
  await page.waitForSelector('[data-testid=identity-graph][data-rendered=true]', { timeout: 60000 });
  const drawnIn = Date.now() - t1;
  const fetchedIn = Math.round(await page.evaluate(() =>
    performance.getEntriesByType('resource').filter((e) => e.name.endsWith('/v1/graph')).at(-1)?.duration ?? -1));
  await allLoaded();
  const chunk = loaded.find((r) => /cytoscape.*\.js$/.test(r.url));
  assert.ok(chunk, 'the graph library came as its own chunk');
  const cyNodes = Number(await page.getAttribute('[data-testid=identity-graph]', 'data-nodes'));
  const cyEdges = Number(await page.getAttribute('[data-testid=identity-graph]', 'data-edges'));
  assert.equal(cyNodes, nodeCount, 'cytoscape holds every node of the graph answer');
  assert.equal(cyEdges, graph.json.edges.length, 'and every edge');
  assert.ok((await page.textContent('[data-testid=graph-count]')).startsWith(`${nodeCount} of ${nodeCount} nodes`));
  await page.screenshot({ path: join(shotDir, 'console_identity_graph.png') });
  console.log(`ok the identity graph rendered ${cyNodes} nodes and ${cyEdges} edges in cytoscape ` +
    `(${drawnIn} ms from the click, of which GET /v1/graph ${fetchedIn} ms; chunk ${gzipSync(chunk.body).length} bytes gzip)`);
  // Zoomed in (the + button, about the middle): labels drawn once they can be read.
  assert.equal(await page.getAttribute('[data-testid=identity-graph]', 'data-labels'), 'false');
  for (let i = 0; i < 6 && await page.getAttribute('[data-testid=identity-graph]', 'data-labels') !== 'true'; i++) {
    await page.click('[data-testid=graph-zoom-in]');
  }
  assert.equal(await page.getAttribute('[data-testid=identity-graph]', 'data-labels'), 'true', 'labels once zoomed in');
  await page.waitForTimeout(500);
  const zoomBox = await page.locator('[data-testid=identity-graph]').boundingBox();
  await page.screenshot({ path: join(shotDir, 'console_identity_graph_zoomed.png'),
    clip: { x: zoomBox.x, y: zoomBox.y, width: Math.min(zoomBox.width, 900), height: Math.min(zoomBox.height, 420) } });
  // Filtered: one agent, with what their sessions touched one step away.
  // Redrawn with between lo and hi nodes (no eval in the page: the CSP forbids it).
  const waitRedraw = async (lo, hi) => page.waitForFunction(([l, h]) => {
    const el = document.querySelector('[data-testid=identity-graph]');
    const n = Number(el?.dataset.nodes);
    return el?.dataset.rendered === 'true' && n >= l && n <= h;
  }, [lo, hi]);
  await page.fill('[data-testid=graph-filter]', 'agent-07');
  await waitRedraw(2, 200);
  const filtered = Number(await page.getAttribute('[data-testid=identity-graph]', 'data-nodes'));
  const expected = new Set();
  for (const e of graph.json.edges) {
    if (e.from === 'agent:agent-07' || e.to === 'agent:agent-07') { expected.add(e.from); expected.add(e.to); }
  }
  assert.equal(filtered, expected.size, 'the filter keeps the match and its neighbours');
  await page.screenshot({ path: join(shotDir, 'console_identity_graph_filtered.png') });
  await page.fill('[data-testid=graph-filter]', '');
  await page.uncheck('[data-testid=graph-type-session]');
  const sessions = graph.json.nodes.filter((n) => n.type === 'session').length;
  await waitRedraw(nodeCount - sessions, nodeCount - sessions);
  console.log(`ok filtered by name (${filtered} nodes) and by type (${nodeCount - sessions} without sessions)`);

  // --- Blast radius of an agent: graph, table, granted against used.
  await page.evaluate(() => { location.hash = '#/blast/agent/agent-03'; });
  await page.waitForSelector('[data-testid=blast-graph][data-rendered=true][data-subject="agent:agent-03"]');
  const br = (await api('/v1/blast-radius?kind=agent&id=agent-03')).json;
  const targets = new Set([...br.potential.map((p) => p.target), ...br.actual.map((a) => a.target)]);
  const brNodes = Number(await page.getAttribute('[data-testid=blast-graph]', 'data-nodes'));
  assert.equal(brNodes, 1 + br.agents.length + targets.size, 'subject, agents and targets drawn');
  assert.equal(await page.locator('[data-testid=blast-row]').count(), targets.size);
  const vault = await page.textContent('[data-testid=blast-row][data-target="vault/read-secret"]');
  assert.ok(/^vault\/read-secret\s*no\s*0\s*[1-9]/.test(vault), `vault: potential no, 0 allowed, denied: ${vault}`);
  await page.waitForSelector('[data-testid=review][data-agent=agent-03] [data-testid=grant]');
  const unused = '[data-testid=grant][data-scope="unused-3/*"]';
  assert.equal(await page.getAttribute(unused, 'data-used'), 'false');
  assert.equal(await page.locator(`${unused} [data-testid=removal-candidate]`).count(), 1);
  assert.equal(await page.getAttribute('[data-testid=grant][data-scope="srv-3/*"]', 'data-used'), 'true');
  assert.equal(await page.locator('[data-testid=grant][data-scope="srv-3/*"] [data-testid=removal-candidate]').count(), 0);
  await page.screenshot({ path: join(shotDir, 'console_blast_radius.png'), fullPage: true });
  // Of a person: every agent their sessions used.
  await page.evaluate(() => { location.hash = '#/blast/user/user-04%40example.com'; });
  await page.waitForSelector('[data-testid=blast-graph][data-rendered=true][data-subject="user:user-04@example.com"]');
  const brUser = (await api('/v1/blast-radius?kind=user&id=user-04%40example.com')).json;
  assert.ok(brUser.agents.length > 1, JSON.stringify(brUser).slice(0, 300));
  const userTargets = new Set([...brUser.potential.map((p) => p.target), ...brUser.actual.map((a) => a.target)]);
  assert.equal(Number(await page.getAttribute('[data-testid=blast-graph]', 'data-nodes')),
    1 + brUser.agents.length + userTargets.size);
  console.log(`ok blast radius of an agent (${brNodes} nodes, ${targets.size} targets) and of a person ` +
    `(${brUser.agents.length} agents); never-used grants marked as removal candidates`);

  // --- Sessions: the list, a tree, containment of a session from the console.
  await page.click('[data-testid=nav-sessions]');
  await page.waitForSelector('[data-testid=session-root]');
  await page.fill('[data-testid=sessions-filter]', 'triage-lead');
  await page.waitForFunction(() => document.querySelectorAll('[data-testid=session-root]').length === 2);
  await page.click(`[data-testid=session-root][data-sid="${trees[0].root}"]`);
  await page.waitForSelector('[data-testid=session-tree][data-status=live]');
  assert.equal(await page.locator('[data-testid=tree-session]').count(), 2, 'the root and its delegated child');
  const treeText = await page.textContent('[data-testid=session-tree]');
  for (const want of ['dana@example.com', 'asserted', 'triage-lead', 'triage-helper', 'spiffe://']) {
    assert.ok(treeText.includes(want), `the tree shows ${want}`);
  }
  await page.screenshot({ path: join(shotDir, 'console_sessions.png') });
  await page.click(`[data-testid=tree-session][data-sid="${trees[0].root}"] [data-testid=contain-session]`);
  await page.waitForSelector('[data-testid=contain-dialog]');
  assert.equal(await page.isDisabled('[data-testid=contain-confirm]'), true, 'no reason, no containment');
  await page.fill('[data-testid=contain-reason]', 'incident 42: exfiltration suspected');
  await page.screenshot({ path: join(shotDir, 'console_contain_dialog.png') });
  await page.click('[data-testid=contain-confirm]');
  await page.waitForSelector('[data-testid=session-tree][data-status=revoked]');
  await page.waitForSelector('[data-testid=contain-done]');
  assert.equal(await page.locator('[data-testid=tree-session][data-status=revoked]').count(), 2, 'the whole tree');
  await page.screenshot({ path: join(shotDir, 'console_sessions_contained.png') });
  for (const token of [trees[0].rootToken, trees[0].childToken]) {
    const next = await request(url, '/v1/actions:authorize', { token,
      body: { target: { server: 'files', tool: 'read' } } });
    assert.equal(next.status, 401, `the agent's next call is refused: ${next.text}`);
  }
  const contained = await api(`/v1/sessions/${trees[0].root}`);
  assert.equal(contained.json.session.revoke_reason, 'incident 42: exfiltration suspected');
  console.log('ok an admin contained a session tree from the console (reason required): it shows revoked, ' +
    "and the agents' next calls are refused (401)");
  // An agent, from the same view: disabled, its other tree revoked.
  await page.evaluate((sid) => { location.hash = '#/sessions/' + sid; }, trees[1].root);
  await page.waitForSelector('[data-testid=session-tree][data-status=live]');
  await page.click(`[data-testid=tree-session][data-sid="${trees[1].root}"] [data-testid=contain-agent]`);
  await page.fill('[data-testid=contain-reason]', 'incident 42: the lead agent');
  await page.click('[data-testid=contain-confirm]');
  await page.waitForSelector('[data-testid=session-tree][data-status=revoked]');
  assert.equal((await api('/v1/agents/triage-lead')).json.disabled, true);
  const after = await request(url, '/v1/actions:authorize', { token: trees[1].rootToken,
    body: { target: { server: 'files', tool: 'read' } } });
  assert.equal(after.status, 401, after.text);
  console.log('ok an admin contained an agent from the console: disabled, its sessions revoked');

  // --- A reader: no contain button, and the API refuses the reader's console session anyway.
  await page.click('[data-testid=sign-out]');
  await page.waitForSelector('[data-testid=token]');
  const readerToken = createReaderToken(custody, dataDir(dir));
  let csrf;
  page.on('request', (r) => { csrf ??= r.headers()['x-custody-csrf']; });
  await page.fill('[data-testid=token]', readerToken);
  await page.click('[data-testid=sign-in]');
  assert.equal(await page.textContent('[data-testid=role]'), 'reader');
  // A root session of agent-05 (every session of the generated agents is a root).
  const someRoot = graph.json.edges.find((e) => e.type === 'acted_as' && e.to === 'agent:agent-05').from
    .slice('session:'.length);
  await page.evaluate((sid) => { location.hash = '#/sessions/' + sid; }, someRoot);
  await page.waitForSelector('[data-testid=session-tree][data-status=live]');
  assert.equal(await page.locator('[data-testid=contain-session], [data-testid=contain-agent]').count(), 0,
    'a reader gets no contain button');
  assert.ok(csrf, "the reader's console session sent its CSRF header");
  const refused = await page.evaluate(async ([sid, token]) => {
    const r = await fetch('/v1/contain', { method: 'POST', credentials: 'same-origin',
      headers: { 'Content-Type': 'application/json', 'X-Custody-CSRF': token },
      body: JSON.stringify({ session: sid, reason: 'a reader tries' }) });
    return { status: r.status, body: await r.text() };
  }, [someRoot, csrf]);
  assert.equal(refused.status, 403, `a reader's containment is refused: ${JSON.stringify(refused)}`);
  const bearer = await request(url, '/v1/contain', { token: readerToken, body: { session: someRoot, reason: 'x' } });
  assert.equal(bearer.status, 403, bearer.text);
  assert.equal((await api(`/v1/sessions/${someRoot}`)).json.session.status, 'active', 'still live');
  await page.screenshot({ path: join(shotDir, 'console_sessions_reader.png') });
  console.log("ok a reader sees no contain button; the API refuses the reader's console session (403) and token (403)");

  const unexpected = pageErrors.filter((e) => !/status of 40[13]/.test(e));
  assert.equal(unexpected.length, 0, 'no errors in the page (a CSP refusal would be one): ' + unexpected.join('\n'));
} catch (e) {
  error = e;
}
await finish(t, error, join(shotDir, 'console_graphs_failure.png'));
