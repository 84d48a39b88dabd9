// ECDSA over P-256 with SHA-256 (JWS "ES256", RFC 7518 §3.4) through OpenSSL 3 EVP.
//
// Signatures are the JWS form: R || S, 32 bytes each, big-endian (not DER). Keys are immutable
// after creation; signing and verification are thread-safe.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "common/status.h"

namespace custody::crypto {

using EcdsaP256Signature = std::array<uint8_t, 64>;

class EcdsaP256PublicKey {
 public:
  // From the affine coordinates (32 bytes each). Rejects points not on the curve.
  static Result<EcdsaP256PublicKey> FromCoordinates(std::span<const uint8_t> x,
                                                    std::span<const uint8_t> y);
  EcdsaP256PublicKey(const EcdsaP256PublicKey&);
  EcdsaP256PublicKey& operator=(const EcdsaP256PublicKey&);
  EcdsaP256PublicKey(EcdsaP256PublicKey&&) noexcept;
  EcdsaP256PublicKey& operator=(EcdsaP256PublicKey&&) noexcept;
  ~EcdsaP256PublicKey();

  const std::array<uint8_t, 32>& x() const { return x_; }
  const std::array<uint8_t, 32>& y() const { return y_; }
  // True iff `signature` (R || S) is valid for `message` (hashed with SHA-256 here).
  bool Verify(std::span<const uint8_t> message, std::span<const uint8_t> signature) const;

 private:
  friend class EcdsaP256PrivateKey;
  struct Impl;
  explicit EcdsaP256PublicKey(std::shared_ptr<const Impl> impl);
  std::shared_ptr<const Impl> impl_;
  std::array<uint8_t, 32> x_{};
  std::array<uint8_t, 32> y_{};
};

class EcdsaP256PrivateKey {
 public:
  static Result<EcdsaP256PrivateKey> Generate();
  static Result<EcdsaP256PrivateKey> FromPkcs8Pem(std::string_view pem);
  // From the private scalar d (32 bytes).
  static Result<EcdsaP256PrivateKey> FromScalar(std::span<const uint8_t> d);

  EcdsaP256PrivateKey(EcdsaP256PrivateKey&&) noexcept;
  EcdsaP256PrivateKey& operator=(EcdsaP256PrivateKey&&) noexcept;
  ~EcdsaP256PrivateKey();

  const EcdsaP256PublicKey& public_key() const { return public_key_; }
  Result<EcdsaP256Signature> Sign(std::span<const uint8_t> message) const;
  Result<std::string> ToPkcs8Pem() const;

 private:
  struct Impl;
  EcdsaP256PrivateKey(std::unique_ptr<Impl> impl, EcdsaP256PublicKey pub);
  static Result<EcdsaP256PrivateKey> FromPkey(void* pkey);
  std::unique_ptr<Impl> impl_;
  EcdsaP256PublicKey public_key_;
};

}  // namespace custody::crypto
