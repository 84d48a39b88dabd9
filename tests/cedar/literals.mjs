// Edge cases checked against cedar-wasm: extension literals (valid and malformed decimal, ip,
// datetime and duration strings), whose decisions and errors must agree, and syntax corner
// cases (reserved words, trailing commas, operator chaining, scope forms), which both engines
// must accept or both reject.
//   node literals.mjs --driver PATH
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const wasmPath = join(here, 'node_modules', '@cedar-policy', 'cedar-wasm', 'nodejs', 'cedar_wasm.js');
if (!existsSync(wasmPath)) {
  console.error(`literals: ${wasmPath} is missing; run \`npm ci\` in ${here} first`);
  process.exit(1);
}
const i = process.argv.indexOf('--driver');
const driver = i >= 0 ? process.argv[i + 1] : undefined;
if (!driver || !existsSync(driver)) {
  console.error(`literals: --driver must name the built custody_policy_difftest_driver (got ${driver})`);
  process.exit(1);
}
const require = createRequire(import.meta.url);
const cedar = require(wasmPath);
const lits = {
 decimal: ['1.23456', '-.5', '1.', '+1.0', '01.5', '-0.5', '922337203685477.5808', '922337203685477.5807','-922337203685477.5808','-922337203685477.5809', '1e3', '', '0.1234', '1_0.5', ' 1.0', '-0.0', '00.00'],
 ip: ['01.2.3.4', '1.2.3.4/33', '1.2.3.4/08', '::ffff:1.2.3.4', '1:2:3:4:5:6:7:8:9', '::', '1.2.3', 'FF02::1', '1::2::3', '255.255.255.255/32', '::/0', '1.2.3.4/', '2001:DB8:0:0:0:0:0:1/129', '1:2:3:4:5:6:7::', '::1:2:3:4:5:6:7', '1:2:3:4:5:6:7:8/064', '0.0.0.0', '1.2.3.4/0', '00::1', '12345::1', 'a:b:c:d:e:f:1.2.3.4', ' 1.2.3.4', '1.2.3.4 ', '256.1.1.1', '1.2.3.4/32/1'],
 datetime: ['2024-13-01', '2024-02-30', '2023-02-29', '2024-01-01T24:00:00Z', '2024-01-01T00:00:60Z', '2024-01-01T00:00:00+2400', '2024-01-01T00:00:00+0060', '2024-1-01', '2024-01-01T00:00:00.1Z', '2024-01-01T00:00:00', '0000-01-01', '9999-12-31T23:59:59.999-2359', '2024-01-01T00:00:00.123+0100', '2024-01-01T00:00:00+2359', '2024-01-01t00:00:00Z', '2024-01-01T00:00:00z', '+2024-01-01', '2024-01-01T00:00Z', '2024-01-01 00:00:00Z', '1600-02-29', '1900-02-29', '2000-02-29T23:59:59.999Z', '2024-01-01T00:00:00.1234Z', '2024-01-01T00:00:00-0000', '2024-01-01T00:00:00.000+000'],
 duration: ['1h1d', '', '-', '1d-2h', '9223372036854775807ms', '9223372036854775808ms', '106751991167d', '106751991168d', '1m1ms', '1.5h', '-9223372036854775808ms', '1d1d', 'ms', '5 m', '-0ms', '0d', '1s1ms', '1ms1s', '01h', '+1h', '1D', '1h30', '30', '-1d-1h'],
};
const cases = []; const want = [];
for (const [fn, ls] of Object.entries(lits)) for (const l of ls) {
  const policies = `permit(principal, action, resource) when { ${fn}(${JSON.stringify(l)}) == ${fn}(${JSON.stringify(l)}) };\npermit(principal, action, resource) when { ${fn === 'datetime' ? `datetime(${JSON.stringify(l)}).toTime() == duration("0ms") || datetime(${JSON.stringify(l)}) > datetime("1970-01-01T00:00:00Z")` : fn === 'duration' ? `duration(${JSON.stringify(l)}).toMilliseconds() > 0` : fn === 'ip' ? `ip(${JSON.stringify(l)}).isInRange(ip("1.0.0.0/8")) || ip(${JSON.stringify(l)}).isLoopback()` : `decimal(${JSON.stringify(l)}).lessThan(decimal("0.0"))`} };`;
  const req = {principal:{type:'U',id:'a'},action:{type:'Action',id:'a'},resource:{type:'R',id:'r'},context:{}};
  const a = cedar.isAuthorized({...req, policies:{staticPolicies: policies}, entities: []});
  cases.push({policies, entities: [], requests:[req]});
  want.push(a.type==='success' ? {d:a.response.decision, r:a.response.diagnostics.reason.sort(), e:a.response.diagnostics.errors.map(x=>x.policyId).sort()} : 'reject');
}
const out = execFileSync(driver, {input: cases.map(c=>JSON.stringify(c)).join('\n')+'\n'}).toString().trim().split('\n');
let bad=0;
out.forEach((l,i)=>{ const g=JSON.parse(l); const w=want[i];
  const gg = g.error ? 'reject' : {d:g.results[0].decision, r:g.results[0].reason.sort(), e:g.results[0].errors.map(x=>x.policy).sort()};
  if (JSON.stringify(gg)!==JSON.stringify(w)) { bad++; console.log('MISMATCH', cases[i].policies.split('\n')[0], JSON.stringify(w), JSON.stringify(gg)); }});
