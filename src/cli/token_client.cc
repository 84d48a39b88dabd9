#include "cli/token_client.h"

#include <algorithm>
#include <boost/json.hpp>
#include <iterator>

#include "common/encoding.h"
#include "common/json_parse.h"
#include "crypto/jose.h"
#include "crypto/key_file.h"
#include "identity/spiffe_id.h"
#include "identity/token_service.h"

namespace custody::cli {
namespace {

namespace json = boost::json;

std::string_view Trim(std::string_view s) {
  auto space = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; };
  while (!s.empty() && space(s.front())) s.remove_prefix(1);
  while (!s.empty() && space(s.back())) s.remove_suffix(1);
  return s;
}

std::string Member(const json::object& o, std::string_view key) {
  auto it = o.find(key);
  return it != o.end() && it->value().is_string() ? std::string(it->value().as_string()) : "";
}

// A base64url member of `jwk` that must decode to exactly 32 bytes (a P-256 coordinate or d).
Result<std::vector<uint8_t>> Coordinate(const json::object& jwk, std::string_view key) {
  std::string text = Member(jwk, key);
  auto bytes = Base64UrlDecode(text);
  if (text.empty() || !bytes.ok() || bytes->size() != 32) {
    return InvalidArgumentError("the JWK's \"" + std::string(key) +
                                "\" is not a 32-byte base64url value");
  }
  return *bytes;
}

// The decoded JSON object of one part of a compact JWS (0: header, 1: payload), unverified.
Result<json::object> JwtPart(std::string_view jwt, int part) {
  size_t first = jwt.find('.');
  size_t second = first == std::string_view::npos ? first : jwt.find('.', first + 1);
  if (second == std::string_view::npos || jwt.find('.', second + 1) != std::string_view::npos) {
    return InvalidArgumentError("not a compact JWT (three dot-separated parts)");
  }
  std::string_view text =
      part == 0 ? jwt.substr(0, first) : jwt.substr(first + 1, second - first - 1);
  auto bytes = Base64UrlDecode(text);
  if (!bytes.ok()) return InvalidArgumentError("a JWT part is not base64url");
  boost::system::error_code ec;
  json::value v = ParseJson(AsString(*bytes), ec);
  if (ec || !v.is_object()) return InvalidArgumentError("a JWT part is not a JSON object");
  return std::move(v.as_object());
}

}  // namespace

std::optional<TokenEndpoint> TokenEndpointFromMetadata(const json::value& metadata) {
  const json::object* o = metadata.if_object();
  if (o == nullptr) return std::nullopt;
  std::string issuer = Member(*o, "issuer");
  if (issuer.empty()) return std::nullopt;
  std::string url = Member(*o, "token_endpoint");
  if (url.empty()) url = issuer + "/oauth2/token";
  return TokenEndpoint{std::move(issuer), std::move(url)};
}

Result<ClientKey> ParseClientKey(std::string_view text) {
  text = Trim(text);
  if (text.starts_with("-----BEGIN")) {
    auto key = crypto::EcdsaP256PrivateKey::FromPkcs8Pem(text);
    if (!key.ok()) {
      return InvalidArgumentError("not an EC P-256 PKCS#8 private key (PEM): " +
                                  key.status().message());
    }
    return ClientKey{std::move(*key), ""};
  }
  boost::system::error_code ec;
  json::value v = ParseJson(text, ec);
  if (ec || !v.is_object()) {
    return InvalidArgumentError("neither a PKCS#8 PEM private key nor a JSON Web Key");
  }
  const json::object& jwk = v.as_object();
  if (Member(jwk, "kty") != "EC" || Member(jwk, "crv") != "P-256") {
    return InvalidArgumentError("the JWK is not an EC P-256 key (kty \"EC\", crv \"P-256\")");
  }
  if (!jwk.contains("d")) {
    return InvalidArgumentError("the JWK is a public key (no \"d\"); give the private key");
  }
  ASSIGN_OR_RETURN(std::vector<uint8_t> d, Coordinate(jwk, "d"));
  ASSIGN_OR_RETURN(std::vector<uint8_t> x, Coordinate(jwk, "x"));
  ASSIGN_OR_RETURN(std::vector<uint8_t> y, Coordinate(jwk, "y"));
  auto key = crypto::EcdsaP256PrivateKey::FromScalar(d);
  if (!key.ok()) return InvalidArgumentError("the JWK's \"d\" is not a P-256 private key");
  const auto& pub = key->public_key();
  if (!std::equal(x.begin(), x.end(), pub.x().begin()) ||
      !std::equal(y.begin(), y.end(), pub.y().begin())) {
    return InvalidArgumentError("the JWK's \"x\" and \"y\" are not the public key of its \"d\"");
  }
  return ClientKey{std::move(*key), Member(jwk, "kid")};
}

