// Differential fuzzing: random Cedar policy sets, entity hierarchies, contexts and requests are
// decided by the official cedar-wasm build and by Custody's engine (through the
// custody_policy_difftest_driver tool); decisions, reason sets and error sets must agree.
//
//   node difftest.mjs --driver PATH [--cases N] [--seed S] [--requests R] [--verbose]
//
// The suite runs a bounded, seeded run; start a longer one by hand with a larger --cases and
// another --seed. Integers in entity and context data stay within +-2^53 (JavaScript numbers).
import { spawn } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const wasmPath = join(here, 'node_modules', '@cedar-policy', 'cedar-wasm', 'nodejs', 'cedar_wasm.js');
if (!existsSync(wasmPath)) {
  console.error(`difftest: ${wasmPath} is missing; run \`npm ci\` in ${here} first`);
  process.exit(1);
}
const require = createRequire(import.meta.url);
const cedar = require(wasmPath);

function arg(name, dflt) {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : dflt;
}
const driver = arg('driver');
const numCases = Number(arg('cases', '1000'));
const seed = Number(arg('seed', '1'));
const reqsPerCase = Number(arg('requests', '4'));
const verbose = process.argv.includes('--verbose');
if (!driver || !existsSync(driver)) {
  console.error(`difftest: --driver must name the built custody_policy_difftest_driver (got ${driver})`);
  process.exit(1);
}