console.log(`literals: ${cases.length} literal cases compared, ${bad} mismatches`);

const conds = ['principal.if == 1', '{if: 1} == {}', 'principal has if', 'context["a b"] == 1', 'principal has "a b"',
 '[1,2,] == [1]', '{a:1,} == {}', 'principal has a.if', 'true.foo', 'context.x.y.z', '"\\u{0}" == ""', '"\\x7F" == ""', '"\\x80" == ""',
 "'a' == 'a'", '01 == 1', '1_000 == 1', 'principal.contains(1)', '[].contains()', 'principal.getTag(1,2)', 'if true then 1 else 2 == 2',
 '!if true then true else false', '"a" like "\\u{2a}"', '"*" like "\\u{2a}"', '"a" like "\\\\*"', 'if::"a" == principal', '__cedar::"x" == principal',
 'principal is __cedar::X', 'principal is if', 'User::"a".x == 1', 'User::"a"["x"] == 1', '[1][0] == 1', '{a: 1}.a == 1', '{a: 1}["a"] == 1',
 'principal in [User::"a"]', 'ip("1.2.3.4").isIpv4(1)', 'decimal("1.0", "2.0") == 1', 'principal.isEmpty()', 'context has is', 'context has then',
 'context has principal', 'context.principal == 1', 'context.true == 1', 'context.in == 1', '{in: 1} == {}', '{true: 1} == {}', '{principal: 1} == {}',
 'principal has __cedar', '{"": 1} == {}', 'context has ""', 'principal == action == resource', 'principal in action in resource', 'principal has a has b',
 '(principal has a) has b', 'principal like "x" like "y"', 'principal is User is User', '1 + -2 == -1', '1 - - 2 == 3', '1 * -2 == -2', '!!!!true', '-----1 == 1'];
const scopes = ['principal, action, resource,', 'principal in [User::"a"], action, resource', 'principal, action == [Action::"a"], resource',
 'principal, action in Action::"a", resource', 'principal == Action::"a", action, resource', 'principal is User in [Group::"a"], action, resource',
 'principal is User == User::"a", action, resource', 'principal, action, resource is Doc in Folder::"f"', 'principal, action in [], resource',
 'principal == User::"a", action == User::"b", resource', 'resource, action, principal', 'principal, action, resource, context',
 'principal, action is Action, resource', 'principal is if, action, resource'];
