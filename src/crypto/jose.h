// JOSE for Custody's tokens: EC P-256 and RSA public JWKs (RFC 7517/7518), JWK thumbprints
// (RFC 7638), and JWS compact serialization (RFC 7515) with a strict algorithm allow-list:
//   - Custody's own tokens and client assertions: ES256 only (VerifyJwsEs256);
//   - ID tokens of configured trusted issuers: ES256 or RS256 (VerifyJwsWithJwks with
//     kTrustedIssuerAlgorithms), the key's type matching the alg.
// "none", HMAC (the classic public-key-as-secret confusion), PS256 and anything else are refused
// before any key is looked up. Pure functions and immutable values; thread-safe.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "crypto/ecdsa_p256.h"
#include "crypto/rsa.h"

namespace custody::crypto {

// {"alg":"ES256","crv":"P-256","kid":…,"kty":"EC","use":"sig","x":…,"y":…} (RFC 8785 order).
std::string EcPublicJwkJson(const EcdsaP256PublicKey& key, std::string_view kid);
// RFC 7638 thumbprint (SHA-256, base64url) of the key's required members.
std::string JwkThumbprint(const EcdsaP256PublicKey& key);
// Parses one public EC P-256 JWK. Rejects other key types/curves, private members ("d"),
// bad base64url, points off the curve, and an "alg" other than ES256.
Result<EcdsaP256PublicKey> ParseEcPublicJwk(std::string_view json, std::string* kid = nullptr);

// {"alg":"RS256","e":…,"kid":…,"kty":"RSA","n":…,"use":"sig"} (RFC 8785 order).
std::string RsaPublicJwkJson(const RsaPublicKey& key, std::string_view kid);
// Parses one public RSA JWK. Rejects other key types, private members ("d", "p", …), bad
// base64url, a modulus under 2048 bits (crypto/rsa.h), and an "alg" other than RS256.
Result<RsaPublicKey> ParseRsaPublicJwk(std::string_view json, std::string* kid = nullptr);

// A JSON Web Key Set of verification keys by kid: EC P-256 (ES256) and RSA (RS256) keys.
class Jwks {
 public:
  // Parses {"keys":[…]}. Keys Custody cannot use are skipped (a JWKS may publish other keys):
  // other key types or curves, "use" other than "sig", an RSA "alg" other than RS256. Malformed
  // P-256 or RSA keys, RSA keys under 2048 bits, keys without a kid and duplicate kids are errors.
  static Result<Jwks> Parse(std::string_view json);
  void Add(std::string kid, EcdsaP256PublicKey key);
  void AddRsa(std::string kid, RsaPublicKey key);
  // The EC key with this kid, or nullptr (also when the kid names an RSA key).
  const EcdsaP256PublicKey* Find(std::string_view kid) const;
  // The RSA key with this kid, or nullptr (also when the kid names an EC key).
  const RsaPublicKey* FindRsa(std::string_view kid) const;
  std::string ToJson() const;
  size_t size() const { return keys_.size() + rsa_keys_.size(); }

 private:
  std::map<std::string, EcdsaP256PublicKey, std::less<>> keys_;
  std::map<std::string, RsaPublicKey, std::less<>> rsa_keys_;
};

// The JWS algorithms a verifier accepts. There are exactly two allow-lists (see the top).
struct JwsAlgorithms {
  bool es256 = true;
  bool rs256 = false;
};
inline constexpr JwsAlgorithms kCustodyAlgorithms{true, false};
inline constexpr JwsAlgorithms kTrustedIssuerAlgorithms{true, true};

struct VerifiedJws {
  std::string header_json;  // decoded protected header
  std::string payload;      // decoded payload bytes
  std::string kid;
  std::string typ;  // empty if absent
  std::string alg;  // "ES256" or "RS256"
};

// Returns the verification key for a kid ("" when the header has none), or nullptr if unknown.
using JwsKeyResolver = std::function<const EcdsaP256PublicKey*(std::string_view kid)>;

// Signs header.payload with ES256. `header_json` must be a JSON object with "alg":"ES256".
Result<std::string> SignJwsEs256(std::string_view header_json, std::string_view payload,
                                 const EcdsaP256PrivateKey& key);

// Verifies a compact JWS. Errors are Unauthenticated and say what is wrong (malformed, algorithm
// not allowed, unknown kid, critical header, bad signature) without echoing the token.
Result<VerifiedJws> VerifyJwsEs256(std::string_view token, const JwsKeyResolver& resolve);

// Verifies a compact JWS whose alg is in `allowed` with the key its kid names in `keys`. The
// key's type must match the alg: an RS256 header naming an EC key (or ES256 naming an RSA key)
// is refused. Errors are Unauthenticated, as for VerifyJwsEs256.
Result<VerifiedJws> VerifyJwsWithJwks(std::string_view token, const Jwks& keys,
                                      JwsAlgorithms allowed);

}  // namespace custody::crypto
