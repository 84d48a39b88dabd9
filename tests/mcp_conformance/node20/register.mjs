// Preload (`node --import ./node20/register.mjs`) that lets @modelcontextprotocol/conformance 0.1.16
// start on Node 20. Its bundled dist/index.js has `import { globSync } from "fs"` at top level
// (used only by its tier-check command); node:fs has globSync from Node 22 on, so on Node 20 the
// whole CLI fails to link. A named export cannot be added to a builtin module's ESM facade
// (Node fixes the names when node:fs is first loaded), so a resolve hook gives the suite's own
// modules, and only those, ./fs.mjs: node:fs as is, plus globSync from the `glob` package.
// On a Node whose fs has globSync this registers nothing and the suite runs untouched.
import fs from 'node:fs';
import { register } from 'node:module';

if (typeof fs.globSync !== 'function') {
  register('./hooks.mjs', import.meta.url, {
    data: {
      suite: new URL('../node_modules/@modelcontextprotocol/conformance/', import.meta.url).href,
      shim: new URL('./fs.mjs', import.meta.url).href,
    },
  });
}
