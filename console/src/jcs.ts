// RFC 8785 JSON Canonicalization Scheme: the bytes of a ledger leaf (docs/ARCHITECTURE.md).
// ECMAScript's JSON.stringify already serializes strings and numbers as JCS requires; JCS adds
// sorting object keys by their UTF-16 code units and no whitespace.
export function canonicalize(v: unknown): string {
  if (v === null || typeof v !== 'object') {
    if (typeof v === 'number' && !Number.isFinite(v)) throw new Error('JCS: non-finite number');
    return JSON.stringify(v);
  }
  if (Array.isArray(v)) return '[' + v.map(canonicalize).join(',') + ']';
  const o = v as Record<string, unknown>;
  const keys = Object.keys(o).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  return '{' + keys.map((k) => JSON.stringify(k) + ':' + canonicalize(o[k])).join(',') + '}';
}