const texts = conds.map(c => `permit(principal, action, resource) when { ${c} };`)
 .concat(scopes.map(s => `permit(${s});`))
 .concat(['@id("") permit(principal, action, resource);', '@id permit(principal, action, resource);', '@if("a") permit(principal, action, resource);',
  'permit(principal, action, resource) // c', 'permit(principal, action, resource) when { true } unless { false };', 'permit(principal, action, resource);;',
  'Permit(principal, action, resource);', 'permit(principal, action, resource) when { true }', '', '// only comment', 'permit(principal, action, resource) when { true } when { true };',
  'permit(principal, action, resource) advice { true };', '@a @b("x") permit(principal, action, resource);', 'permit(principal, action, resource) when { /* c */ true };']);
const syntaxCases = texts.map((t) => ({ policies: t, entities: [], requests: [] }));
const syntaxOut = execFileSync(driver, { input: syntaxCases.map((c) => JSON.stringify(c)).join('\n') + '\n' })
  .toString().trim().split('\n');
let syntaxBad = 0;
texts.forEach((t, k) => {
  const w = cedar.checkParsePolicySet({ staticPolicies: t });
  const g = JSON.parse(syntaxOut[k]);
  if ((w.type === 'success') !== !g.error) {
    syntaxBad++;
    console.log(w.type === 'success' ? 'cedar-wasm accepts, we reject:' : 'cedar-wasm rejects, we accept:', JSON.stringify(t));
  }
});
console.log(`literals: ${texts.length} syntax cases compared, ${syntaxBad} mismatches`);

// Entities JSON corner cases: escapes, malformed names, required fields, duplicates, cycles.
const U = {type: 'User', id: 'a'};
const attrsList = [
 {x: {__entity: U, y: 1}}, {x: {__extn: {fn: 'ip', arg: '1.2.3.4'}, y: 1}}, {x: {__extn: {fn: 'ip', arg: '1.2.3.4', extra: 1}}},
 {x: {type: 'User', id: 'a'}}, {x: {__entity: {type: 'User', id: 'a', z: 1}}}, {x: {__extn: {fn: 'ip', args: ['1.2.3.4']}}},
 {x: {__extn: {fn: 'isIpv4', arg: {__extn: {fn: 'ip', arg: '1.2.3.4'}}}}}, {x: {__extn: {fn: 'lessThan', args: [{__extn:{fn:'decimal',arg:'1.0'}},{__extn:{fn:'decimal',arg:'2.0'}}]}}},
 {x: {__expr: '1 + 1'}}, {x: 1.0}, {x: 1e3}, {x: -0}, {x: null}, {x: {__entity: {type: 'User'}}}, {x: {__entity: {type: '', id: 'a'}}},
 {x: {__entity: {type: 'Us er', id: 'a'}}}, {x: {__entity: {type: 'A::B', id: 'a'}}}, {x: {__entity: {type: 'A::', id: 'a'}}}, {x: {__entity: {type: 'if', id: 'a'}}},
 {x: [1, 'a', [true]]}, {x: {__extn: {fn: 'decimal', arg: 5}}}, {x: {__extn: 'ip'}},
];
const uids = [U, {type: 'User', id: ''}, {type: 'if', id: 'a'}, {type: 'A::B', id: 'a'}, {type: 'Us er', id: 'a'}, {type: '__cedar::X', id: 'a'}, {__entity: U}, {type: 'User', id: 'a', extra: 1}];
const entsList = attrsList.map(a => [{uid: U, attrs: a, parents: []}])
  .concat(uids.map(u => [{uid: u, attrs: {}, parents: []}]))
  .concat([[{uid: U, attrs: {}, parents: [{__entity: {type: 'G', id: 'g'}}]}], [{uid: U, attrs: {}, parents: [U]}], [{uid: U}], [{uid: U, attrs: {}, parents: [], tags: {t: 1}}],
    [{uid: U, attrs: {}, parents: [], extra: 1}], [{uid: U, attrs: {}, parents: []}, {uid: U, attrs: {}, parents: []}], [{uid: U, attrs: [], parents: []}], [{uid: U, attrs: {}, parents: {}}]]);
