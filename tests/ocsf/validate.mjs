// A small validator for OCSF event records against the released schema kept beside it
// (tests/ocsf/schema-1.8.0: ocsf/ocsf-schema at tag 1.8.0, Apache-2.0, see its LICENSE).
//
// The OCSF schema is a set of definition files (dictionary.json, categories.json, events/,
// objects/, profiles/), not JSON Schema, so this walks them the way the OCSF server compiles
// them: a class is its `extends` chain (base_event first) with each level's `$include`d profile
// attributes merged in; an object likewise. For a record it checks:
//   - class_uid names a class of the release; category_uid is the class's category;
//     type_uid = class_uid * 100 + activity_id;
//   - every `required` attribute of the class and (recursively) of each object is present;
//   - every present attribute is defined for the class or object (the generic `object` type,
//     e.g. `unmapped`, takes anything);
//   - types: string, integer, long, float, boolean, timestamp_t (an integer, epoch ms), json_t,
//     object types recursively, arrays (`is_array`);
//   - enumerated attributes (`*_id` with an `enum`, e.g. activity_id, severity_id, status_id)
//     have one of the listed values;
//   - the classes' and objects' `at_least_one` and `just_one` constraints.
//
// Usage as a module: `import {validate} from "./validate.mjs"`; validate(record) returns a list
// of error strings (empty when valid). As a command: `node validate.mjs FILE.ndjson` (or stdin)
// prints each invalid line's errors and exits 1 if any.
import fs from "node:fs";
import path from "node:path";
import {fileURLToPath} from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
export const SCHEMA_DIR = path.join(here, "schema-1.8.0");
export const SCHEMA_VERSION = JSON.parse(
    fs.readFileSync(path.join(SCHEMA_DIR, "version.json"), "utf8")).version;

const readJson = (p) => JSON.parse(fs.readFileSync(path.join(SCHEMA_DIR, p), "utf8"));
const dictionary = readJson("dictionary.json");
const dictAttrs = dictionary.attributes;
const types = dictionary.types.attributes;
const categories = readJson("categories.json").attributes;

function walk(dir) {
  const out = [];
  for (const e of fs.readdirSync(path.join(SCHEMA_DIR, dir), {withFileTypes: true})) {
    const rel = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...walk(rel));
    else if (e.name.endsWith(".json")) out.push(rel);
  }
  return out;
}

// Attributes of one definition with its `$include`s merged (later keys refine earlier ones).
function ownAttributes(def) {
  const attrs = {};
  const inc = def.attributes?.$include;
  for (const p of [].concat(inc || [])) {
    const included = readJson(p);
    // A profile's attributes count only in records that apply it (metadata.profiles).
    const profile = included.meta === "profile" ? included.name : undefined;
    for (const [k, v] of Object.entries(included.attributes || {})) {
      attrs[k] = profile ? {...v, profile} : v;
    }
  }
  for (const [k, v] of Object.entries(def.attributes || {})) {
    if (k === "$include") continue;
    attrs[k] = merge(attrs[k], v);
  }
  return attrs;
}

// A refinement of an attribute: its keys replace the parent's, except that enums add up (a class
// lists its own activities, base_event's 0 Unknown and 99 Other stay).
function merge(parent, child) {
  const out = {...(parent || {}), ...child};
  if (parent?.enum && child.enum) out.enum = {...parent.enum, ...child.enum};
  return out;
}

const eventDefs = {};  // name -> definition
for (const f of walk("events")) {
  const d = readJson(f);
  eventDefs[d.name] = d;
}
const objectDefs = {};
for (const f of walk("objects")) {
  const d = readJson(f);
  objectDefs[d.name] = d;
}

function compile(defs, name) {
  const d = defs[name];
  if (!d) throw new Error(`unknown definition ${name}`);
  const parent = d.extends ? compile(defs, d.extends) : {attributes: {}, constraints: {}};
  const attrs = {...parent.attributes};
  for (const [k, v] of Object.entries(ownAttributes(d))) attrs[k] = merge(attrs[k], v);
  return {
    name,
    def: d,
    attributes: attrs,
    constraints: d.constraints || (d.extends ? parent.constraints : {}),
  };
}

const classesByUid = new Map();
for (const [name, d] of Object.entries(eventDefs)) {
  if (d.uid === undefined) continue;
  let catName = d.category;  // a class inherits its category from what it extends
  for (let e = d; !catName && e?.extends; e = eventDefs[e.extends]) catName = eventDefs[e.extends]?.category;
  const cat = categories[catName];
  if (!cat) continue;
  const c = compile(eventDefs, name);
  c.class_uid = cat.uid * 1000 + d.uid;
  c.category_uid = cat.uid;
  classesByUid.set(c.class_uid, c);
}
{
  // Base Event: the generic class for what no other class describes (class_uid 0, category 0).
  const c = compile(eventDefs, "base_event");
  c.class_uid = 0;
  c.category_uid = 0;
  classesByUid.set(0, c);
}
const objectCache = new Map();
function objectType(name) {
  if (!objectCache.has(name)) objectCache.set(name, compile(objectDefs, name));
  return objectCache.get(name);
}

