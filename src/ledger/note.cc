#include "ledger/note.h"

#include <cstdio>
#include <vector>

#include "common/encoding.h"
#include "crypto/sha256.h"

namespace custody::ledger {
namespace {

constexpr std::string_view kSigPrefix = "\xE2\x80\x94 ";  // U+2014 em dash, space
// The spec asks verifiers to accept at least 16 signatures; we cap the work a note can cause.
constexpr size_t kMaxSignatures = 100;
constexpr size_t kMaxNoteBytes = 1 << 20;

// Decodes one UTF-8 code point at s[i], advancing i. Returns -1 on malformed input (overlong
// forms, surrogates and values above U+10FFFF included).
int32_t NextCodePoint(std::string_view s, size_t& i) {
  const auto b0 = static_cast<uint8_t>(s[i]);
  if (b0 < 0x80) {
    ++i;
    return b0;
  }
  int len;
  int32_t cp;
  if ((b0 & 0xE0) == 0xC0) {
    len = 2;
    cp = b0 & 0x1F;
  } else if ((b0 & 0xF0) == 0xE0) {
    len = 3;
    cp = b0 & 0x0F;
  } else if ((b0 & 0xF8) == 0xF0) {
    len = 4;
    cp = b0 & 0x07;
  } else {
    return -1;
  }
  if (s.size() - i < static_cast<size_t>(len)) return -1;
  for (int k = 1; k < len; ++k) {
    const auto b = static_cast<uint8_t>(s[i + k]);
    if ((b & 0xC0) != 0x80) return -1;
    cp = (cp << 6) | (b & 0x3F);
  }
  static constexpr int32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
  if (cp < kMin[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return -1;
  i += len;
  return cp;
}

bool IsUnicodeSpace(int32_t cp) {
  // Unicode White_Space property.
  return (cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
         (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F ||
         cp == 0x205F || cp == 0x3000;
}

// Valid UTF-8 with no ASCII control characters other than newline.
Status ValidateNoteText(std::string_view text, std::string_view what) {
  for (size_t i = 0; i < text.size();) {
    const int32_t cp = NextCodePoint(text, i);
    if (cp < 0) return InvalidArgumentError(std::string(what) + " is not valid UTF-8");
    if ((cp < 0x20 && cp != '\n') || cp == 0x7F) {
      return InvalidArgumentError(std::string(what) + " contains a control character");
    }
  }
  return OkStatus();
}

std::string Hex8(uint32_t v) {
  char buf[9];
  std::snprintf(buf, sizeof buf, "%08x", v);
  return std::string(buf, 8);
}

std::string EncodeVerifierKey(std::string_view name, uint32_t key_id,
                              const crypto::Ed25519PublicKey& pub) {
  std::array<uint8_t, 33> typed;
  typed[0] = kNoteEd25519Type;
  std::copy(pub.begin(), pub.end(), typed.begin() + 1);
  std::string out(name);
  out += '+';
  out += Hex8(key_id);
  out += '+';
  out += Base64Encode(typed);
  return out;
}

}  // namespace

Status ValidateNoteKeyName(std::string_view name) {
  if (name.empty()) return InvalidArgumentError("note key name is empty");
  for (size_t i = 0; i < name.size();) {
    const int32_t cp = NextCodePoint(name, i);
    if (cp < 0) return InvalidArgumentError("note key name is not valid UTF-8");
    if (cp < 0x20 || cp == 0x7F) {
      return InvalidArgumentError("note key name contains a control character");
    }
    if (cp == '+' || IsUnicodeSpace(cp)) {
      return InvalidArgumentError("note key name contains a space or '+'");
    }
  }
  return OkStatus();
}

uint32_t NoteKeyId(std::string_view name, const crypto::Ed25519PublicKey& public_key) {
  crypto::Sha256Hasher hasher;
  const crypto::Sha256Digest d = hasher.Update(name)
                                     .Update(uint8_t{0x0A})
                                     .Update(kNoteEd25519Type)
                                     .Update(public_key)
                                     .Finish();
  return (uint32_t{d[0]} << 24) | (uint32_t{d[1]} << 16) | (uint32_t{d[2]} << 8) | d[3];
}

// --- NoteSigner ---

NoteSigner::NoteSigner(std::string name, const crypto::Ed25519PrivateKey* key,
                       std::shared_ptr<const crypto::Ed25519PrivateKey> owned)
    : name_(std::move(name)),
      key_(key),
      owned_(std::move(owned)),
      key_id_(NoteKeyId(name_, key->public_key())) {}

Result<NoteSigner> NoteSigner::Create(std::string name, const crypto::Ed25519PrivateKey& key) {
  RETURN_IF_ERROR(ValidateNoteKeyName(name));
  return NoteSigner(std::move(name), &key, nullptr);
}

Result<NoteSigner> NoteSigner::Create(std::string name,
                                      std::shared_ptr<const crypto::Ed25519PrivateKey> key) {
  if (key == nullptr) return InvalidArgumentError("note signer needs a key");
  RETURN_IF_ERROR(ValidateNoteKeyName(name));
  const crypto::Ed25519PrivateKey* raw = key.get();
  return NoteSigner(std::move(name), raw, std::move(key));
}

std::string NoteSigner::VerifierKey() const {
  return EncodeVerifierKey(name_, key_id_, key_->public_key());
}

Result<std::string> NoteSigner::Sign(std::string_view body) const {
  if (body.empty() || body.back() != '\n') {
    return InvalidArgumentError("note text must be non-empty and end with a newline");
  }
  if (body.size() > kMaxNoteBytes) return InvalidArgumentError("note text is too large");
  RETURN_IF_ERROR(ValidateNoteText(body, "note text"));
  ASSIGN_OR_RETURN(crypto::Ed25519Signature sig, key_->Sign(body));
  std::array<uint8_t, 4 + sizeof(crypto::Ed25519Signature)> blob;
  blob[0] = static_cast<uint8_t>(key_id_ >> 24);
  blob[1] = static_cast<uint8_t>(key_id_ >> 16);
  blob[2] = static_cast<uint8_t>(key_id_ >> 8);
  blob[3] = static_cast<uint8_t>(key_id_);
  std::copy(sig.begin(), sig.end(), blob.begin() + 4);
  std::string note;
  note.reserve(body.size() + 1 + kSigPrefix.size() + name_.size() + 1 + 92 + 1);
  note.append(body);
  note += '\n';
  note.append(kSigPrefix);
  note.append(name_);
  note += ' ';
  note.append(Base64Encode(blob));
  note += '\n';
  return note;
}

// --- NoteVerifier ---

NoteVerifier::NoteVerifier(std::string name, const crypto::Ed25519PublicKey& public_key)
    : name_(std::move(name)), public_key_(public_key), key_id_(NoteKeyId(name_, public_key_)) {}

NoteVerifier NoteVerifier::FromPublicKey(std::string name,
                                         const crypto::Ed25519PublicKey& public_key) {
  return NoteVerifier(std::move(name), public_key);
}

Result<NoteVerifier> NoteVerifier::FromVerifierKey(std::string_view vkey) {
  // The name cannot contain '+', and the key ID is 8 hex digits; base64 may contain '+'.
  const size_t p1 = vkey.find('+');
  if (p1 == std::string_view::npos) {
    return InvalidArgumentError("verifier key must be name+keyid+key");
  }
  const std::string_view name = vkey.substr(0, p1);
  RETURN_IF_ERROR(ValidateNoteKeyName(name).WithContext("verifier key"));
  const std::string_view rest = vkey.substr(p1 + 1);
  if (rest.size() < 9 || rest[8] != '+') {
    return InvalidArgumentError("verifier key must have an 8-digit hex key ID after the name");
  }
  uint32_t key_id = 0;
  for (char c : rest.substr(0, 8)) {
    int v;
    if (c >= '0' && c <= '9') {
      v = c - '0';
    } else if (c >= 'a' && c <= 'f') {
      v = c - 'a' + 10;
    } else {
      return InvalidArgumentError("verifier key ID must be 8 lowercase hex digits");
    }
    key_id = (key_id << 4) | static_cast<uint32_t>(v);
  }
  auto typed = Base64Decode(rest.substr(9));
  if (!typed.ok()) return typed.status().WithContext("verifier key");
  if (typed->size() != 33 || (*typed)[0] != kNoteEd25519Type) {
    return InvalidArgumentError("verifier key is not an Ed25519 (type 0x01) key");
  }
  crypto::Ed25519PublicKey pub;
  std::copy(typed->begin() + 1, typed->end(), pub.begin());
  NoteVerifier verifier{std::string(name), pub};
  if (verifier.key_id_ != key_id) {
    return InvalidArgumentError("verifier key ID " + Hex8(key_id) +
                                " does not match its name and public key");
  }
  return verifier;
}

std::string NoteVerifier::VerifierKey() const {
  return EncodeVerifierKey(name_, key_id_, public_key_);
}

Result<std::string> NoteVerifier::Verify(std::string_view note) const {
  if (note.size() > kMaxNoteBytes) return InvalidArgumentError("malformed note: too large");
  RETURN_IF_ERROR(ValidateNoteText(note, "malformed note"));
  if (note.empty() || note.back() != '\n') {
    return InvalidArgumentError("malformed note: does not end with a newline");
  }
  // The text is separated from the signatures by the last blank line.
  const size_t split = note.rfind("\n\n");
  if (split == std::string_view::npos) {
    return InvalidArgumentError("malformed note: no blank line before the signatures");
  }
  const std::string_view text = note.substr(0, split + 1);
  std::string_view sigs = note.substr(split + 2);
  if (sigs.empty()) return InvalidArgumentError("malformed note: no signature lines");

  size_t lines = 0;
  bool verified = false;
  while (!sigs.empty()) {
    if (++lines > kMaxSignatures) {
      return InvalidArgumentError("malformed note: more than 100 signatures");
    }
    const size_t nl = sigs.find('\n');  // present: the note ends with a newline
    std::string_view line = sigs.substr(0, nl);
    sigs.remove_prefix(nl + 1);
    if (!line.starts_with(kSigPrefix)) {
      return InvalidArgumentError("malformed note: signature line does not start with U+2014");
    }
    line.remove_prefix(kSigPrefix.size());
    const size_t space = line.find(' ');
    if (space == std::string_view::npos) {
      return InvalidArgumentError("malformed note: signature line has no signature");
    }
    const std::string_view name = line.substr(0, space);
    if (!ValidateNoteKeyName(name).ok()) {
      return InvalidArgumentError("malformed note: bad key name in a signature line");
    }
    auto blob = Base64Decode(line.substr(space + 1));
    if (!blob.ok() || blob->size() < 5) {
      return InvalidArgumentError("malformed note: bad signature encoding");
    }
    const uint32_t id = (uint32_t{(*blob)[0]} << 24) | (uint32_t{(*blob)[1]} << 16) |
                        (uint32_t{(*blob)[2]} << 8) | (*blob)[3];
    if (name != name_ || id != key_id_) continue;  // another key's signature
    const std::span<const uint8_t> sig(blob->data() + 4, blob->size() - 4);
    if (sig.size() != sizeof(crypto::Ed25519Signature) ||
        !crypto::Ed25519Verify(public_key_, text, sig)) {
      return UnauthenticatedError("bad signature by note key " + name_ + "+" + Hex8(key_id_));
    }
    verified = true;
  }
  if (!verified) {
    return UnauthenticatedError("note has no signature by key " + name_ + "+" + Hex8(key_id_));
  }
  return std::string(text);
}

}  // namespace custody::ledger
