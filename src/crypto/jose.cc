#include "crypto/jose.h"

#include <boost/json.hpp>

#include "common/encoding.h"
#include "common/jcs.h"
#include "common/json_parse.h"
#include "crypto/sha256.h"

namespace custody::crypto {
namespace {

namespace json = boost::json;

Result<json::object> ParseObject(std::string_view text, const char* what) {
  boost::system::error_code ec;
  json::value v = ParseJson(text, ec);
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

Result<RsaPublicKey> RsaKeyFromObject(const json::object& o, std::string* kid) {
  auto str = [&](std::string_view name) -> std::string {
    auto it = o.find(name);
    return it != o.end() && it->value().is_string() ? std::string(it->value().as_string()) : "";
  };
  if (str("kty") != "RSA") return InvalidArgumentError("JWK: kty must be \"RSA\"");
  for (const char* priv : {"d", "p", "q", "dp", "dq", "qi", "oth"}) {
    if (o.contains(priv)) return InvalidArgumentError("JWK: private key material refused");
  }
  if (o.contains("alg") && str("alg") != "RS256") {
    return InvalidArgumentError("JWK: alg of an RSA key must be RS256");
  }
  if (o.contains("use") && str("use") != "sig") return InvalidArgumentError("JWK: use must be sig");
  auto n = Base64UrlDecode(str("n"));
  auto e = Base64UrlDecode(str("e"));
  if (!n.ok() || !e.ok() || n->empty() || e->empty()) {
    return InvalidArgumentError("JWK: n and e must be non-empty base64url");
  }
  if (kid != nullptr) *kid = str("kid");
  auto key = RsaPublicKey::FromComponents(*n, *e);
  if (!key.ok()) return key.status().WithContext("JWK");
  return key;
}

// The parts of a compact JWS and its checked header, before any key is used.
struct ParsedJws {
  VerifiedJws out;
  std::string_view signing_input;
  std::vector<uint8_t> signature;
};

// Splits and decodes a compact JWS, and checks the header: alg present and in `allowed` (checked
// first, before anything else is looked at), no crit, kid and typ strings.
Result<ParsedJws> ParseCompactJws(std::string_view token, JwsAlgorithms allowed) {
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
  ParsedJws p;
  VerifiedJws& out = p.out;
  out.header_json = std::string(AsString(*header_bytes));
  auto header = ParseObject(out.header_json, "JWS header");
  if (!header.ok()) return UnauthenticatedError("malformed JWS: header is not a JSON object");
  auto alg = header->find("alg");
  if (alg == header->end() || !alg->value().is_string()) {
    return UnauthenticatedError("JWS header has no alg");
  }
  std::string_view alg_name = alg->value().as_string();
  bool allowed_alg =
      (alg_name == "ES256" && allowed.es256) || (alg_name == "RS256" && allowed.rs256);
  if (!allowed_alg) {
    std::string list = allowed.rs256 ? (allowed.es256 ? "ES256, RS256" : "RS256") : "ES256";
    return UnauthenticatedError("JWS algorithm \"" + std::string(alg_name) +
                                "\" is not allowed (only " + list + ")");
  }
  out.alg = std::string(alg_name);
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
  out.payload = std::string(AsString(*payload_bytes));
  p.signing_input = token.substr(0, d2);
  p.signature = std::move(*sig);
  return p;
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

std::string RsaPublicJwkJson(const RsaPublicKey& key, std::string_view kid) {
  std::string out = "{\"alg\":\"RS256\",\"e\":\"" + Base64UrlEncode(key.e()) + "\",\"kid\":";
  AppendJcsString(kid, out);
  out += ",\"kty\":\"RSA\",\"n\":\"" + Base64UrlEncode(key.n()) + "\",\"use\":\"sig\"}";
  return out;
}

Result<RsaPublicKey> ParseRsaPublicJwk(std::string_view text, std::string* kid) {
  ASSIGN_OR_RETURN(json::object o, ParseObject(text, "JWK"));
  return RsaKeyFromObject(o, kid);
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
    auto member = [&](std::string_view name) -> std::string_view {
      auto m = k.find(name);
      return m != k.end() && m->value().is_string() ? std::string_view(m->value().as_string())
                                                    : std::string_view();
    };
    bool p256 = member("kty") == "EC" && member("crv") == "P-256";
    bool rsa = member("kty") == "RSA";
    if (!p256 && !rsa) continue;
    // An RSA key published for encryption or another algorithm is not ours to use; a P-256 key
    // that says so is malformed for our purposes (KeyFromObject refuses it).
    if (rsa && ((k.contains("use") && member("use") != "sig") ||
                (k.contains("alg") && member("alg") != "RS256"))) {
      continue;
    }
    std::string kid;
    if (p256) {
      auto key = KeyFromObject(k, &kid);
      if (!key.ok()) return key.status();
      if (kid.empty()) return InvalidArgumentError("JWKS: P-256 key without a kid");
      if (set.Find(kid) != nullptr || set.FindRsa(kid) != nullptr) {
        return InvalidArgumentError("JWKS: duplicate kid " + kid);
      }
      set.Add(std::move(kid), std::move(*key));
    } else {
      auto key = RsaKeyFromObject(k, &kid);
      if (!key.ok()) return key.status().WithContext("JWKS key \"" + kid + "\"");
      if (kid.empty()) return InvalidArgumentError("JWKS: RSA key without a kid");
      if (set.Find(kid) != nullptr || set.FindRsa(kid) != nullptr) {
        return InvalidArgumentError("JWKS: duplicate kid " + kid);
      }
      set.AddRsa(std::move(kid), std::move(*key));
    }
  }
  return set;
}

void Jwks::Add(std::string kid, EcdsaP256PublicKey key) {
  keys_.insert_or_assign(std::move(kid), std::move(key));
}

void Jwks::AddRsa(std::string kid, RsaPublicKey key) {
  rsa_keys_.insert_or_assign(std::move(kid), std::move(key));
}

const EcdsaP256PublicKey* Jwks::Find(std::string_view kid) const {
  auto it = keys_.find(kid);
  return it == keys_.end() ? nullptr : &it->second;
}

const RsaPublicKey* Jwks::FindRsa(std::string_view kid) const {
  auto it = rsa_keys_.find(kid);
  return it == rsa_keys_.end() ? nullptr : &it->second;
}

std::string Jwks::ToJson() const {
  std::string out = "{\"keys\":[";
  bool first = true;
  for (const auto& [kid, key] : keys_) {
    if (!first) out += ',';
    first = false;
    out += EcPublicJwkJson(key, kid);
  }
  for (const auto& [kid, key] : rsa_keys_) {
    if (!first) out += ',';
    first = false;
    out += RsaPublicJwkJson(key, kid);
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
  ASSIGN_OR_RETURN(ParsedJws p, ParseCompactJws(token, kCustodyAlgorithms));
  const EcdsaP256PublicKey* key = resolve(p.out.kid);
  if (key == nullptr) {
    return UnauthenticatedError("JWS signed by unknown kid \"" + p.out.kid + "\"");
  }
  if (p.signature.size() != 64 || !key->Verify(AsBytes(p.signing_input), p.signature)) {
    return UnauthenticatedError("JWS signature does not verify");
  }
  return std::move(p.out);
}

Result<VerifiedJws> VerifyJwsWithJwks(std::string_view token, const Jwks& keys,
                                      JwsAlgorithms allowed) {
  ASSIGN_OR_RETURN(ParsedJws p, ParseCompactJws(token, allowed));
  const EcdsaP256PublicKey* ec = keys.Find(p.out.kid);
  const RsaPublicKey* rsa = keys.FindRsa(p.out.kid);
  if (ec == nullptr && rsa == nullptr) {
    return UnauthenticatedError("JWS signed by unknown kid \"" + p.out.kid + "\"");
  }
  bool ok = false;
  if (p.out.alg == "ES256") {
    if (ec == nullptr) return UnauthenticatedError("JWS alg ES256 names a key that is not EC");
    ok = p.signature.size() == 64 && ec->Verify(AsBytes(p.signing_input), p.signature);
  } else {  // RS256: ParseCompactJws allowed nothing else
    if (rsa == nullptr) return UnauthenticatedError("JWS alg RS256 names a key that is not RSA");
    ok = rsa->VerifyRs256(AsBytes(p.signing_input), p.signature);
  }
  if (!ok) return UnauthenticatedError("JWS signature does not verify");
  return std::move(p.out);
}

}  // namespace custody::crypto