std::string ClientAssertionClaims(std::string_view client_id, std::string_view token_endpoint,
                                  int64_t now, int64_t lifetime_s, std::string_view jti) {
  return json::serialize(json::object{{"iss", client_id},
                                      {"sub", client_id},
                                      {"aud", token_endpoint},
                                      {"iat", now},
                                      {"exp", now + lifetime_s},
                                      {"jti", jti}});
}

Result<std::string> SignClientAssertion(const ClientKey& key, std::string_view client_id,
                                        std::string_view token_endpoint, int64_t now,
                                        int64_t lifetime_s, std::string_view jti) {
  json::object header{{"alg", "ES256"}, {"typ", "JWT"}};
  if (!key.kid.empty()) header["kid"] = key.kid;
  return crypto::SignJwsEs256(
      json::serialize(header),
      ClientAssertionClaims(client_id, token_endpoint, now, lifetime_s, jti), key.key);
}

Result<std::string> SubjectTokenType(std::string_view flag, std::string_view token) {
  if (flag.empty()) {
    if (Trim(token).starts_with("{")) return std::string(identity::kTokenTypeInitiatorAssertion);
    auto header = JwtPart(token, 0);
    if (!header.ok()) {
      return InvalidArgumentError(
          "cannot tell the subject token's type (neither a JWT nor a JSON initiator "
          "assertion); pass --subject-token-type");
    }
    return std::string(Member(*header, "typ") == "at+jwt" ? identity::kTokenTypeAccessToken
                                                          : identity::kTokenTypeIdToken);
  }
  if (flag == "access_token") return std::string(identity::kTokenTypeAccessToken);
  if (flag == "id_token") return std::string(identity::kTokenTypeIdToken);
  if (flag == "jwt") return std::string(identity::kTokenTypeJwt);
  if (flag == "initiator-assertion") return std::string(identity::kTokenTypeInitiatorAssertion);
  if (flag.starts_with("urn:")) return std::string(flag);
  return InvalidArgumentError(
      "--subject-token-type must be access_token, id_token, jwt, initiator-assertion or a URN");
}

Result<std::string> AgentOfSvid(std::string_view svid) {
  auto claims = JwtPart(Trim(svid), 1);
  if (!claims.ok()) return InvalidArgumentError("the actor token is not a JWT-SVID");
  auto id = identity::ParseSpiffeId(Member(*claims, "sub"));
  // path: /agent/<name>/instance/<id>
  constexpr std::string_view kAgent = "/agent/";
  if (id.ok() && id->path.starts_with(kAgent)) {
    std::string_view rest = std::string_view(id->path).substr(kAgent.size());
    size_t slash = rest.find('/');
    if (slash != std::string_view::npos && slash > 0 &&
        rest.substr(slash).starts_with("/instance/")) {
      return std::string(rest.substr(0, slash));
    }
  }
  return InvalidArgumentError("the actor token's sub is not an agent instance's SPIFFE ID");
}

Result<std::string> ReadTokenArgument(std::string_view arg, std::istream& in) {
  std::string text;
  if (arg == "-") {
    text.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    if (in.bad()) return UnavailableError("cannot read the token from stdin");
  } else if (arg.starts_with("@")) {
    std::string path(arg.substr(1));
    auto file = crypto::ReadFileToString(path);
    if (!file.ok()) return file.status();
    text = std::move(*file);
  } else {
    text = std::string(arg);
  }
  std::string_view token = Trim(text);
  if (token.empty()) {
    return InvalidArgumentError(arg == "-"             ? "stdin holds no token"
                                : arg.starts_with("@") ? "the file holds no token"
                                                       : "the token is empty");
  }
  return std::string(token);
}

}  // namespace custody::cli