const entReq = {principal: U, action: {type: 'Action', id: 'a'}, resource: U, context: {}};
const entPolicy = 'permit(principal, action, resource) when { principal.x == principal.x };';
const entCases = entsList.map((e) => ({ policies: entPolicy, entities: e, requests: [entReq] }));
const entOut = execFileSync(driver, { input: entCases.map((c) => JSON.stringify(c)).join('\n') + '\n' })
  .toString().trim().split('\n');
let entBad = 0;
entsList.forEach((e, k) => {
  const w = cedar.isAuthorized({ ...entReq, policies: { staticPolicies: entPolicy }, entities: e });
  const g = JSON.parse(entOut[k]);
  const ws = w.type === 'success' ? `${w.response.decision}/${w.response.diagnostics.errors.length}` : 'reject';
  const gs = g.error ? 'reject' : `${g.results[0].decision}/${g.results[0].errors.length}`;
  if (ws !== gs) {
    entBad++;
    console.log('entities mismatch:', JSON.stringify(e), 'cedar-wasm', ws, 'ours', gs);
  }
});
console.log(`literals: ${entsList.length} entities cases compared, ${entBad} mismatches`);

// Schema-based parsing and validation (cedar-wasm with validateRequest: true).
const sSchema = `entity Group; entity Color enum ["red", "blue"];
entity User in [Group] = { age: Long, nick?: String, addr?: ipaddr, boss?: User, tagsok?: Set<String>, rec?: { a: Long, b?: Bool } } tags String;
entity Doc = { owner: User };
action view appliesTo { principal: [User], resource: [Doc], context: { n: Long, ip?: ipaddr } };
action edit in [view];`;
const SU = (id) => ({type: 'User', id});
const sBase = [{uid: SU('a'), attrs: {age: 1}, parents: [{type: 'Group', id: 'g'}]}, {uid: {type: 'Group', id: 'g'}, attrs: {}, parents: []}, {uid: {type: 'Doc', id: 'd'}, attrs: {owner: SU('a')}, parents: []}];
const sReq = {principal: SU('a'), action: {type: 'Action', id: 'view'}, resource: {type: 'Doc', id: 'd'}, context: {n: 1}};
const variants = {
  ok: [sBase, sReq],
  missingReq: [[{uid: SU('a'), attrs: {}, parents: []}, ...sBase.slice(1)], sReq],
  extraAttr: [[{uid: SU('a'), attrs: {age: 1, zzz: 2}, parents: []}, ...sBase.slice(1)], sReq],
  wrongType: [[{uid: SU('a'), attrs: {age: "1"}, parents: []}, ...sBase.slice(1)], sReq],
  undeclaredType: [[...sBase, {uid: {type: 'Nope', id: 'x'}, attrs: {}, parents: []}], sReq],
  badParentType: [[{uid: SU('a'), attrs: {age: 1}, parents: [{type: 'Doc', id: 'd'}]}, ...sBase.slice(1)], sReq],
  undeclaredParentEntity: [[{uid: SU('a'), attrs: {age: 1}, parents: [{type: 'Group', id: 'zz'}]}, ...sBase.slice(1)], sReq],
  tagWrongType: [[{uid: SU('a'), attrs: {age: 1}, parents: [], tags: {t: 1}}, ...sBase.slice(1)], sReq],
  tagsOnUntagged: [[...sBase.slice(0, 2), {uid: {type: 'Doc', id: 'd'}, attrs: {owner: SU('a')}, parents: [], tags: {t: 'x'}}], sReq],
  enumBad: [[...sBase, {uid: {type: 'Color', id: 'green'}, attrs: {}, parents: []}], sReq],
  enumOk: [[...sBase, {uid: {type: 'Color', id: 'red'}, attrs: {}, parents: []}], sReq],
  wrongEntityType: [[...sBase.slice(0, 2), {uid: {type: 'Doc', id: 'd'}, attrs: {owner: {type: 'Group', id: 'g'}}, parents: []}], sReq],
  recMissing: [[{uid: SU('a'), attrs: {age: 1, rec: {}}, parents: []}, ...sBase.slice(1)], sReq],
  recExtra: [[{uid: SU('a'), attrs: {age: 1, rec: {a: 1, c: 2}}, parents: []}, ...sBase.slice(1)], sReq],
  setWrong: [[{uid: SU('a'), attrs: {age: 1, tagsok: [1]}, parents: []}, ...sBase.slice(1)], sReq],
  ipString: [[{uid: SU('a'), attrs: {age: 1, addr: '1.2.3.4'}, parents: []}, ...sBase.slice(1)], sReq],
  ipBad: [[{uid: SU('a'), attrs: {age: 1, addr: 'zz'}, parents: []}, ...sBase.slice(1)], sReq],
  ipAsLong: [[{uid: SU('a'), attrs: {age: 1, addr: 5}, parents: []}, ...sBase.slice(1)], sReq],
  ctxMissing: [sBase, {...sReq, context: {}}],
  ctxExtra: [sBase, {...sReq, context: {n: 1, q: 2}}],
  ctxWrong: [sBase, {...sReq, context: {n: 'x'}}],
  ctxIp: [sBase, {...sReq, context: {n: 1, ip: '1.1.1.1'}}],
  principalWrongType: [sBase, {...sReq, principal: {type: 'Group', id: 'g'}}],
  principalUndeclared: [sBase, {...sReq, principal: {type: 'Nope', id: 'g'}}],
  actionUndeclared: [sBase, {...sReq, action: {type: 'Action', id: 'zzz'}}],
  actionNoAppliesTo: [sBase, {...sReq, action: {type: 'Action', id: 'edit'}}],
  actionEntityInData: [[...sBase, {uid: {type: 'Action', id: 'view'}, attrs: {}, parents: []}], sReq],
  actionEntityBadParent: [[...sBase, {uid: {type: 'Action', id: 'view'}, attrs: {}, parents: [{type: 'Action', id: 'edit'}]}], sReq],
  principalMissingEntity: [sBase, {...sReq, principal: SU('zz')}],
};
const sPolicy = 'permit(principal, action in Action::"view", resource) when { principal has age };';
const sNames = Object.keys(variants);
const sCases = sNames.map((n) => ({ policies: sPolicy, schema: sSchema, entities: variants[n][0], requests: [variants[n][1]] }));
const sOut = execFileSync(driver, { input: sCases.map((c) => JSON.stringify(c)).join('\n') + '\n' })
  .toString().trim().split('\n');
let schemaBad = 0;
sNames.forEach((n, k) => {
  const [ents, r] = variants[n];
  const w = cedar.isAuthorized({ ...r, policies: { staticPolicies: sPolicy }, entities: ents, schema: sSchema, validateRequest: true });
  const g = JSON.parse(sOut[k]);
  const ws = w.type === 'success' ? `${w.response.decision}/${w.response.diagnostics.errors.length}` : 'reject';
  const gs = g.error ? 'reject' : g.results[0].error ? 'reject' : `${g.results[0].decision}/${g.results[0].errors.length}`;
  if (ws !== gs) {
    schemaBad++;
    console.log('schema mismatch:', n, 'cedar-wasm', ws, 'ours', gs, g.error || (g.results[0] && g.results[0].error) || '');
  }
});
console.log(`literals: ${sNames.length} schema cases compared, ${schemaBad} mismatches`);
if (bad > 0 || syntaxBad > 0 || entBad > 0 || schemaBad > 0) process.exit(1);
