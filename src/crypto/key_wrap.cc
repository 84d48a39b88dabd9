#include "crypto/key_wrap.h"

#include <sodium.h>

#include <filesystem>
#include <vector>

#include "common/encoding.h"
#include "crypto/key_file.h"

namespace custody::crypto {
namespace {

constexpr std::string_view kPrefix = "cwk1:";
constexpr size_t kNonce = crypto_aead_xchacha20poly1305_ietf_NPUBBYTES;
constexpr size_t kTag = crypto_aead_xchacha20poly1305_ietf_ABYTES;
static_assert(crypto_aead_xchacha20poly1305_ietf_KEYBYTES == KeyEncryptionKey::kSize);

std::string_view Trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

const uint8_t* Bytes(std::string_view s) { return reinterpret_cast<const uint8_t*>(s.data()); }

// XChaCha20-Poly1305 works before sodium_init, which only picks faster code paths; it is
// idempotent and thread-safe, and a failure (-1) leaves the portable code in use.
void InitSodium() {
  static const bool inited = sodium_init() >= 0;
  (void)inited;
}

}  // namespace

std::string TokenSigningKeySlot(std::string_view kid) {
  return "custody/token-signing-key/v1:" + std::string(kid);
}

Result<KeyEncryptionKey> KeyEncryptionKey::Parse(std::string_view text) {
  text = Trim(text);
  Result<std::vector<uint8_t>> bytes =
      text.size() == 2 * kSize ? HexDecode(text) : Base64Decode(text);
  if (!bytes.ok() || bytes->size() != kSize) {
    if (bytes.ok()) sodium_memzero(bytes->data(), bytes->size());
    return InvalidArgumentError(
        "a key encryption key must be 32 bytes written as 64 hex digits or as base64 (e.g. "
        "`openssl rand -base64 32`)");
  }
  KeyEncryptionKey k;
  std::copy(bytes->begin(), bytes->end(), k.key_.begin());
  sodium_memzero(bytes->data(), bytes->size());
  return k;
}

Result<KeyEncryptionKey> KeyEncryptionKey::FromFile(const std::string& path) {
  ASSIGN_OR_RETURN(std::string text, ReadSecretFile(path, "the key encryption key file", 4096));
  const std::string name = std::filesystem::path(path).filename().string();
  Result<KeyEncryptionKey> k = Parse(text);
  sodium_memzero(text.data(), text.size());
  if (!k.ok()) return k.status().WithContext("key encryption key file " + name);
  return k;
}

KeyEncryptionKey KeyEncryptionKey::FromBytes(std::span<const uint8_t, kSize> bytes) {
  KeyEncryptionKey k;
  std::copy(bytes.begin(), bytes.end(), k.key_.begin());
  return k;
}

KeyEncryptionKey::KeyEncryptionKey(const KeyEncryptionKey&) = default;
KeyEncryptionKey& KeyEncryptionKey::operator=(const KeyEncryptionKey&) = default;
KeyEncryptionKey::~KeyEncryptionKey() { sodium_memzero(key_.data(), key_.size()); }

std::string KeyEncryptionKey::Wrap(std::string_view plaintext, std::string_view slot,
                                   Random& random) const {
  InitSodium();
  std::vector<uint8_t> sealed(kNonce + plaintext.size() + kTag);
  random.Fill(std::span(sealed.data(), kNonce));
  unsigned long long len = 0;
  crypto_aead_xchacha20poly1305_ietf_encrypt(sealed.data() + kNonce, &len, Bytes(plaintext),
                                             plaintext.size(), Bytes(slot), slot.size(), nullptr,
                                             sealed.data(), key_.data());
  sealed.resize(kNonce + len);
  return std::string(kPrefix) + Base64Encode(sealed);
}

Result<std::string> KeyEncryptionKey::Unwrap(std::string_view wrapped,
                                             std::string_view slot) const {
  InitSodium();
  if (!LooksWrapped(wrapped)) return DataLossError("not a wrapped key");
  Result<std::vector<uint8_t>> sealed = Base64Decode(wrapped.substr(kPrefix.size()));
  if (!sealed.ok() || sealed->size() < kNonce + kTag) {
    return DataLossError("a wrapped key is malformed");
  }
  std::string plain(sealed->size() - kNonce - kTag, '\0');
  unsigned long long len = 0;
  if (crypto_aead_xchacha20poly1305_ietf_decrypt(
          reinterpret_cast<uint8_t*>(plain.data()), &len, nullptr, sealed->data() + kNonce,
          sealed->size() - kNonce, Bytes(slot), slot.size(), sealed->data(), key_.data()) != 0) {
    return PermissionDeniedError(
        "the key encryption key does not open this wrapped key (another key, another slot, or "
        "altered bytes)");
  }
  plain.resize(len);
  return plain;
}

bool KeyEncryptionKey::LooksWrapped(std::string_view text) { return text.starts_with(kPrefix); }

}  // namespace custody::crypto
