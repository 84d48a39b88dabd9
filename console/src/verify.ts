// Verifies a ledger receipt in the browser, independently of the server's own verification, with
// WebCrypto only (SHA-256 and Ed25519):
//   1. the leaf hash, RFC 6962 / RFC 9162: SHA-256(0x00 || JCS bytes of the event);
//   2. the inclusion proof (RFC 9162 2.1.3.2) from that leaf up to the checkpoint's root;
//   3. the checkpoint (C2SP tlog-checkpoint), a C2SP signed-note whose Ed25519 signature must
//      verify under the verifier key (GET /v1/ledger/key), with the key ID the spec derives.
// Formats: docs/API.md section 2 (Receipt, Checkpoint); the C++ side is src/ledger/receipt.cc.
import { canonicalize } from './jcs';

export interface Step {
  name: string;
  ok: boolean;
  detail: string;
}
export interface Verification {
  ok: boolean;
  steps: Step[];
}

const enc = new TextEncoder();

function b64(s: string): Uint8Array {
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}
function hex(b: Uint8Array): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}
function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}
async function sha256(...parts: Uint8Array[]): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest('SHA-256', concat(...parts) as BufferSource));
}
function equal(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

export interface VerifierKey {
  name: string;
  keyId: Uint8Array;
  publicKey: Uint8Array;
}

// "<name>+<8 hex key id>+<base64(0x01 || 32-byte Ed25519 public key)>"
export async function parseVerifierKey(text: string): Promise<VerifierKey> {
  // The name has no '+'; the base64 key may.
  const t = text.trim();
  const i = t.indexOf('+');
  const j = t.indexOf('+', i + 1);
  const parts = [t.slice(0, i), t.slice(i + 1, j), t.slice(j + 1)];
  if (i <= 0 || j < 0 || !/^[0-9a-f]{8}$/.test(parts[1])) throw new Error('malformed verifier key');
  const raw = b64(parts[2]);
  if (raw.length !== 33 || raw[0] !== 0x01) throw new Error('verifier key is not an Ed25519 key');
  const key: VerifierKey = {
    name: parts[0],
    keyId: Uint8Array.from(parts[1].match(/../g)!.map((h) => parseInt(h, 16))),
    publicKey: raw.slice(1),
  };
  const id = (await sha256(enc.encode(key.name), new Uint8Array([0x0a]), raw)).slice(0, 4);
  if (!equal(id, key.keyId)) throw new Error('verifier key ID does not match its key');
  return key;
}

interface Receipt {
  index: bigint;
  proof: Uint8Array[];
  checkpoint: string;
}

function parseReceipt(text: string): Receipt {
  const lines = text.split('\n');
  let i = 0;
  if (lines[i++] !== 'c2sp.org/tlog-proof@v1') throw new Error('not a c2sp.org/tlog-proof@v1 receipt');
  if (lines[i]?.startsWith('extra ')) i++;
  const m = /^index (0|[1-9][0-9]*)$/.exec(lines[i++] ?? '');
  if (!m) throw new Error('receipt has no index line');
  const proof: Uint8Array[] = [];
  for (; i < lines.length && lines[i] !== ''; i++) {
    const h = b64(lines[i]);
    if (h.length !== 32) throw new Error('a proof line is not a 32-byte hash');
    proof.push(h);
  }
  if (i >= lines.length) throw new Error('receipt has no checkpoint');
  return { index: BigInt(m[1]), proof, checkpoint: lines.slice(i + 1).join('\n') };
}

interface Checkpoint {
  origin: string;
  size: bigint;
  root: Uint8Array;
}

// Opens a signed note: the body up to the blank line is what was signed.
async function openCheckpoint(note: string, key: VerifierKey): Promise<Checkpoint> {
  const cut = note.indexOf('\n\n');
  if (cut < 0) throw new Error('checkpoint has no signature block');
  const body = note.slice(0, cut + 1);
  const [origin, size, root] = body.split('\n');
  if (!/^(0|[1-9][0-9]*)$/.test(size ?? '')) throw new Error('checkpoint size is not a number');
  const rootHash = b64(root ?? '');
  if (rootHash.length !== 32) throw new Error('checkpoint root is not a 32-byte hash');
  if (origin !== key.name) throw new Error(`checkpoint origin "${origin}" is not the key's "${key.name}"`);
  const pub = await crypto.subtle.importKey('raw', key.publicKey as BufferSource, { name: 'Ed25519' }, false, ['verify']);
  for (const line of note.slice(cut + 2).split('\n')) {
    const sig = /^\u2014 (\S+) (\S+)$/.exec(line);
    if (!sig || sig[1] !== key.name) continue;
    const blob = b64(sig[2]);
    if (blob.length !== 68 || !equal(blob.slice(0, 4), key.keyId)) continue;
    if (await crypto.subtle.verify({ name: 'Ed25519' }, pub, blob.slice(4) as BufferSource, enc.encode(body) as BufferSource)) {
      return { origin, size: BigInt(size), root: rootHash };
    }
    throw new Error('the checkpoint signature does not verify under the verifier key');
  }
  throw new Error('the checkpoint has no signature by the verifier key');
}

// RFC 9162 2.1.3.2.
async function rootFromProof(index: bigint, size: bigint, leaf: Uint8Array, proof: Uint8Array[]) {
  if (index >= size) throw new Error(`index ${index} is not below the tree size ${size}`);
  let fn = index;
  let sn = size - 1n;
  let r = leaf;
  const one = new Uint8Array([0x01]);
  for (const p of proof) {
    if (sn === 0n) throw new Error('the proof is longer than the tree allows');
    if ((fn & 1n) === 1n || fn === sn) {
      r = await sha256(one, p, r);
      if ((fn & 1n) === 0n) {
        while ((fn & 1n) === 0n && fn !== 0n) {
          fn >>= 1n;
          sn >>= 1n;
        }
      }
    } else {
      r = await sha256(one, r, p);
    }
    fn >>= 1n;
    sn >>= 1n;
  }
  if (sn !== 0n) throw new Error('the proof is shorter than the tree needs');
  return r;
}

// `event` is the parsed ledger event (GET /v1/ledger/entries/{index}); its leaf bytes are its JCS
// form, recomputed here rather than taken from the server.
export async function verifyReceipt(
  event: unknown,
  index: number,
  receiptText: string,
  keyText: string,
): Promise<Verification> {
  const steps: Step[] = [];
  const step = (name: string, ok: boolean, detail: string) => steps.push({ name, ok, detail });
  try {
    const key = await parseVerifierKey(keyText);
    step('verifier key', true, `${key.name} key ${hex(key.keyId)}`);
    const receipt = parseReceipt(receiptText);
    if (receipt.index !== BigInt(index)) throw new Error(`receipt is for index ${receipt.index}, not ${index}`);
    const leaf = await sha256(new Uint8Array([0x00]), enc.encode(canonicalize(event)));
    step('leaf hash', true, 'SHA-256(0x00 ‖ JCS(event)) = ' + hex(leaf));
    const cp = await openCheckpoint(receipt.checkpoint, key);
    step('checkpoint signature', true, `Ed25519 over tree size ${cp.size}`);
    const root = await rootFromProof(receipt.index, cp.size, leaf, receipt.proof);
    if (!equal(root, cp.root)) throw new Error('the inclusion proof does not lead to the checkpoint root');
    step('inclusion proof', true, `${receipt.proof.length} hashes to root ${hex(cp.root).slice(0, 16)}…`);
    return { ok: true, steps };
  } catch (e) {
    step('failed', false, e instanceof Error ? e.message : String(e));
    return { ok: false, steps };
  }
}
