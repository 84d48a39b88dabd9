// RSA public keys and RSASSA-PKCS1-v1_5 with SHA-256 (JWS "RS256", RFC 7518 §3.3) through
// OpenSSL 3 EVP. Verification only: Custody never signs with RSA. It exists because most OIDC
// providers sign their ID tokens with RS256, and Custody accepts such tokens from configured
// trusted issuers (and from nowhere else; see crypto/jose.h).
//
// Keys are immutable after creation and cheap to copy (shared); verification is thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "common/status.h"

namespace custody::crypto {

// RFC 7518 §3.3: "A key of size 2048 bits or larger MUST be used".
inline constexpr int kRsaMinModulusBits = 2048;
// Verification cost grows with the modulus; nobody issues ID tokens with larger keys.
inline constexpr int kRsaMaxModulusBits = 8192;

class RsaPublicKey {
 public:
  // From the big-endian modulus n and public exponent e (the JWK "n" and "e"). Leading zero
  // bytes are ignored. Refuses a modulus outside [2048, 8192] bits, an even modulus, and an
  // exponent that is even, below 3 or wider than 64 bits.
  static Result<RsaPublicKey> FromComponents(std::span<const uint8_t> n,
                                             std::span<const uint8_t> e);

  int bits() const { return bits_; }
  // Minimal big-endian bytes (no leading zeros).
  const std::vector<uint8_t>& n() const { return n_; }
  const std::vector<uint8_t>& e() const { return e_; }

  // True iff `signature` is a valid RSASSA-PKCS1-v1_5 SHA-256 signature of `message`. The
  // signature must be exactly the modulus length (RFC 8017 §8.2.2 step 1).
  bool VerifyRs256(std::span<const uint8_t> message, std::span<const uint8_t> signature) const;

 private:
  struct Impl;
  RsaPublicKey(std::shared_ptr<const Impl> impl, std::vector<uint8_t> n, std::vector<uint8_t> e,
               int bits);
  std::shared_ptr<const Impl> impl_;
  std::vector<uint8_t> n_;
  std::vector<uint8_t> e_;
  int bits_ = 0;
};

}  // namespace custody::crypto
