// Runs the Cedar benchmark workload through the official cedar-wasm build, for comparison with
// bench/cedar_benchmark.cc on identical inputs.
//
//   CEDAR_BENCH_DUMP=/tmp/cedarbench build/cedar-rel/src/policy/custody_cedar_benchmark \
//       --benchmark_filter=none          # writes the workload files
//   node bench/cedar/wasm_bench.mjs /tmp/cedarbench [--driver PATH_TO_DIFFTEST_DRIVER]
//
// cedar-wasm is used at its best: the policy set is pre-parsed once (statefulIsAuthorized) and
// each call receives only the entity slice the request needs (principal and its groups, the
// resource and its server, the action and its group), not the whole store. `tenants=N` runs the
// 10-policy set plus policies for other tenants (see cedar_benchmark.cc). With --driver, the
// decisions are also checked against Custody's engine.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const wasmPath = join(here, '..', '..', 'tests', 'cedar', 'node_modules', '@cedar-policy', 'cedar-wasm',
  'nodejs', 'cedar_wasm.js');
if (!existsSync(wasmPath)) {
  console.error(`wasm_bench: ${wasmPath} is missing; run \`npm ci\` in tests/cedar first`);
  process.exit(1);
}
const cedar = createRequire(import.meta.url)(wasmPath);
const dir = process.argv[2];
const di = process.argv.indexOf('--driver');
const driver = di >= 0 ? process.argv[di + 1] : undefined;

const entities = JSON.parse(readFileSync(join(dir, 'entities.json'), 'utf8'));
const requests = readFileSync(join(dir, 'requests.jsonl'), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
const byKey = new Map(entities.map((e) => [`${e.uid.type}::${e.uid.id}`, e]));
function slice(req) {
  const out = new Map();
  const visit = (uid) => {
    const k = `${uid.type}::${uid.id}`;
    if (out.has(k) || !byKey.has(k)) return;
    const e = byKey.get(k);
    out.set(k, e);
    for (const p of e.parents) visit(p);
  };
  visit(req.principal);
  visit(req.action);
  visit(req.resource);
  return [...out.values()];
}
const slices = requests.map(slice);

console.log(`cedar-wasm ${cedar.getCedarVersion()}, node ${process.version}, ${requests.length} requests`);
const sets = [10, 100, 1000].map((n) => [`policies=${n}`, `policies_${n}.cedar`, n])
  .concat([10, 100, 1000].map((n) => [`tenants=${n}`, `tenants_${n}.cedar`, n]));
for (const [label, file, n] of sets) {
  const text = readFileSync(join(dir, file), 'utf8');
  const id = `bench-${file}`;
  const pre = cedar.preparsePolicySet(id, { staticPolicies: text });
  if (pre.type !== 'success') throw new Error(JSON.stringify(pre));
  const decide = (i) => cedar.statefulIsAuthorized({ ...requests[i], preparsedPolicySetId: id, entities: slices[i] });
  for (let i = 0; i < 200; i++) decide(i % requests.length); // warm-up
  const rounds = n === 1000 ? 1 : 3;
  const samples = [];
  const decisions = [];
  const t0 = process.hrtime.bigint();
  for (let r = 0; r < rounds; r++) {
    for (let i = 0; i < requests.length; i++) {
      const s = process.hrtime.bigint();
      const a = decide(i);
      samples.push(Number(process.hrtime.bigint() - s) / 1000);
      if (a.type !== 'success') throw new Error(JSON.stringify(a.errors));
      if (r === 0) decisions.push(a.response);
    }
  }
  const total = Number(process.hrtime.bigint() - t0) / 1e9;
  samples.sort((a, b) => a - b);
  const p50 = samples[Math.floor(samples.length / 2)];
  const p99 = samples[Math.floor(samples.length * 0.99)];
  const allow = decisions.filter((d) => d.decision === 'allow').length;
  let agree = '';
  if (driver) {
    const line = JSON.stringify({ policies: text, entities, requests });
    // Policy ids: the driver uses positional ids like cedar-wasm's text parser; @id annotations
    // in the workload are ignored by both.
    const ours = JSON.parse(execFileSync(driver, { input: line + '\n', maxBuffer: 1 << 28 }).toString()).results;
    let diff = 0;
    ours.forEach((o, i) => {
      const w = decisions[i];
      const same = o.decision === w.decision &&
        JSON.stringify([...o.reason].sort()) === JSON.stringify([...w.diagnostics.reason].sort()) &&
        JSON.stringify(o.errors.map((e) => e.policy).sort()) === JSON.stringify(w.diagnostics.errors.map((e) => e.policyId).sort());
      if (!same) diff++;
    });
    agree = `, decisions differing from Custody: ${diff}`;
  }
  console.log(`${label}: p50 ${p50.toFixed(2)} us, p99 ${p99.toFixed(2)} us, ` +
    `${(samples.length / total).toFixed(0)} req/s, allow ${(100 * allow / decisions.length).toFixed(1)}%${agree}`);
}
