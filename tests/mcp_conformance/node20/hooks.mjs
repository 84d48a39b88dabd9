// Module resolve hook registered by register.mjs (runs on Node's loader thread): an import of
// fs or node:fs from a module under the conformance suite's package resolves to fs.mjs.
let suite;
let shim;

export function initialize(data) {
  ({ suite, shim } = data);
}

export async function resolve(specifier, context, next) {
  if ((specifier === 'fs' || specifier === 'node:fs') && context.parentURL?.startsWith(suite)) {
    return { url: shim, shortCircuit: true };
  }
  return next(specifier, context);
}
