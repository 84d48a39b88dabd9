// libFuzzer target: JWS compact tokens and the JWKS that verify them (jose.h), as the token
// endpoint receives client assertions and trusted issuers' ID tokens. The input is a JWKS (one
// line of JSON), then the token:
//   {"keys":[...]}\n<header>.<payload>.<signature>
// so seeds from src/crypto/testdata/rs256_vectors.json (fuzz/corpus/jws/) reach the signature
// checks. Properties checked beyond "an error, never a crash":
//   - a JWKS that parses serializes to a JWKS that parses to the same serialization;
//   - a token that verifies is the canonical base64url of the header and payload it returns,
//     both verifiers (ES256-only and the trusted-issuer list) agree on an ES256 token, and the
//     same signature over another payload does not verify.
// Built by the fuzz preset (scripts/fuzz.sh).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "common/encoding.h"
#include "crypto/jose.h"

namespace {

using namespace custody::crypto;

void Check(bool ok, const char* what, std::string_view input) {
  if (ok) return;
  std::fprintf(stderr, "%s\n  input: %.*s\n", what, static_cast<int>(input.size()), input.data());
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const size_t nl = input.find('\n');
  const std::string_view jwks_json = input.substr(0, nl);
  const std::string_view token = nl == std::string_view::npos ? "" : input.substr(nl + 1);

  (void)ParseEcPublicJwk(jwks_json);
  (void)ParseRsaPublicJwk(jwks_json);
  auto keys = Jwks::Parse(jwks_json);
  if (!keys.ok()) return 0;
  const std::string serialized = keys->ToJson();
  auto reparsed = Jwks::Parse(serialized);
  Check(reparsed.ok() && reparsed->size() == keys->size() && reparsed->ToJson() == serialized,
        "a JWKS does not survive serialization", serialized);

  auto trusted = VerifyJwsWithJwks(token, *keys, kTrustedIssuerAlgorithms);
  auto own = VerifyJwsEs256(token, [&](std::string_view kid) { return keys->Find(kid); });
  if (own.ok()) Check(trusted.ok(), "an ES256 token verifies for one verifier only", token);
  if (!trusted.ok()) return 0;

  const VerifiedJws& v = *trusted;
  const std::string signing_input =
      custody::Base64UrlEncode(v.header_json) + "." + custody::Base64UrlEncode(v.payload);
  Check(token.starts_with(signing_input + "."), "a verified token is not its parts' encoding",
        token);
  Check(v.alg == "ES256" || v.alg == "RS256", "a verified token has another alg", token);
  if (v.alg == "ES256") Check(own.ok(), "an ES256 token verifies for one verifier only", token);

  const std::string other = custody::Base64UrlEncode(v.header_json) + "." +
                            custody::Base64UrlEncode(v.payload + " ") +
                            std::string(token.substr(signing_input.size()));
  Check(!VerifyJwsWithJwks(other, *keys, kTrustedIssuerAlgorithms).ok(),
        "a signature verifies over another payload", other);
  return 0;
}
