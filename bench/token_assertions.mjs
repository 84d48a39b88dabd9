// Client assertions for bench/token_http_bench.sh's private_key_jwt kinds (RFC 7523): an ES256
// key pair, its public JWK (to register the client with) and COUNT assertions for CLIENT, each
// with its own jti (the server refuses a jti it has seen: every request needs a fresh one), so
// that signing stays out of the measured requests.
// Usage: node bench/token_assertions.mjs CLIENT AUDIENCE COUNT JWK_FILE ASSERTIONS_FILE [KEY_FILE]
//   KEY_FILE: the private key (PKCS#8 PEM), created when absent, reused when present.
import { createPrivateKey, createPublicKey, generateKeyPairSync, randomUUID, sign } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';

const [client, audience, countText, jwkFile, assertionsFile, keyFile] = process.argv.slice(2);
const count = Number(countText);
let privateKey;
if (keyFile && existsSync(keyFile)) {
  privateKey = createPrivateKey(readFileSync(keyFile));
} else {
  privateKey = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
  if (keyFile) writeFileSync(keyFile, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
}
writeFileSync(jwkFile, JSON.stringify(createPublicKey(privateKey).export({ format: 'jwk' })));

const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
const header = b64({ alg: 'ES256', typ: 'JWT' });
const now = Math.floor(Date.now() / 1000);
const run = randomUUID();
const lines = [];
for (let i = 0; i < count; i++) {
  // The server allows assertions living at most 600 s (identity.max_assertion_lifetime_s).
  const payload = b64({ iss: client, sub: client, aud: audience, jti: `${run}-${i}`, iat: now, exp: now + 540 });
  const signature = sign('sha256', Buffer.from(`${header}.${payload}`),
                         { key: privateKey, dsaEncoding: 'ieee-p1363' }).toString('base64url');
  lines.push(`${header}.${payload}.${signature}`);
}
writeFileSync(assertionsFile, lines.join('\n') + '\n');
