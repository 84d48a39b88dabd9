// node:fs plus globSync, served by hooks.mjs to the conformance suite on a Node without
// fs.globSync. globSync is the `glob` package's (pinned in package.json); only the option the
// suite passes (cwd) is accepted, and any other throws rather than being silently ignored.
import { globSync as globPackageSync } from 'glob';

export * from 'node:fs';
export { default } from 'node:fs';

export function globSync(pattern, options = {}) {
  const unsupported = Object.keys(options).filter((k) => k !== 'cwd');
  if (unsupported.length > 0) {
    throw new Error(`fs.globSync shim (tests/mcp_conformance/node20): unsupported option(s) ${unsupported.join(', ')}`);
  }
  return globPackageSync(pattern, { cwd: options.cwd ?? process.cwd() });
}