// mulberry32: small, seeded, reproducible.
let state = seed >>> 0;
function rand() {
  state = (state + 0x6d2b79f5) >>> 0;
  let t = state;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const int = (n) => Math.floor(rand() * n);
const pick = (xs) => xs[int(xs.length)];
const chance = (p) => rand() < p;

const USERS = ['alice', 'bob', 'carol', 'dave'];
const GROUPS = ['admins', 'staff', 'all'];
const DOCS = ['d1', 'd2', 'd3'];
const FOLDERS = ['f1', 'f2'];
const ACTIONS = ['read', 'write', 'delete'];
const ACTION_GROUPS = ['readOnly', 'any'];
const STRINGS = ['', 'a', 'abc', 'a*c', 'hello world', 'x\\y', 'ünï', 'line\nbreak', 'tab\tx', 'quote"q', '*', '日本'];
const LONGS = [0, 1, -1, 2, 7, 42, 100, -100, 2 ** 53 - 1, -(2 ** 53) + 1];
const BIG_LITERALS = ['9223372036854775807', '-9223372036854775808', '4611686018427387904', '3037000500'];
const DECIMALS = ['0.0', '1.5', '-2.25', '3.1415', '100.0', '-0.0001', '922337203685477.5807'];
const IPS = ['127.0.0.1', '10.0.0.1', '10.0.0.0/8', '192.168.1.0/24', '224.0.0.1', '::1', 'ff02::1',
  '2001:db8::/32', '0.0.0.0/0', '10.1.2.3/16'];
const DATETIMES = ['2024-01-01', '2024-02-29T12:30:00Z', '1969-12-31T23:59:59.999Z', '2023-06-15T08:00:00+0230',
  '2025-12-31T23:59:59-1100', '1970-01-01'];
const DURATIONS = ['1d', '2h30m', '-15m', '90s', '1500ms', '0ms', '1d2h3m4s5ms', '-3d'];

// Malformed or edge-case literals, used only in policy text so they surface as evaluation
// (extension) errors rather than as rejected entity data.
const BAD_DECIMALS = ['1.23456', '-.5', '1.', '+1.0', '01.5', '-0.5', '922337203685477.5808', '1e3', ''];
const BAD_IPS = ['01.2.3.4', '1.2.3.4/33', '1.2.3.4/08', '::ffff:1.2.3.4', '1:2:3:4:5:6:7:8:9', '::', '1.2.3',
  'FF02::1', '1::2::3', '255.255.255.255/32', '::/0', '1.2.3.4/', '2001:DB8:0:0:0:0:0:1/129'];
const BAD_DATETIMES = ['2024-13-01', '2024-02-30', '2023-02-29', '2024-01-01T24:00:00Z', '2024-01-01T00:00:60Z',
  '2024-01-01T00:00:00+2400', '2024-01-01T00:00:00+0060', '2024-1-01', '2024-01-01T00:00:00.1Z',
  '2024-01-01T00:00:00', '0000-01-01', '9999-12-31T23:59:59.999-2359', '2024-01-01T00:00:00.123+0100'];
const BAD_DURATIONS = ['1h1d', '', '-', '1d-2h', '9223372036854775807ms', '9223372036854775808ms', '106751991167d',
  '106751991168d', '1m1ms', '1.5h', '-9223372036854775808ms', '1d1d', 'ms', '5 m'];
const litPick = (good, bad) => strLit(chance(0.25) ? pick(bad) : pick(good));

const strLit = (s) => JSON.stringify(s); // JSON escapes are valid Cedar escapes for these strings
const uid = (type, id) => ({ type, id });
const uidText = (u) => `${u.type}::${strLit(u.id)}`;

function randUserOrGroup() {
  return chance(0.6) ? uid('User', pick(USERS)) : uid('Group', pick(GROUPS));
}
function randResource() {
  return chance(0.7) ? uid('Doc', pick(DOCS)) : uid('Folder', pick(FOLDERS));
}

// ---- data -----------------------------------------------------------------------------------

function extn(fn, arg) {
  return { __extn: { fn, arg } };
}
function randRecordData(depth) {
  const r = {};
  if (chance(0.7)) r.n = pick(LONGS);
  if (chance(0.5)) r.s = pick(STRINGS);
  if (depth < 2 && chance(0.3)) r.inner = randRecordData(depth + 1);
  return r;
}
// A quarter of the cases carry this schema: their data is then validated against it, written
// partly without escapes (entity references as {type, id}, extension values as strings), and
// the action hierarchy comes from the schema instead of the entity data.
const SCHEMA = `
type Profile = { n?: Long, s?: String, inner?: { n?: Long, s?: String, inner?: { n?: Long, s?: String } } };
entity Group in [Group] = { size?: Long };
entity Folder = { shared?: Bool };
entity User in [Group] = { age?: Long, name?: String, roles?: Set<String>, manager?: User,
                           level?: decimal, addr?: ipaddr, profile?: Profile } tags String;
entity Doc in [Folder] = { owner?: User, public?: Bool, size?: Long, created?: datetime,
                           labels?: Set<String> } tags String;
type Ctx = { n?: Long, s?: String, flag?: Bool, when?: datetime, dur?: duration, addr?: ipaddr,
             amount?: decimal, list?: Set<Long>, who?: User, rec?: Profile };
action readOnly, any;
action read in [readOnly, any] appliesTo { principal: [User, Group], resource: [Doc, Folder], context: Ctx };
action write in [any] appliesTo { principal: [User, Group], resource: [Doc, Folder], context: Ctx };
action delete appliesTo { principal: [User], resource: [Doc], context: Ctx };
`;
let schemaMode = false;

// Drops escapes (at random) where the schema says what a value is.
function unescapeValue(v) {
  if (Array.isArray(v)) return v.map(unescapeValue);
  if (v && typeof v === 'object') {
    if (v.__entity && chance(0.5)) return v.__entity;
    if (v.__extn && chance(0.5)) return v.__extn.arg;
    if (v.__entity || v.__extn) return v;
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, unescapeValue(x)]));
  }
  return v;
}

