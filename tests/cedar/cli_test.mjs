// End-to-end test of `custody cedar authorize` and `custody cedar check` on the hand-written
// sample data of the reference tests (../shared/cedar-integration-tests).
//   node cli_test.mjs --custody PATH --shared DIR
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

function arg(name) {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}
const custody = arg('custody');
const shared = arg('shared');
if (!custody || !existsSync(custody) || !shared || !existsSync(shared)) {
  console.error(`cli_test: need --custody BINARY and --shared DIR (got ${custody}, ${shared})`);
  process.exit(1);
}
let failures = 0;
function expect(cond, what) {
  if (!cond) {
    failures++;
    console.error(`FAIL: ${what}`);
  }
}
const run = (args, input) => spawnSync(custody, args, { input, encoding: 'utf8' });

// authorize: one line out per line in, schema-based parsing of the context, errors reported.
const sb = join(shared, 'sample-data', 'sandbox_b');
const policies = join(shared, 'tests', 'decimal', 'policies_1.cedar');
const req = (ctx) => JSON.stringify({
  principal: { type: 'User', id: 'alice' }, action: { type: 'Action', id: 'view' },
  resource: { type: 'Photo', id: 'VacationPhoto94.jpg' }, context: ctx });
const r1 = run(['cedar', 'authorize', '--policies', policies, '--entities', join(sb, 'entities.json'),
  '--schema', join(sb, 'schema_exts.cedarschema')],
  [req({ confidence_score: '0.8', source_ip: '123.123.123.123', authenticated: false }),
   req({ confidence_score: '0.2345', source_ip: '123.123.123.123', authenticated: true })].join('\n') + '\n');
expect(r1.status === 0, `authorize exit status ${r1.status}: ${r1.stderr}`);
const lines = r1.stdout.trim().split('\n');
expect(lines.length === 2, `authorize printed ${lines.length} lines`);
expect(lines[0] === '{"decision":"allow","reason":["policy0"],"errors":[]}', `first decision: ${lines[0]}`);
expect(lines[1] === '{"decision":"deny","reason":[],"errors":[]}', `second decision: ${lines[1]}`);

// A malformed request line keeps the output aligned and fails the command at the end.
const r2 = run(['cedar', 'authorize', '--policies', policies, '--entities', join(sb, 'entities.json'),
  '--schema', join(sb, 'schema_exts.cedarschema')], 'not json\n');
expect(r2.status === 2, `malformed request exit status ${r2.status}`);
expect(r2.stdout.trim() === '{"error":"invalid request"}', `malformed request output: ${r2.stdout}`);
expect(/invalid request/.test(r2.stderr), `malformed request stderr: ${r2.stderr}`);

// --request FILE, @id annotations, and an erroring policy.
const dir = mkdtempSync(join(tmpdir(), 'cedar-cli-'));
writeFileSync(join(dir, 'p.cedar'), '@id("viewers") permit(principal, action == Action::"view", resource);\n' +
  'forbid(principal, action, resource) when { principal.nope };\n');
writeFileSync(join(dir, 'e.json'), '[]');
writeFileSync(join(dir, 'r.json'), JSON.stringify({ principal: { type: 'User', id: 'a' },
  action: { type: 'Action', id: 'view' }, resource: { type: 'Photo', id: 'p' }, context: {} }));
const r3 = run(['cedar', 'authorize', '--policies', join(dir, 'p.cedar'), '--entities', join(dir, 'e.json'),
  '--request', join(dir, 'r.json')]);
expect(r3.status === 0, `--request exit status ${r3.status}: ${r3.stderr}`);
const d3 = JSON.parse(r3.stdout);
expect(d3.decision === 'allow' && d3.reason.join() === 'viewers', `--request decision ${r3.stdout}`);
expect(d3.errors.length === 1 && d3.errors[0].policy === 'policy1' && d3.errors[0].message.length > 0,
  `--request errors ${r3.stdout}`);

// check: every parse error with file:line:column, exit 1; a good file prints the hash.
writeFileSync(join(dir, 'bad.cedar'), 'permit(principal, action, resource) when { 1 + };\n' +
  'forbid(principal, action, resource) when { a < b < c };\n');
const r4 = run(['cedar', 'check', '--policies', join(dir, 'bad.cedar')]);
expect(r4.status === 1, `check bad exit status ${r4.status}`);
const errs = r4.stderr.trim().split('\n');
expect(errs.length === 2, `check reported ${errs.length} errors: ${r4.stderr}`);
expect(/bad\.cedar:1:48: .*expected/.test(errs[0]), `first error: ${errs[0]}`);
expect(/bad\.cedar:2:\d+: /.test(errs[1] || ''), `second error: ${errs[1]}`);
const r5 = run(['cedar', 'check', '--policies', join(dir, 'p.cedar')]);
expect(r5.status === 0 && /^ok: 2 policies, sha256 [0-9a-f]{64}$/.test(r5.stdout.trim()), `check good: ${r5.stdout}`);

// Missing files are clear errors.
const r6 = run(['cedar', 'authorize', '--policies', join(dir, 'missing.cedar'), '--entities', join(dir, 'e.json')], '');
expect(r6.status !== 0 && /cannot read/.test(r6.stderr), `missing file: ${r6.status} ${r6.stderr}`);

console.log(`cli_test: ${failures === 0 ? 'all checks passed' : `${failures} failures`}`);
process.exit(failures === 0 ? 0 : 1);