export function classFor(uid) { return classesByUid.get(uid); }

// The base scalar type of a dictionary type (e.g. uuid_t -> string_t, timestamp_t -> long_t).
function baseType(t) {
  let seen = 0;
  while (types[t]?.type && seen++ < 8) t = types[t].type;
  return t;
}

function checkScalar(t, v, where, errors) {
  const b = baseType(t);
  const ok = {
    string_t: () => typeof v === "string",
    integer_t: () => Number.isInteger(v) && Math.abs(v) <= 2147483647,
    long_t: () => Number.isInteger(v),
    float_t: () => typeof v === "number",
    boolean_t: () => typeof v === "boolean",
    json_t: () => true,
  }[b];
  if (!ok) {
    errors.push(`${where}: schema type ${t} not understood`);
    return;
  }
  if (!ok()) errors.push(`${where}: ${JSON.stringify(v)} is not a ${t}`);
  const re = types[t]?.regex;
  if (re && typeof v === "string" && !new RegExp(re).test(v)) {
    errors.push(`${where}: ${JSON.stringify(v)} does not match ${t}`);
  }
}

function checkConstraints(constraints, value, where, errors) {
  const present = (k) => value[k] !== undefined && value[k] !== null;
  for (const [kind, keys] of Object.entries(constraints || {})) {
    const n = keys.filter(present).length;
    if (kind === "at_least_one" && n < 1) {
      errors.push(`${where}: needs at least one of ${keys.join(", ")}`);
    } else if (kind === "just_one" && n !== 1) {
      errors.push(`${where}: needs exactly one of ${keys.join(", ")}`);
    }
  }
}

// Enumerations the release lists per class (class_uid, category_uid, type_uid) are checked in
// validate() against the class itself.
const derivedIds = new Set(["class_uid", "category_uid", "type_uid"]);

// Checks `value` against a compiled class or object; `profiles` are the record's applied ones.
function checkStructure(compiled, value, where, errors, profiles) {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    errors.push(`${where}: not an object`);
    return;
  }
  if (compiled.name === "object") return;  // the generic object (e.g. unmapped) takes anything
  const applies = (a) => !a.profile || profiles.has(a.profile);
  for (const [k, a] of Object.entries(compiled.attributes)) {
    if (a.requirement === "required" && applies(a) && value[k] === undefined) {
      errors.push(`${where}: required attribute ${k} is missing`);
    }
  }
  checkConstraints(compiled.constraints, value, where, errors);
  for (const [k, v] of Object.entries(value)) {
    const local = compiled.attributes[k];
    const at = where ? `${where}.${k}` : k;
    if (!local || !applies(local)) {
      errors.push(`${at}: not an attribute of ${compiled.name}` +
                  (local ? ` without the ${local.profile} profile` : ""));
      continue;
    }
    const dict = dictAttrs[k];
    if (!dict) {
      errors.push(`${at}: not in the dictionary`);
      continue;
    }
    const t = local.type || dict.type;
    const isArray = local.is_array ?? dict.is_array;
    const enumDef = local.enum || dict.enum;
    const one = (x, w) => {
      if (t === "object" || t === "object_t") {
        if (typeof x !== "object" || x === null || Array.isArray(x)) {
          errors.push(`${w}: not an object`);
        }
        return;
      }
      if (t.endsWith("_t")) {
        checkScalar(t, x, w, errors);
        if (enumDef && !(where === "" && derivedIds.has(k)) && !Object.hasOwn(enumDef, String(x))) {
          errors.push(`${w}: ${JSON.stringify(x)} is not an allowed value`);
        }
        return;
      }
      checkStructure(objectType(t), x, w, errors, profiles);
    };
    if (isArray) {
      if (!Array.isArray(v)) errors.push(`${at}: not an array`);
      else v.forEach((x, i) => one(x, `${at}[${i}]`));
    } else {
      one(v, at);
    }
  }
}

export function validate(record) {
  const errors = [];
  if (typeof record !== "object" || record === null) return ["not an object"];
  const c = classesByUid.get(record.class_uid);
  if (!c) return [`class_uid ${record.class_uid} is not a class of OCSF ${SCHEMA_VERSION}`];
  if (record.category_uid !== c.category_uid) {
    errors.push(`category_uid ${record.category_uid} is not ${c.category_uid} (${c.name})`);
  }
  if (record.type_uid !== record.class_uid * 100 + record.activity_id) {
    errors.push(`type_uid ${record.type_uid} is not class_uid * 100 + activity_id`);
  }
  const profiles = new Set(record.metadata?.profiles || []);
  checkStructure(c, record, "", errors, profiles);
  return errors;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const text = fs.readFileSync(process.argv[2] || 0, "utf8");
  let bad = 0, n = 0;
  for (const line of text.split("\n")) {
    if (!line.trim()) continue;
    n++;
    const errs = validate(JSON.parse(line));
    if (errs.length) {
      bad++;
      console.log(`record ${n}: ${errs.join("; ")}`);
    }
  }
  console.log(`${n} records, ${bad} invalid (OCSF ${SCHEMA_VERSION})`);
  process.exit(bad ? 1 : 0);
}