function randEntities() {
  const out = [];
  for (const u of USERS) {
    if (chance(0.1)) continue; // missing entities exercise the error paths
    const attrs = {};
    if (chance(0.85)) attrs.age = pick(LONGS);
    if (chance(0.8)) attrs.name = pick(STRINGS);
    if (chance(0.7)) attrs.roles = Array.from({ length: int(3) }, () => pick(['admin', 'dev', 'ops']));
    if (chance(0.6)) attrs.manager = { __entity: uid('User', pick(USERS)) };
    if (chance(0.5)) attrs.level = extn('decimal', pick(DECIMALS));
    if (chance(0.5)) attrs.addr = extn('ip', pick(IPS));
    if (chance(0.5)) attrs.profile = randRecordData(0);
    const parents = GROUPS.filter(() => chance(0.4)).map((g) => uid('Group', g));
    const e = { uid: uid('User', u), attrs, parents };
    if (chance(0.5)) e.tags = { team: pick(STRINGS), clearance: schemaMode ? String(pick(LONGS)) : pick(LONGS) };
    out.push(e);
  }
  for (const g of GROUPS) {
    const parents = g === 'all' ? [] : chance(0.7) ? [uid('Group', 'all')] : [];
    out.push({ uid: uid('Group', g), attrs: chance(0.5) ? { size: pick(LONGS) } : {}, parents });
  }
  for (const d of DOCS) {
    if (chance(0.1)) continue;
    const attrs = {};
    if (chance(0.8)) attrs.owner = { __entity: uid('User', pick(USERS)) };
    if (chance(0.7)) attrs.public = chance(0.5);
    if (chance(0.6)) attrs.size = pick(LONGS);
    if (chance(0.5)) attrs.created = extn('datetime', pick(DATETIMES));
    if (chance(0.4)) attrs.labels = Array.from({ length: int(3) }, () => pick(STRINGS));
    const parents = FOLDERS.filter(() => chance(0.5)).map((f) => uid('Folder', f));
    const e = { uid: uid('Doc', d), attrs, parents };
    if (chance(0.5)) e.tags = { sensitivity: pick(['low', 'high']), ttl: schemaMode ? pick(DURATIONS) : extn('duration', pick(DURATIONS)) };
    out.push(e);
  }
  for (const f of FOLDERS) out.push({ uid: uid('Folder', f), attrs: { shared: chance(0.5) }, parents: [] });
  if (schemaMode) return out.map((e) => ({ ...e, attrs: unescapeValue(e.attrs) }));
  for (const a of ACTIONS) {
    const parents = ACTION_GROUPS.filter(() => chance(0.5)).map((g) => uid('Action', g));
    out.push({ uid: uid('Action', a), attrs: {}, parents });
  }
  for (const g of ACTION_GROUPS) out.push({ uid: uid('Action', g), attrs: {}, parents: [] });
  return out;
}
function randContext() {
  const c = {};
  if (chance(0.8)) c.n = pick(LONGS);
  if (chance(0.7)) c.s = pick(STRINGS);
  if (chance(0.7)) c.flag = chance(0.5);
  if (chance(0.5)) c.when = extn('datetime', pick(DATETIMES));
  if (chance(0.5)) c.dur = extn('duration', pick(DURATIONS));
  if (chance(0.5)) c.addr = extn('ip', pick(IPS));
  if (chance(0.5)) c.amount = extn('decimal', pick(DECIMALS));
  if (chance(0.5)) c.list = Array.from({ length: int(4) }, () => pick(LONGS));
  if (chance(0.3)) c.who = { __entity: schemaMode ? uid('User', pick(USERS)) : randUserOrGroup() };
  if (schemaMode) return unescapeValue(c);
  if (chance(0.3)) c.rec = randRecordData(0);
  return c;
}

// ---- expressions ----------------------------------------------------------------------------

