// The client side of Custody's token endpoint for `custody token svid|exchange|keygen`: an
// agent's private key file, the RFC 7523 client assertion it signs (private_key_jwt), the
// RFC 8693 subject token types, and reading a token argument (literal, @FILE or - for stdin).
// The JWT-SVID and the session token themselves are issued and signed by the server; this only
// authenticates the client. Pure functions (ReadTokenArgument reads what it is given); no error
// message ever holds a token or key material.
#pragma once

#include <boost/json/fwd.hpp>
#include <cstdint>
#include <istream>
#include <optional>
#include <string>
#include <string_view>

#include "common/status.h"
#include "crypto/ecdsa_p256.h"

namespace custody::cli {

// An agent's private key for private_key_jwt.
struct ClientKey {
  crypto::EcdsaP256PrivateKey key;
  std::string kid;  // the JWK's kid; "" for a PEM file (the server then uses the registered key)
};

// Where client assertions go: the server's issuer and its token endpoint (their aud).
struct TokenEndpoint {
  std::string issuer;
  std::string url;
};
inline constexpr std::string_view kDefaultIssuer = "https://custody.local";  // older servers'
// The issuer and token_endpoint of RFC 8414 authorization server metadata (token_endpoint
// defaults to <issuer>/oauth2/token); nullopt without a string issuer.
std::optional<TokenEndpoint> TokenEndpointFromMetadata(const boost::json::value& metadata);

// Parses an agent's private key file: a PKCS#8 PEM ("-----BEGIN PRIVATE KEY-----", what
// `custody token keygen` and `openssl genpkey` write) or a private EC P-256 JWK
// ({"kty":"EC","crv":"P-256","x","y","d"[,"kid"]}) whose x and y are d's public point.
Result<ClientKey> ParseClientKey(std::string_view text);

// The JSON claims of an RFC 7523 client assertion: iss = sub = `client_id`, aud =
// `token_endpoint`, iat = `now`, exp = `now` + `lifetime_s`, jti.
std::string ClientAssertionClaims(std::string_view client_id, std::string_view token_endpoint,
                                  int64_t now, int64_t lifetime_s, std::string_view jti);

// The signed client assertion (ES256, through crypto::SignJwsEs256; kid in the header if known).
Result<std::string> SignClientAssertion(const ClientKey& key, std::string_view client_id,
                                        std::string_view token_endpoint, int64_t now,
                                        int64_t lifetime_s, std::string_view jti);

// The RFC 8693 subject_token_type URN. `flag` is a short name (access_token, id_token, jwt,
// initiator-assertion) or a full URN; empty: inferred from the token: a JSON object is an
// initiator assertion, a JWT whose header says typ "at+jwt" a Custody access token (a parent
// session), any other JWT an ID token.
Result<std::string> SubjectTokenType(std::string_view flag, std::string_view token);

// The agent name in a JWT-SVID's sub (spiffe://<td>/agent/<name>/instance/<id>), read without
// verifying it (the server does): the default client of an exchange.
Result<std::string> AgentOfSvid(std::string_view svid);

// A token argument: "-" reads `in` to its end, "@FILE" reads FILE, anything else is the token.
// Leading and trailing whitespace (a file's newline) is dropped; an empty token is an error.
Result<std::string> ReadTokenArgument(std::string_view arg, std::istream& in);

}  // namespace custody::cli
