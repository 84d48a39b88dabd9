// OCSF export on PostgreSQL (storage.backend = "postgres"), against the CTest fixture's
// throwaway cluster (CUSTODY_TEST_PG_DIR: its `port` file; src/store/testing/pg_cluster.h).
// `custody serve` with [export.ocsf] file streams every entry to a file; `custody export
// --format ocsf --postgres-url …` reads the same ledger from the database: the two are the same
// records, in ledger order, each valid OCSF 1.8.0.
//
// Usage: node export_postgres_e2e.mjs <custody binary> <source root>
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { eventually, registerAgent, request, startCustody, stopCleanly } from '../mcp/harness.mjs';
import { validate } from './validate.mjs';

const [custody] = process.argv.slice(2);
const pgDir = process.env.CUSTODY_TEST_PG_DIR;
if (!custody || !pgDir) throw new Error('usage: CUSTODY_TEST_PG_DIR=DIR export_postgres_e2e.mjs <custody>');
const port = readFileSync(join(pgDir, 'port'), 'utf8').trim();
const db = `custody_ocsf_${process.pid}`;
execFileSync('psql', [`host=127.0.0.1 port=${port} user=custody dbname=postgres`, '-qc',
  `CREATE DATABASE ${db}`]);
const pgUrl = `postgresql://custody@127.0.0.1:${port}/${db}`;

const dir = mkdtempSync(join(tmpdir(), 'custody-ocsf-pg-'));
const kek = join(dir, 'kek');
writeFileSync(kek, randomBytes(32).toString('hex') + '\n', { mode: 0o600 });
const out = join(dir, 'ocsf.ndjson');
let proc;
try {
  proc = await startCustody(custody, dir, `
[storage]
backend = "postgres"
postgres_url = "${pgUrl}"
key_encryption_key_file = "${kek}"
[export.ocsf]
file = "${out}"
poll_ms = 20
`);
  const { url, adminToken } = proc;
  await registerAgent(url, adminToken, 'pg-bot', ['files/*']);
  const appended = await request(url, '/v1/ledger/entries', { token: adminToken,
    body: [{ kind: 'custom.note', time: '2026-12-06T10:00:00.000Z', n: 1 }, { n: 2 }] });
  assert.equal(appended.status, 201, appended.text);
  const cp = await request(url, '/v1/ledger/checkpoint', { method: 'GET' });
  const size = Number(cp.text.split('\n')[1]);
  const lines = () => (existsSync(out) ? readFileSync(out, 'utf8').split('\n').filter((l) => l) : []);
  await eventually('the file sink', () => lines().length >= size, 15000);
  await stopCleanly(proc.server, proc.stderr);
  proc = undefined;

  const exported = spawnSync(custody, ['export', '--format', 'ocsf', '--postgres-url', pgUrl],
    { encoding: 'utf8' });
  assert.equal(exported.status, 0, exported.stderr);
  const records = exported.stdout.split('\n').filter((l) => l);
  assert.equal(records.length, size, 'one record per ledger entry');
  assert.deepEqual(records, lines(), 'the sink wrote what export reads');
  records.forEach((line, i) => {
    const r = JSON.parse(line);
    assert.equal(r.unmapped.custody.ledger.index, i);
    assert.deepEqual(validate(r), [], `record ${i} is valid OCSF`);
  });
  console.log(`ocsf export on postgres: ${size} records, sink = export, all valid`);
} finally {
  if (proc) proc.server.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
  spawnSync('psql', [`host=127.0.0.1 port=${port} user=custody dbname=postgres`, '-qc',
    `DROP DATABASE IF EXISTS ${db} WITH (FORCE)`]);
}