function entityExpr(d) {
  return pick([
    () => 'principal',
    () => 'resource',
    () => 'action',
    () => uidText(randUserOrGroup()),
    () => uidText(randResource()),
    () => 'principal.manager',
    () => 'resource.owner',
    () => 'context.who',
  ])();
}
function longExpr(d) {
  if (d <= 0) return pick([() => String(pick(LONGS)), () => 'principal.age', () => 'context.n', () => 'resource.size'])();
  return pick([
    () => String(pick(LONGS)),
    () => pick(BIG_LITERALS),
    () => 'principal.age',
    () => 'context.n',
    () => 'resource.size',
    () => `(${longExpr(d - 1)} + ${longExpr(d - 1)})`,
    () => `(${longExpr(d - 1)} - ${longExpr(d - 1)})`,
    () => `(${longExpr(d - 1)} * ${longExpr(d - 1)})`,
    () => `-${longExpr(d - 1)}`,
    () => `principal.getTag("clearance")`,
    () => `context.dur.${pick(['toDays', 'toHours', 'toMinutes', 'toSeconds', 'toMilliseconds'])}()`,
    () => `principal.profile.n`,
    () => `if ${boolExpr(d - 1)} then ${longExpr(d - 1)} else ${longExpr(d - 1)}`,
  ])();
}
function stringExpr() {
  return pick([() => strLit(pick(STRINGS)), () => 'principal.name', () => 'context.s', () => 'principal.getTag("team")',
    () => 'resource.getTag("sensitivity")', () => 'principal.profile.s'])();
}
function setExpr(d) {
  return pick([
    () => 'principal.roles',
    () => 'context.list',
    () => 'resource.labels',
    () => `[${Array.from({ length: int(3) }, () => strLit(pick(['admin', 'dev', 'ops', '']))).join(', ')}]`,
    () => `[${Array.from({ length: int(3) }, () => longExpr(0)).join(', ')}]`,
    () => `[${Array.from({ length: int(3) }, () => entityExpr(d)).join(', ')}]`,
  ])();
}
function anyExpr(d) {
  return pick([() => longExpr(d), stringExpr, () => setExpr(d), () => entityExpr(d), () => boolExpr(d),
    () => `{a: ${longExpr(0)}, "b c": ${stringExpr()}}`, () => 'context.rec', () => 'principal.profile',
    () => `decimal(${litPick(DECIMALS, BAD_DECIMALS)})`, () => `ip(${litPick(IPS, BAD_IPS)})`])();
}
function boolExpr(d) {
  if (d <= 0) {
    return pick([() => pick(['true', 'false']), () => 'context.flag', () => 'resource.public',
      () => `principal in ${uidText(uid('Group', pick(GROUPS)))}`, () => `principal has age`,
      () => `${longExpr(0)} > ${longExpr(0)}`])();
  }
  return pick([
    () => pick(['true', 'false']),
    () => 'context.flag',
    () => 'resource.public',
    () => `(${boolExpr(d - 1)} && ${boolExpr(d - 1)})`,
    () => `(${boolExpr(d - 1)} || ${boolExpr(d - 1)})`,
    () => `!${boolExpr(d - 1)}`,
    () => `(if ${boolExpr(d - 1)} then ${boolExpr(d - 1)} else ${boolExpr(d - 1)})`,
    () => `${longExpr(d - 1)} ${pick(['<', '<=', '>', '>='])} ${longExpr(d - 1)}`,
    () => `${anyExpr(d - 1)} ${pick(['==', '!='])} ${anyExpr(d - 1)}`,
    () => `${entityExpr(d)} in ${pick([() => uidText(uid('Group', pick(GROUPS))), () => uidText(uid('Folder', pick(FOLDERS))), () => setExpr(d - 1), () => entityExpr(d)])()}`,
    () => `${pick(['principal', 'resource', 'context', 'context.rec', 'principal.profile', 'principal.manager'])} has ${pick(['age', 'name', 'roles', 'owner', 'n', 's', 'inner', 'flag', '"b c"', 'profile.inner', 'inner.n'])}`,
    () => `${stringExpr()} like ${strLit(pick(['*', 'a*', '*c', 'a\\*c', '*l*', '', 'h*o w*d']))}`,
    () => `${entityExpr(d)} is ${pick(['User', 'Group', 'Doc', 'Folder', 'Action'])}`,
    () => `${entityExpr(d)} is ${pick(['User', 'Doc'])} in ${pick([() => uidText(uid('Group', pick(GROUPS))), () => uidText(uid('Folder', pick(FOLDERS))), () => setExpr(d - 1)])()}`,
    () => `${setExpr(d - 1)}.contains(${anyExpr(0)})`,
    () => `${setExpr(d - 1)}.${pick(['containsAll', 'containsAny'])}(${setExpr(d - 1)})`,
    () => `${setExpr(d - 1)}.isEmpty()`,
    () => `${entityExpr(d)}.hasTag(${strLit(pick(['team', 'clearance', 'sensitivity', 'ttl', 'nope']))})`,
    () => `${entityExpr(d)}.getTag(${strLit(pick(['team', 'sensitivity']))}) == ${stringExpr()}`,
    () => `principal.level.${pick(['lessThan', 'lessThanOrEqual', 'greaterThan', 'greaterThanOrEqual'])}(${pick([() => `decimal(${strLit(pick(DECIMALS))})`, () => 'context.amount'])()})`,
    () => `context.addr.${pick(['isIpv4', 'isIpv6', 'isLoopback', 'isMulticast'])}()`,
    () => `${pick(['context.addr', 'principal.addr', `ip(${strLit(pick(IPS))})`])}.isInRange(${pick(['context.addr', `ip(${strLit(pick(IPS))})`])})`,
    () => `${pick(['context.when', 'resource.created', `datetime(${strLit(pick(DATETIMES))})`])} ${pick(['<', '<=', '>', '>=', '=='])} ${pick(['context.when', `datetime(${strLit(pick(DATETIMES))})`, `context.when.offset(${pick(['context.dur', `duration(${strLit(pick(DURATIONS))})`])})`, 'resource.created.toDate()'])}`,
    () => `context.when.durationSince(${pick(['resource.created', `datetime(${strLit(pick(DATETIMES))})`])}) ${pick(['<', '>', '=='])} duration(${strLit(pick(DURATIONS))})`,
    () => `context.when.toTime() ${pick(['<', '>='])} ${pick(['context.dur', 'resource.getTag("ttl")'])}`,
    () => `datetime(${litPick(DATETIMES, BAD_DATETIMES)}).${pick(['toDate()', 'toTime()', 'offset(duration(' + litPick(DURATIONS, BAD_DURATIONS) + '))'])} ${pick(['==', '<', '>='])} ${pick(['context.when', 'context.dur', 'datetime(' + litPick(DATETIMES, BAD_DATETIMES) + ')'])}`,
    () => `duration(${litPick(DURATIONS, BAD_DURATIONS)}).${pick(['toDays', 'toHours', 'toMinutes', 'toSeconds', 'toMilliseconds'])}() ${pick(['==', '<', '>'])} ${longExpr(0)}`,
    () => `ip(${litPick(IPS, BAD_IPS)}).${pick(['isIpv4()', 'isIpv6()', 'isLoopback()', 'isMulticast()', 'isInRange(ip(' + litPick(IPS, BAD_IPS) + '))'])}`,
    () => `decimal(${litPick(DECIMALS, BAD_DECIMALS)}).${pick(['lessThan', 'greaterThanOrEqual'])}(decimal(${litPick(DECIMALS, BAD_DECIMALS)}))`,
    () => `${anyExpr(d - 1)}.${pick(['lessThan(decimal("1.0"))', 'isIpv4()', 'toDate()', 'toDays()', 'offset(context.dur)'])}`,
    () => `${anyExpr(d - 1)} ${pick(['<', '>='])} ${anyExpr(d - 1)}`,
    () => `${pick(['{a: 1, b: "x"}', 'context.rec', '{}'])} == ${pick(['{b: "x", a: 1}', 'context.rec', '{}', 'principal.profile'])}`,
    () => `[${longExpr(0)}, ${longExpr(0)}] == [${longExpr(0)}, ${longExpr(0)}]`,
    // Operators applied to values of the wrong type (type errors must agree too).
    () => `${anyExpr(d - 1)} has ${pick(['n', 'age', '"s"'])}`,
    () => `${anyExpr(d - 1)}.contains(${anyExpr(0)})`,
    () => `${anyExpr(d - 1)} in ${anyExpr(d - 1)}`,
    () => `${anyExpr(d - 1)} like ${strLit(pick(['*', 'a*', '*\\**']))}`,
    () => `${anyExpr(d - 1)} is ${pick(['User', 'Doc'])}`,
    () => `${anyExpr(d - 1)}.${pick(['hasTag("team")', 'isEmpty()', 'containsAny([1])'])}`,
    () => `(${anyExpr(d - 1)} ${pick(['&&', '||'])} ${boolExpr(d - 1)})`,
    () => `(if ${anyExpr(d - 1)} then true else false)`,
    () => `${pick(['principal', 'resource', 'context', 'principal.profile'])}[${strLit(pick(['age', 'n', 's', 'b c', '']))}] == ${anyExpr(0)}`,
    () => `context.amount == decimal(${strLit(pick(DECIMALS))})`,
    () => `${pick(['context', 'principal', 'context.rec'])}.${pick(['n', 's', 'flag', 'age', 'inner'])} == ${anyExpr(0)}`,
  ])();
}

