// Ed25519 keys, signing and verification through OpenSSL 3 EVP (RFC 8032, pure Ed25519).
//
// Ed25519PrivateKey owns an EVP_PKEY; signing is thread-safe (each call uses its own context).
// Private key material never leaves this class except through ToPkcs8Pem(), for key files.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "common/status.h"

namespace custody::crypto {

using Ed25519PublicKey = std::array<uint8_t, 32>;
using Ed25519Signature = std::array<uint8_t, 64>;

class Ed25519PrivateKey {
 public:
  static Result<Ed25519PrivateKey> Generate();
  static Result<Ed25519PrivateKey> FromPkcs8Pem(std::string_view pem);
  static Result<Ed25519PrivateKey> FromSeed(std::span<const uint8_t> seed32);

  Ed25519PrivateKey(Ed25519PrivateKey&&) noexcept;
  Ed25519PrivateKey& operator=(Ed25519PrivateKey&&) noexcept;
  ~Ed25519PrivateKey();

  const Ed25519PublicKey& public_key() const { return public_key_; }
  Result<Ed25519Signature> Sign(std::span<const uint8_t> message) const;
  Result<Ed25519Signature> Sign(std::string_view message) const;
  Result<std::string> ToPkcs8Pem() const;

 private:
  struct Impl;
  explicit Ed25519PrivateKey(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
  Ed25519PublicKey public_key_{};
};

// True iff `signature` is a valid Ed25519 signature of `message` under `public_key`.
bool Ed25519Verify(const Ed25519PublicKey& public_key, std::span<const uint8_t> message,
                   std::span<const uint8_t> signature);
bool Ed25519Verify(const Ed25519PublicKey& public_key, std::string_view message,
                   std::span<const uint8_t> signature);

}  // namespace custody::crypto
