// The official MCP conformance suite's 2026-07-28 server scenarios (@modelcontextprotocol/
// conformance 0.2.0-alpha.12, pinned, with `--requirements 2026-07-28`: the scenarios that revision
// requires, frozen at its release, plus the extension and pending ones it runs unscored), three
// runs at once: directly against the suite's reference everything-server (everything-server.ts,
// run with tsx), and through `custody serve` in front of other instances of it, as a Streamable
// HTTP upstream and as a stdio upstream (everything-server-stdio.mjs, a bridge to it).
//   node conformance2026.mjs /path/to/custody [source root]
// Fails unless, through Custody as both upstream kinds, (1) every scenario that passes directly
// passes, and (2) every scenario in expected_through_custody.json passes (some fail directly, on
// the reference server's own defects). Prints a table of every scenario's results either way.
// The machinery (token proxy, suite runs, verdicts, table, lifecycle) is
// ../mcp_conformance/conformance.mjs's, and so is the Node 20 shim (node20.mjs).
// Needs `npm ci` here and in tests/mcp_conformance (scripts/test.sh does both).
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { freePort } from '../mcp/harness.mjs';
import {
  installed, mark, RUNS, runEverywhere, runTest, startEverything, startGateway,
} from '../mcp_conformance/conformance.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const custody = process.argv[2];
if (!custody) {
  console.error('usage: node conformance2026.mjs /path/to/custody [source root]');
  process.exit(2);
}
const { cli, tsx } = installed(here);
const SUITE = { cwd: here, cli, preload: join(here, 'node20.mjs'), args: ['--requirements', '2026-07-28'] };
const SERVER = join(here, 'everything-server.ts');
const EXPECTED_FILE = join(here, 'expected_through_custody.json');
const listed = JSON.parse(readFileSync(EXPECTED_FILE, 'utf8')).scenarios;

// Through Custody a scenario must pass when it is listed or passes directly.
const required = (name, results) => listed.includes(name) || results.direct.get(name)?.pass;

// A cell of the table: a failure through Custody is a regression when the scenario is required.
function cell(kind, v, name, results) {
  if (kind === 'direct' || v.pass) return mark(v);
  return required(name, results) ? 'FAIL (REGRESSION)' : 'fail (expected)';
}

async function main() {
  if (!Array.isArray(listed)) throw new Error(`${EXPECTED_FILE}: no "scenarios" list`);
  // A reference server for each run that needs one over HTTP: list changes and listen streams are
  // server-wide, so runs sharing a server could see each other's notifications.
  // The stdio run's server is started here too, and its bridge is given its URL: a bridge that
  // started it itself could answer the gateway's server/discover probe too late on a busy machine.
  const [direct, upstream, behindStdio] = await Promise.all([freePort(), freePort(), freePort()]);
  await Promise.all([direct, upstream, behindStdio].map((port) => startEverything(port, { server: SERVER, tsx })));
  const through = await startGateway(custody, upstream,
    [join(here, 'everything-server-stdio.mjs'), `http://127.0.0.1:${behindStdio}/mcp`]);
  const { names, results, problems } = await runEverywhere(
    { direct: `http://localhost:${direct}/mcp`, ...through }, SUITE, cell);

  const failing = (kind) => names.filter((n) => results[kind].get(n) && !results[kind].get(n).pass);
  console.log('\nFailures (the first failing checks of each):');
  for (const { kind, title } of RUNS) {
    for (const n of failing(kind)) console.log(`  ${title} ${n}: ${results[kind].get(n).why.slice(0, 300)}`);
  }
  for (const n of listed.filter((n) => !names.includes(n))) {
    problems.push(`${n} is listed in ${EXPECTED_FILE} but is not a scenario the suite ran`);
  }
  for (const { kind, title } of RUNS.slice(1)) {
    for (const n of failing(kind).filter((n) => required(n, results))) {
      problems.push(`${title}: ${n} fails (${listed.includes(n) ? 'listed' : 'it passes directly'}): ` +
        results[kind].get(n).why.slice(0, 300));
    }
  }
  if (problems.length) throw new Error(problems.join('\n'));
  const passDirectly = names.filter((n) => results.direct.get(n).pass);
  console.log(`\nok through Custody, as an http and as a stdio upstream: the ${passDirectly.length} ` +
    `scenarios of ${names.length} that pass directly pass, and the ${listed.length} listed in ` +
    'expected_through_custody.json pass');
}

await runTest(main, 'PASS mcp conformance 2026-07-28 scenarios');