function scopeVar(name, kind) {
  const r = int(10);
  if (kind === 'action') {
    if (r < 4) return 'action';
    if (r < 7) return `action == ${uidText(uid('Action', pick(ACTIONS)))}`;
    if (r < 8) return `action in ${uidText(uid('Action', pick(ACTION_GROUPS)))}`;
    return `action in [${[pick(ACTIONS), pick(ACTION_GROUPS)].map((a) => uidText(uid('Action', a))).join(', ')}]`;
  }
  const ent = name === 'principal' ? randUserOrGroup : randResource;
  const group = name === 'principal' ? () => uid('Group', pick(GROUPS)) : () => uid('Folder', pick(FOLDERS));
  const type = name === 'principal' ? 'User' : 'Doc';
  if (r < 4) return name;
  if (r < 6) return `${name} == ${uidText(ent())}`;
  if (r < 8) return `${name} in ${uidText(group())}`;
  if (r < 9) return `${name} is ${type}`;
  return `${name} is ${type} in ${uidText(group())}`;
}

function randPolicy() {
  const effect = chance(0.65) ? 'permit' : 'forbid';
  let text = chance(0.2) ? '@note("generated")\n' : '';
  text += `${effect}(${scopeVar('principal')}, ${scopeVar('action', 'action')}, ${scopeVar('resource')})`;
  const nconds = int(3);
  for (let i = 0; i < nconds; i++) text += ` ${chance(0.75) ? 'when' : 'unless'} { ${boolExpr(1 + int(3))} }`;
  return text + ';';
}

