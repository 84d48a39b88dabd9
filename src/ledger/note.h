// C2SP signed notes (https://c2sp.org/signed-note) with Ed25519 signatures (type 0x01).
//
//   note           = text || "\n" || 1*signature-line      (text ends in "\n")
//   signature-line = "— " || key name || " " || base64(key ID (4 bytes, big-endian) || sig) "\n"
//   key ID         = SHA-256(key name || 0x0A || 0x01 || 32-byte public key)[:4]
//   verifier key   = key name "+" hex8(key ID) "+" base64(0x01 || public key)
//
// The Ed25519 signature covers the text, final newline included. Both classes are immutable after
// creation and safe to use from several threads.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "common/status.h"
#include "crypto/ed25519.h"

namespace custody::ledger {

inline constexpr uint8_t kNoteEd25519Type = 0x01;

// Key names are non-empty UTF-8 without Unicode spaces, '+' or control characters.
Status ValidateNoteKeyName(std::string_view name);

// key ID = SHA-256(name || 0x0A || 0x01 || public key)[:4], big-endian.
uint32_t NoteKeyId(std::string_view name, const crypto::Ed25519PublicKey& public_key);

class NoteSigner {
 public:
  // Keeps a reference to `key`, which must outlive the signer (and every copy of it).
  static Result<NoteSigner> Create(std::string name, const crypto::Ed25519PrivateKey& key);
  // Shares ownership of `key`.
  static Result<NoteSigner> Create(std::string name,
                                   std::shared_ptr<const crypto::Ed25519PrivateKey> key);

  const std::string& name() const { return name_; }
  uint32_t key_id() const { return key_id_; }
  // name+hex8(keyid)+base64(0x01||pub).
  std::string VerifierKey() const;

  // Returns body || "\n" || "— name base64(keyid||sig)\n". The body must be non-empty valid
  // UTF-8 ending in "\n", without control characters other than "\n".
  Result<std::string> Sign(std::string_view body) const;

 private:
  NoteSigner(std::string name, const crypto::Ed25519PrivateKey* key,
             std::shared_ptr<const crypto::Ed25519PrivateKey> owned);

  std::string name_;
  const crypto::Ed25519PrivateKey* key_;
  std::shared_ptr<const crypto::Ed25519PrivateKey> owned_;  // null when key_ is borrowed
  uint32_t key_id_;
};

class NoteVerifier {
 public:
  // Parses "name+hex8(keyid)+base64(0x01||pub)"; the key ID must match the name and key.
  static Result<NoteVerifier> FromVerifierKey(std::string_view vkey);
  static NoteVerifier FromPublicKey(std::string name, const crypto::Ed25519PublicKey& public_key);

  const std::string& name() const { return name_; }
  uint32_t key_id() const { return key_id_; }
  const crypto::Ed25519PublicKey& public_key() const { return public_key_; }
  std::string VerifierKey() const;

  // Verifies a signed note and returns its text (final newline included). Signature lines by
  // other keys (another name or key ID) are ignored, as the spec requires; every line by this key
  // must verify. Errors: InvalidArgument for a malformed note, Unauthenticated for "no signature
  // by this key" and "bad signature".
  Result<std::string> Verify(std::string_view note) const;

 private:
  NoteVerifier(std::string name, const crypto::Ed25519PublicKey& public_key);

  std::string name_;
  crypto::Ed25519PublicKey public_key_;
  uint32_t key_id_;
};

}  // namespace custody::ledger
