// An RSA private key that signs RSASSA-PKCS1-v1_5 with SHA-256 (JWS "RS256", RFC 7518 §3.3),
// through OpenSSL 3 EVP. Custody signs nothing of its own with RSA (its tokens are ES256); this
// exists for one interoperability need: private_key_jwt client assertions to a company IdP that
// only registers RSA keys for its clients (login.private_key_file, identity/login.h).
//
// Immutable after creation; signing is thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "crypto/rsa.h"

namespace custody::crypto {

class RsaPrivateKey {
 public:
  // From PEM: PKCS#8 ("PRIVATE KEY") or PKCS#1 ("RSA PRIVATE KEY"). Refuses other key types and
  // a modulus outside [kRsaMinModulusBits, kRsaMaxModulusBits]. Errors never carry key material.
  static Result<RsaPrivateKey> FromPem(std::string_view pem);
  // A fresh key (tests).
  static Result<RsaPrivateKey> Generate(int bits = 2048);

  const RsaPublicKey& public_key() const { return public_key_; }
  // The RS256 signature of `message`: exactly the modulus length.
  Result<std::vector<uint8_t>> SignRs256(std::span<const uint8_t> message) const;
  // PKCS#8 PEM (tests write key files with it).
  Result<std::string> ToPkcs8Pem() const;

 private:
  struct Impl;
  RsaPrivateKey(std::shared_ptr<const Impl> impl, RsaPublicKey pub);
  static Result<RsaPrivateKey> FromPkey(void* pkey);
  std::shared_ptr<const Impl> impl_;
  RsaPublicKey public_key_;
};

}  // namespace custody::crypto