function randCase() {
  schemaMode = chance(0.25);
  const n = 2 + int(6);
  const policies = Array.from({ length: n }, randPolicy).join('\n');
  const entities = randEntities();
  const requests = Array.from({ length: reqsPerCase }, () => ({
    principal: chance(0.9) ? uid('User', pick(USERS)) : uid('Group', pick(GROUPS)),
    action: uid('Action', schemaMode && chance(0.9) ? pick(['read', 'write']) : pick(ACTIONS)),
    resource: randResource(),
    context: randContext(),
  }));
  return schemaMode ? { policies, entities, requests, schema: SCHEMA } : { policies, entities, requests };
}

// ---- run --------------------------------------------------------------------------------------

const cases = [];
const expected = [];
let wasmRejected = 0;
let allow = 0, deny = 0, withErrors = 0;
for (let i = 0; i < numCases; i++) {
  const c = randCase();
  // One entry per request: cedar-wasm's answer, or null when it rejected the request (bad
  // policies, entities or request); our engine must then reject it too.
  const answers = [];
  for (const r of c.requests) {
    const a = cedar.isAuthorized({ ...r, policies: { staticPolicies: c.policies }, entities: c.entities,
      ...(c.schema ? { schema: c.schema, validateRequest: true } : {}) });
    if (a.type !== 'success') {
      wasmRejected++;
      if (verbose) {
        const loc = (a.errors[0].sourceLocations || [])[0];
        const at = loc ? c.policies.slice(Math.max(0, loc.start - 40), loc.end + 20) : '';
        console.error('wasm rejected case', i, a.errors[0].message, JSON.stringify(at));
      }
      answers.push(null);
      continue;
    }
    answers.push({
      decision: a.response.decision,
      reason: [...a.response.diagnostics.reason].sort(),
      errors: a.response.diagnostics.errors.map((e) => e.policyId).sort(),
      messages: a.response.diagnostics.errors.map((e) => `${e.policyId}: ${e.error.message}`),
    });
  }
  cases.push(c);
  expected.push(answers);
}

