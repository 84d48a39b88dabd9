#include "crypto/jose.h"

#include <boost/json.hpp>

#include "common/encoding.h"
#include "common/jcs.h"
#include "crypto/sha256.h"

namespace custody::crypto {
namespace {

namespace json = boost::json;

Result<json::object> ParseObject(std::string_view text, const char* what) {
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  if (ec || !v.is_object())
    return InvalidArgumentError(std::string(what) + " is not a JSON object");
  return std::move(v.as_object());
}

std::string RequiredMembersJson(const EcdsaP256PublicKey& key) {
  return "{\"crv\":\"P-256\",\"kty\":\"EC\",\"x\":\"" + Base64UrlEncode(key.x()) + "\",\"y\":\"" +
         Base64UrlEncode(key.y()) + "\"}";
}

Result<EcdsaP256PublicKey> KeyFromObject(const json::object& o, std::string* kid) {
  auto str = [&](std::string_view name) -> std::string {
    auto it = o.find(name);
    return it != o.end() && it->value().is_string() ? std::string(it->value().as_string()) : "";
  };
  if (str("kty") != "EC") return InvalidArgumentError("JWK: kty must be \"EC\"");
  if (str("crv") != "P-256") return InvalidArgumentError("JWK: crv must be \"P-256\"");
  if (o.contains("d")) return InvalidArgumentError("JWK: private key material (\"d\") refused");
  if (o.contains("alg") && str("alg") != "ES256") {
    return InvalidArgumentError("JWK: alg must be ES256");
  }
  if (o.contains("use") && str("use") != "sig") return InvalidArgumentError("JWK: use must be sig");
  auto x = Base64UrlDecode(str("x"));
  auto y = Base64UrlDecode(str("y"));
  if (!x.ok() || !y.ok() || x->size() != 32 || y->size() != 32) {
    return InvalidArgumentError("JWK: x and y must be base64url of 32 bytes");
  }
  if (kid != nullptr) *kid = str("kid");
  auto key = EcdsaP256PublicKey::FromCoordinates(*x, *y);
  if (!key.ok()) return InvalidArgumentError("JWK: point is not on P-256");
  return key;
}

}  // namespace

std::string EcPublicJwkJson(const EcdsaP256PublicKey& key, std::string_view kid) {
  std::string out = "{\"alg\":\"ES256\",\"crv\":\"P-256\",\"kid\":";
  AppendJcsString(kid, out);
  out += ",\"kty\":\"EC\",\"use\":\"sig\",\"x\":\"" + Base64UrlEncode(key.x()) + "\",\"y\":\"" +
         Base64UrlEncode(key.y()) + "\"}";
  return out;
}

std::string JwkThumbprint(const EcdsaP256PublicKey& key) {
  return Base64UrlEncode(Sha256(RequiredMembersJson(key)));
}

Result<EcdsaP256PublicKey> ParseEcPublicJwk(std::string_view text, std::string* kid) {
  ASSIGN_OR_RETURN(json::object o, ParseObject(text, "JWK"));
  return KeyFromObject(o, kid);
}

Result<Jwks> Jwks::Parse(std::string_view text) {
  ASSIGN_OR_RETURN(json::object o, ParseObject(text, "JWKS"));
  auto it = o.find("keys");
  if (it == o.end() || !it->value().is_array()) {
    return InvalidArgumentError("JWKS: \"keys\" must be an array");
  }
  Jwks set;
  for (const json::value& v : it->value().as_array()) {
    if (!v.is_object()) return InvalidArgumentError("JWKS: every key must be an object");
    const json::object& k = v.as_object();
    auto kty = k.find("kty");
    auto crv = k.find("crv");
    bool p256 = kty != k.end() && kty->value() == "EC" && crv != k.end() && crv->value() == "P-256";
    if (!p256) continue;
    std::string kid;
    auto key = KeyFromObject(k, &kid);
    if (!key.ok()) return key.status();
    if (kid.empty()) return InvalidArgumentError("JWKS: P-256 key without a kid");
    if (set.Find(kid) != nullptr) return InvalidArgumentError("JWKS: duplicate kid " + kid);
    set.Add(std::move(kid), std::move(*key));
  }
  return set;
}

void Jwks::Add(std::string kid, EcdsaP256PublicKey key) {
  keys_.insert_or_assign(std::move(kid), std::move(key));
}

const EcdsaP256PublicKey* Jwks::Find(std::string_view kid) const {
  auto it = keys_.find(kid);
  return it == keys_.end() ? nullptr : &it->second;
}

std::string Jwks::ToJson() const {
  std::string out = "{\"keys\":[";
  bool first = true;
  for (const auto& [kid, key] : keys_) {
    if (!first) out += ',';
    first = false;
    out += EcPublicJwkJson(key, kid);
  }
  return out + "]}";
}

Result<std::string> SignJwsEs256(std::string_view header_json, std::string_view payload,
                                 const EcdsaP256PrivateKey& key) {
  ASSIGN_OR_RETURN(json::object header, ParseObject(header_json, "JWS header"));
  auto alg = header.find("alg");
  if (alg == header.end() || alg->value() != "ES256") {
    return InvalidArgumentError("JWS header must have \"alg\":\"ES256\"");
  }
  std::string input = Base64UrlEncode(header_json) + "." + Base64UrlEncode(payload);
  ASSIGN_OR_RETURN(EcdsaP256Signature sig, key.Sign(AsBytes(input)));
  return input + "." + Base64UrlEncode(sig);
}

Result<VerifiedJws> VerifyJwsEs256(std::string_view token, const JwsKeyResolver& resolve) {
  size_t d1 = token.find('.');
  size_t d2 = d1 == std::string_view::npos ? d1 : token.find('.', d1 + 1);
  if (d2 == std::string_view::npos || token.find('.', d2 + 1) != std::string_view::npos) {
    return UnauthenticatedError("malformed JWS: expected three base64url parts");
  }
  auto header_bytes = Base64UrlDecode(token.substr(0, d1));
  auto payload_bytes = Base64UrlDecode(token.substr(d1 + 1, d2 - d1 - 1));
  auto sig = Base64UrlDecode(token.substr(d2 + 1));
  if (!header_bytes.ok() || !payload_bytes.ok() || !sig.ok()) {
    return UnauthenticatedError("malformed JWS: a part is not canonical base64url");
  }
  VerifiedJws out;
  out.header_json = std::string(AsString(*header_bytes));
  auto header = ParseObject(out.header_json, "JWS header");
  if (!header.ok()) return UnauthenticatedError("malformed JWS: header is not a JSON object");
  auto alg = header->find("alg");
  if (alg == header->end() || !alg->value().is_string()) {
    return UnauthenticatedError("JWS header has no alg");
  }
  if (alg->value() != "ES256") {
    return UnauthenticatedError("JWS algorithm \"" + std::string(alg->value().as_string()) +
                                "\" is not allowed (only ES256)");
  }
  if (header->contains("crit")) {
    return UnauthenticatedError("JWS has critical header parameters we do not understand");
  }
  // A missing kid reaches the resolver as "": it decides whether a key applies (a client's one
  // registered key) or not (our own tokens always carry one).
  if (auto kid = header->find("kid"); kid != header->end()) {
    if (!kid->value().is_string()) return UnauthenticatedError("JWS kid must be a string");
    out.kid = std::string(kid->value().as_string());
  }
  if (auto typ = header->find("typ"); typ != header->end()) {
    if (!typ->value().is_string()) return UnauthenticatedError("JWS typ must be a string");
    out.typ = std::string(typ->value().as_string());
  }
  const EcdsaP256PublicKey* key = resolve(out.kid);
  if (key == nullptr) return UnauthenticatedError("JWS signed by unknown kid \"" + out.kid + "\"");
  if (sig->size() != 64 || !key->Verify(AsBytes(token.substr(0, d2)), *sig)) {
    return UnauthenticatedError("JWS signature does not verify");
  }
  out.payload = std::string(AsString(*payload_bytes));
  return out;
}

}  // namespace custody::crypto
