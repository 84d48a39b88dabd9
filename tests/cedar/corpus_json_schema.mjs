// Rewrites an extracted reference corpus so that every `.cedarschema` holds the equivalent JSON
// schema, converted by cedar-wasm's schemaToJson; running the corpus test on the result checks
// our JSON-schema parser on all 7,809 schemas.
//   node corpus_json_schema.mjs EXTRACTED_DIR OUT_DIR   (each holds corpus-tests/)
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const wasmPath = join(here, 'node_modules', '@cedar-policy', 'cedar-wasm', 'nodejs', 'cedar_wasm.js');
if (!existsSync(wasmPath)) {
  console.error(`corpus_json_schema: ${wasmPath} is missing; run \`npm ci\` in ${here} first`);
  process.exit(1);
}
const cedar = createRequire(import.meta.url)(wasmPath);
const [src, dst] = [join(process.argv[2], 'corpus-tests'), join(process.argv[3], 'corpus-tests')];
if (!existsSync(src)) {
  console.error(`corpus_json_schema: ${src} does not exist`);
  process.exit(1);
}
mkdirSync(dst, { recursive: true });
let converted = 0;
for (const f of readdirSync(src)) {
  if (!f.endsWith('.cedarschema')) {
    copyFileSync(join(src, f), join(dst, f));
    continue;
  }
  const r = cedar.schemaToJson(readFileSync(join(src, f), 'utf8'));
  if (r.type !== 'success') {
    console.error(`corpus_json_schema: cedar-wasm cannot convert ${f}: ${JSON.stringify(r.errors)}`);
    process.exit(1);
  }
  writeFileSync(join(dst, f), JSON.stringify(r.json));
  converted++;
}
console.log(`corpus_json_schema: converted ${converted} schemas to the JSON format`);