const child = spawn(driver, [], { stdio: ['pipe', 'pipe', 'inherit'] });
let out = '';
child.stdout.setEncoding('utf8');
child.stdout.on('data', (d) => (out += d));
child.stdin.end(cases.map((c) => JSON.stringify(c)).join('\n') + '\n');
const code = await new Promise((resolve) => child.on('close', resolve));
if (code !== 0) {
  console.error(`difftest: driver exited with code ${code}`);
  process.exit(1);
}
const lines = out.split('\n').filter((l) => l.length > 0);
if (lines.length !== cases.length) {
  console.error(`difftest: driver answered ${lines.length} cases, expected ${cases.length}`);
  process.exit(1);
}

let compared = 0, mismatches = 0;
const report = [];
const same = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);
let bothRejected = 0;
for (let i = 0; i < cases.length; i++) {
  const got = JSON.parse(lines[i]);
  for (let j = 0; j < expected[i].length; j++) {
    compared++;
    const want = expected[i][j];
    const g = got.results ? got.results[j] : got;
    let ok;
    if (want === null) {
      ok = !!(g && g.error);
      if (ok) bothRejected++;
    } else {
      want.decision === 'allow' ? allow++ : deny++;
      if (want.errors.length) withErrors++;
      ok = g && !g.error && g.decision === want.decision && same([...g.reason].sort(), want.reason) &&
        same(g.errors.map((e) => e.policy).sort(), want.errors);
    }
    if (!ok) {
      mismatches++;
      if (report.length < 10) {
        report.push({ policies: cases[i].policies, schema: cases[i].schema, entities: cases[i].entities,
          request: cases[i].requests[j], want: want === null ? 'rejected by cedar-wasm' : want, got: g });
      }
    }
  }
}
const withSchema = cases.filter((c) => c.schema).length;
console.log(`difftest: seed ${seed}, ${cases.length} cases (${withSchema} with a schema), ${compared} requests compared ` +
  `(${allow} allow, ${deny} deny, ${withErrors} with errors, ${wasmRejected} rejected by cedar-wasm and ` +
  `${bothRejected} of those by us too), ${mismatches} mismatches`);
if (mismatches > 0) {
  const file = join(process.env.TMPDIR || '/tmp', `cedar-difftest-${seed}.json`);
  writeFileSync(file, JSON.stringify(report, null, 2));
  console.log(`difftest: first mismatches written to ${file}`);
  for (const r of report.slice(0, 3)) console.log(JSON.stringify(r, null, 1).slice(0, 4000));
  process.exit(1);
}
