// JOSE for Custody's tokens: EC P-256 JWKs (RFC 7517/7518), JWK thumbprints (RFC 7638), and
// JWS compact serialization (RFC 7515) with a strict algorithm allow-list: only ES256 is ever
// accepted. "none", HMAC (the classic public-key-as-secret confusion), RSA and anything else are
// refused before any key is looked up. Pure functions and immutable values; thread-safe.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "crypto/ecdsa_p256.h"

namespace custody::crypto {

// {"alg":"ES256","crv":"P-256","kid":…,"kty":"EC","use":"sig","x":…,"y":…} (RFC 8785 order).
std::string EcPublicJwkJson(const EcdsaP256PublicKey& key, std::string_view kid);
// RFC 7638 thumbprint (SHA-256, base64url) of the key's required members.
std::string JwkThumbprint(const EcdsaP256PublicKey& key);
// Parses one public EC P-256 JWK. Rejects other key types/curves, private members ("d"),
// bad base64url, points off the curve, and an "alg" other than ES256.
Result<EcdsaP256PublicKey> ParseEcPublicJwk(std::string_view json, std::string* kid = nullptr);

// A JSON Web Key Set of P-256 verification keys, by kid.
class Jwks {
 public:
  // Parses {"keys":[…]}. Keys that are not EC P-256 signature keys are skipped (a JWKS may
  // publish other keys); malformed P-256 keys and duplicate kids are errors.
  static Result<Jwks> Parse(std::string_view json);
  void Add(std::string kid, EcdsaP256PublicKey key);
  const EcdsaP256PublicKey* Find(std::string_view kid) const;
  std::string ToJson() const;
  size_t size() const { return keys_.size(); }

 private:
  std::map<std::string, EcdsaP256PublicKey, std::less<>> keys_;
};

struct VerifiedJws {
  std::string header_json;  // decoded protected header
  std::string payload;      // decoded payload bytes
  std::string kid;
  std::string typ;  // empty if absent
};

// Returns the verification key for a kid ("" when the header has none), or nullptr if unknown.
using JwsKeyResolver = std::function<const EcdsaP256PublicKey*(std::string_view kid)>;

// Signs header.payload with ES256. `header_json` must be a JSON object with "alg":"ES256".
Result<std::string> SignJwsEs256(std::string_view header_json, std::string_view payload,
                                 const EcdsaP256PrivateKey& key);

// Verifies a compact JWS. Errors are Unauthenticated and say what is wrong (malformed, algorithm
// not allowed, unknown kid, critical header, bad signature) without echoing the token.
Result<VerifiedJws> VerifyJwsEs256(std::string_view token, const JwsKeyResolver& resolve);

}  // namespace custody::crypto
