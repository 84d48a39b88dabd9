// Generates src/crypto/testdata/rs256_vectors.json: RS256 test vectors made by the jose package
// (an implementation independent of ours). Run once from tests/jose after `npm ci`:
//   node make_rs256_vectors.mjs > ../../src/crypto/testdata/rs256_vectors.json
// The committed file is the fixture; rerunning produces new keys and signatures.
import * as jose from 'jose';

const rsa = await jose.generateKeyPair('RS256', { modulusLength: 2048, extractable: true });
const rsa3072 = await jose.generateKeyPair('RS256', { modulusLength: 3072, extractable: true });
const ec = await jose.generateKeyPair('ES256', { extractable: true });
// jose refuses to make RSA keys below 2048 bits, so the 1024-bit key comes from node:crypto.
const { generateKeyPairSync } = await import('node:crypto');
const small = generateKeyPairSync('rsa', { modulusLength: 1024 });

const jwk = async (k, kid, alg) => ({ ...(await jose.exportJWK(k)), kid, alg, use: 'sig' });
const rsaJwk = await jwk(rsa.publicKey, 'rsa-2048', 'RS256');
const rsa3072Jwk = await jwk(rsa3072.publicKey, 'rsa-3072', 'RS256');
const ecJwk = await jwk(ec.publicKey, 'ec-1', 'ES256');
const smallJwk = { ...small.publicKey.export({ format: 'jwk' }), kid: 'rsa-1024', alg: 'RS256', use: 'sig' };

const claims = {
  iss: 'https://idp.example.com',
  aud: 'custody-test',
  sub: 'alice@example.com',
  email: 'alice@example.com',
  iat: 1700000000,
  exp: 4102444800, // 2100-01-01: valid for any test clock before then
};
const sign = (key, alg, kid, extra = {}) =>
  new jose.SignJWT(claims).setProtectedHeader({ alg, kid, typ: 'JWT', ...extra }).sign(key);

const out = {
  generator: 'tests/jose/make_rs256_vectors.mjs (jose ' + (await import('jose/package.json', { with: { type: 'json' } }).catch(() => ({ default: { version: '?' } }))).default.version + ')',
  claims,
  jwks: { keys: [rsaJwk, rsa3072Jwk, ecJwk] },
  small_rsa_jwk: smallJwk,
  rs256_2048: await sign(rsa.privateKey, 'RS256', 'rsa-2048'),
  rs256_3072: await sign(rsa3072.privateKey, 'RS256', 'rsa-3072'),
  es256: await sign(ec.privateKey, 'ES256', 'ec-1'),
  // Signed correctly but with the EC key's kid: alg RS256 naming an EC key (kty mismatch).
  rs256_with_ec_kid: await sign(rsa.privateKey, 'RS256', 'ec-1'),
  // PS256 with the same RSA key: an RSA alg that is not on the allow-list.
  ps256_2048: await sign(await jose.importJWK(await jose.exportJWK(rsa.privateKey), 'PS256'), 'PS256', 'rsa-2048'),
};
// 1024-bit RS256 token, signed with node:crypto.
{
  const enc = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const input = enc({ alg: 'RS256', kid: 'rsa-1024', typ: 'JWT' }) + '.' + enc(claims);
  const { sign: nodeSign } = await import('node:crypto');
  out.rs256_1024 = input + '.' + nodeSign('sha256', Buffer.from(input), small.privateKey).toString('base64url');
}
process.stdout.write(JSON.stringify(out, null, 2) + '\n');
