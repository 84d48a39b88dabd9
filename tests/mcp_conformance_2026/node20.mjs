// Preload (`node --import ./node20.mjs`) that lets this folder's @modelcontextprotocol/conformance
// start on Node 20: tests/mcp_conformance/node20's resolve hook and fs shim (see its register.mjs;
// the shim's `glob` comes from tests/mcp_conformance/node_modules), aimed at this folder's suite.
// On a Node whose fs has globSync this registers nothing and the suite runs untouched.
import fs from 'node:fs';
import { register } from 'node:module';

const shared = new URL('../mcp_conformance/node20/', import.meta.url);
if (typeof fs.globSync !== 'function') {
  register(new URL('hooks.mjs', shared), {
    data: {
      suite: new URL('node_modules/@modelcontextprotocol/conformance/', import.meta.url).href,
      shim: new URL('fs.mjs', shared).href,
    },
  });
}
