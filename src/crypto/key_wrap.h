// Key wrapping: the private keys Custody keeps in a shared database (PostgreSQL: the ledger's
// Ed25519 key, the token signing keys) are sealed with a key-encryption key (KEK) that each node
// reads from a file (mode 0600 or stricter) or an environment variable, never from the database.
//
// Wrap is XChaCha20-Poly1305-IETF (libsodium) with a fresh random 24-byte nonce. The associated
// data names the slot the key is for (kLedgerKeySlot, TokenSigningKeySlot(kid)), so a wrapped
// blob moved to another slot does not open. The wrapped form is text, for TEXT/bytea columns:
//   "cwk1:" base64(nonce[24] || ciphertext || tag[16])   (RFC 4648 §4, padded)
//
// A KEK is 32 bytes, written as 64 hex digits or as padded base64 (44 characters); surrounding
// whitespace (a trailing newline) is ignored. Thread-safe: a KEK is immutable once made; its
// bytes are wiped when it is destroyed.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "common/random.h"
#include "common/status.h"

namespace custody::crypto {

// Associated data of the ledger's signing key (ledger_meta "wrapped_signing_key").
inline constexpr std::string_view kLedgerKeySlot = "custody/ledger-key/v1";
// Associated data of the token signing key `kid` (signing_keys.private_pem).
std::string TokenSigningKeySlot(std::string_view kid);

class KeyEncryptionKey {
 public:
  static constexpr size_t kSize = 32;

  // 64 hex digits or base64 of exactly 32 bytes. The error never repeats the text.
  static Result<KeyEncryptionKey> Parse(std::string_view text);
  // Reads a KEK file. FailedPrecondition naming the mode if group or others may read or write
  // it (anything beyond 0600); the error names the file by its name only.
  static Result<KeyEncryptionKey> FromFile(const std::string& path);
  static KeyEncryptionKey FromBytes(std::span<const uint8_t, kSize> bytes);

  KeyEncryptionKey(const KeyEncryptionKey&);
  KeyEncryptionKey& operator=(const KeyEncryptionKey&);
  ~KeyEncryptionKey();

  // Seals `plaintext` for `slot`.
  std::string Wrap(std::string_view plaintext, std::string_view slot, Random& random) const;
  // Opens a Wrap result for the same slot. DataLoss when the text is not a wrapped key;
  // PermissionDenied when it does not open (another KEK, another slot, or altered bytes: the
  // AEAD cannot tell which).
  Result<std::string> Unwrap(std::string_view wrapped, std::string_view slot) const;

  // True if `text` has the wrapped form's prefix (a stored value is wrapped, not clear).
  static bool LooksWrapped(std::string_view text);

 private:
  KeyEncryptionKey() = default;
  std::array<uint8_t, kSize> key_{};
};

}  // namespace custody::crypto
