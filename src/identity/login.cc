#include "identity/login.h"

#include <fcntl.h>
#include <openssl/crypto.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <boost/json.hpp>
#include <boost/url/parse.hpp>
#include <boost/url/url_view.hpp>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <optional>

#include "common/encoding.h"
#include "common/json_parse.h"
#include "crypto/key_file.h"
#include "crypto/sha256.h"
#include "http/client.h"

namespace custody::identity {
namespace {

namespace json = boost::json;

struct Target {
  std::string scheme, host, target;
  uint16_t port = 0;
};

bool IsLoopbackHost(std::string_view host) {
  return host == "127.0.0.1" || host == "::1" || host == "[::1]" || host == "localhost";
}

// An https URL, or an http URL on a loopback host.
Result<Target> ParseEndpoint(std::string_view url, const std::string& what) {
  auto u = boost::urls::parse_absolute_uri(url);
  if (!u) return InvalidArgumentError(what + " is not an absolute URL");
  Target t;
  t.scheme = std::string(u->scheme());
  t.host = std::string(u->host_address());  // an IPv6 literal without its brackets
  if (t.host.empty()) return InvalidArgumentError(what + " has no host");
  if (t.scheme == "https") {
    t.port = u->has_port() ? static_cast<uint16_t>(u->port_number()) : 443;
  } else if (t.scheme == "http" && IsLoopbackHost(t.host)) {
    t.port = u->has_port() ? static_cast<uint16_t>(u->port_number()) : 80;
  } else {
    return InvalidArgumentError(what + " must be https (http only on a loopback host)");
  }
  if (t.host == "localhost") t.host = "127.0.0.1";
  t.target = std::string(u->encoded_path());
  if (t.target.empty()) t.target = "/";
  if (u->has_query()) t.target += "?" + std::string(u->encoded_query());
  return t;
}

std::string Str(const json::object& o, std::string_view k) {
  auto it = o.find(k);
  return it != o.end() && it->value().is_string() ? std::string(it->value().as_string()) : "";
}

}  // namespace

std::string FormEncode(std::string_view v) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : v) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out += static_cast<char>(c);
    } else if (c == ' ') {
      out += '+';
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

std::string PkceS256(std::string_view verifier) {
  return Base64UrlEncode(crypto::Sha256(verifier));
}

bool IsPkceVerifier(std::string_view v) {
  if (v.size() < 43 || v.size() > 128) return false;
  for (unsigned char c : v) {
    if (!std::isalnum(c) && c != '-' && c != '.' && c != '_' && c != '~') return false;
  }
  return true;
}

Status ValidateOidcLoginOptions(const OidcLoginOptions& o, bool* plain_http) {
  ASSIGN_OR_RETURN(Target t, ParseEndpoint(o.issuer, "login.issuer"));
  if (plain_http != nullptr) *plain_http = t.scheme == "http";
  if (o.client_id.empty()) return InvalidArgumentError("login.client_id must be set");
  if (o.redirect_uri.empty()) return InvalidArgumentError("login redirect URI must be set");
  if (o.client_secret.empty() == (o.private_key == nullptr)) {
    return InvalidArgumentError(
        "set exactly one of login.client_secret and login.private_key_file (private_key_jwt)");
  }
  return OkStatus();
}

Result<std::shared_ptr<const ClientAssertionKey>> LoadLoginPrivateKey(const std::string& path) {
  ASSIGN_OR_RETURN(std::string pem,
                   crypto::ReadSecretFile(path, "login.private_key_file", 64 * 1024));
  const std::string name = std::filesystem::path(path).filename().string();
  auto ec = crypto::EcdsaP256PrivateKey::FromPkcs8Pem(pem);
  std::optional<Result<crypto::RsaPrivateKey>> rsa;
  if (!ec.ok()) rsa.emplace(crypto::RsaPrivateKey::FromPem(pem));
  OPENSSL_cleanse(pem.data(), pem.size());
  if (ec.ok()) return std::make_shared<const ClientAssertionKey>(std::move(*ec));
  if (rsa->ok()) return std::make_shared<const ClientAssertionKey>(std::move(**rsa));
  return InvalidArgumentError("login.private_key_file " + name +
                              " is not a PEM EC P-256 (ES256) or RSA (RS256, 2048-8192 bits) "
                              "private key");
}

ClientAssertionKey::ClientAssertionKey(crypto::EcdsaP256PrivateKey ec)
    : ec_(std::make_shared<const crypto::EcdsaP256PrivateKey>(std::move(ec))) {}
ClientAssertionKey::ClientAssertionKey(crypto::RsaPrivateKey rsa)
    : rsa_(std::make_shared<const crypto::RsaPrivateKey>(std::move(rsa))) {}

std::string ClientAssertionKey::Thumbprint() const {
  if (ec_) return crypto::JwkThumbprint(ec_->public_key());
  // RFC 7638 §3.2: the required members of an RSA key, e, kty, n, in that order.
  const crypto::RsaPublicKey& pub = rsa_->public_key();
  std::string members = "{\"e\":\"" + Base64UrlEncode(std::span<const uint8_t>(pub.e())) +
                        "\",\"kty\":\"RSA\",\"n\":\"" +
                        Base64UrlEncode(std::span<const uint8_t>(pub.n())) + "\"}";
  return Base64UrlEncode(crypto::Sha256(members));
}

Result<std::string> ClientAssertionKey::Sign(std::string_view header_json,
                                             std::string_view claims_json) const {
  if (ec_) return crypto::SignJwsEs256(header_json, claims_json, *ec_);
  std::string input = Base64UrlEncode(header_json) + "." + Base64UrlEncode(claims_json);
  ASSIGN_OR_RETURN(std::vector<uint8_t> sig,
                   rsa_->SignRs256(std::span<const uint8_t>(
                       reinterpret_cast<const uint8_t*>(input.data()), input.size())));
  return input + "." + Base64UrlEncode(std::span<const uint8_t>(sig));
}

Result<std::string> MakeClientAssertion(const std::string& client_id, const std::string& audience,
                                        const ClientAssertionKey& key, const std::string& kid,
                                        int64_t now, Random& random) {
  std::array<uint8_t, 16> jti{};
  random.Fill(jti);
  json::object header{{"alg", key.alg()}, {"typ", "JWT"}};
  header["kid"] = kid.empty() ? key.Thumbprint() : kid;
  json::object claims{{"iss", client_id}, {"sub", client_id},
                      {"aud", audience},  {"jti", Base64UrlEncode(std::span<const uint8_t>(jti))},
                      {"iat", now},       {"exp", now + kClientAssertionLifetimeS}};
  return key.Sign(json::serialize(header), json::serialize(claims));
}

Result<SignedInPerson> CheckIdTokenClaims(std::string_view payload, const std::string& issuer,
                                          const std::string& client_id, const std::string& nonce,
                                          int64_t now, int64_t leeway_s) {
  boost::system::error_code ec;
  json::value v = ParseJson(payload, ec);
  if (ec || !v.is_object()) return UnauthenticatedError("ID token claims are not a JSON object");
  const json::object& o = v.as_object();
  if (Str(o, "iss") != issuer) return UnauthenticatedError("ID token iss is not the login issuer");
  std::vector<std::string> aud;
  if (auto it = o.find("aud"); it != o.end()) {
    if (it->value().is_string()) {
      aud.emplace_back(it->value().as_string());
    } else if (it->value().is_array()) {
      for (const auto& a : it->value().as_array()) {
        if (a.is_string()) aud.emplace_back(a.as_string());
      }
    }
  }
  if (std::find(aud.begin(), aud.end(), client_id) == aud.end()) {
    return UnauthenticatedError("ID token aud does not name Custody's client_id");
  }
  if (std::string azp = Str(o, "azp"); (!azp.empty() || aud.size() > 1) && azp != client_id) {
    return UnauthenticatedError("ID token azp is not Custody's client_id");
  }
  auto number = [&](std::string_view k) -> std::optional<int64_t> {
    auto it = o.find(k);
    if (it == o.end()) return std::nullopt;
    if (it->value().is_int64()) return it->value().as_int64();
    if (it->value().is_uint64()) return static_cast<int64_t>(it->value().as_uint64());
    if (it->value().is_double()) return static_cast<int64_t>(it->value().as_double());
    return std::nullopt;
  };
  auto exp = number("exp");
  if (!exp) return UnauthenticatedError("ID token has no exp");
  if (*exp + leeway_s <= now) return UnauthenticatedError("ID token expired");
  auto iat = number("iat");
  if (!iat) return UnauthenticatedError("ID token has no iat");
  if (*iat - leeway_s > now) return UnauthenticatedError("ID token was issued in the future");
  if (nonce.empty() || Str(o, "nonce") != nonce) {
    return UnauthenticatedError("ID token nonce does not match this sign-in");
  }
  SignedInPerson p;
  p.subject = Str(o, "sub");
  if (p.subject.empty()) return UnauthenticatedError("ID token has no sub");
  p.issuer = issuer;
  p.name = Str(o, "name");
  p.email = Str(o, "email");
  if (auto it = o.find("groups"); it != o.end() && !it->value().is_null()) {
    if (!it->value().is_array() || it->value().as_array().size() > kMaxIdpGroups)
      return UnauthenticatedError("ID token groups is not an array of at most " +
                                  std::to_string(kMaxIdpGroups) + " strings");
    for (const auto& g : it->value().as_array()) {
      if (!g.is_string() || g.as_string().empty() || g.as_string().size() > 256)
        return UnauthenticatedError("ID token groups holds something other than a group name");
      p.groups.emplace_back(g.as_string());
    }
  }
  return p;
}

struct OidcLogin::Discovered {
  std::string issuer, authorization_endpoint, token_endpoint, jwks_uri;
  std::vector<std::string> token_endpoint_auth_methods;  // as the provider lists them
  crypto::Jwks jwks;
};

OidcLogin::OidcLogin(OidcLoginOptions options, const Clock& clock)
    : options_(std::move(options)), clock_(clock) {}
OidcLogin::~OidcLogin() = default;

namespace {

Result<http::ClientResponse> Fetch(const std::string& url, const std::string& what,
                                   const OidcLoginOptions& o, http::ClientRequest req) {
  ASSIGN_OR_RETURN(Target t, ParseEndpoint(url, what));
  http::ClientOptions co;
  co.tls = t.scheme == "https";
  co.ca_file = o.ca_file;
  co.timeout = o.timeout;
  co.max_response_bytes = 1024 * 1024;
  http::BlockingHttpClient client(t.host, t.port, co);
  req.target = t.target;
  req.headers.Set("accept", "application/json");
  auto r = client.Send(std::move(req));
  if (!r.ok()) return UnavailableError("login provider: " + what + ": " + r.status().message());
  return r;
}

Result<json::object> FetchJson(const std::string& url, const std::string& what,
                               const OidcLoginOptions& o) {
  http::ClientRequest req;
  req.method = "GET";
  ASSIGN_OR_RETURN(http::ClientResponse r, Fetch(url, what, o, std::move(req)));
  if (r.status != 200) {
    return UnavailableError("login provider: " + what + " answered HTTP " +
                            std::to_string(r.status));
  }
  boost::system::error_code ec;
  json::value v = ParseJson(r.body, ec);
  if (ec || !v.is_object()) {
    return UnavailableError("login provider: " + what + " is not a JSON object");
  }
  return std::move(v.as_object());
}

}  // namespace

Result<std::shared_ptr<const OidcLogin::Discovered>> OidcLogin::Discover(bool refresh_keys) {
  std::shared_ptr<const Discovered> have;
  {
    MutexLock lock(mu_);
    have = discovered_;
  }
  if (have && !refresh_keys) return have;
  auto d = std::make_shared<Discovered>();
  if (have) {
    *d = *have;
  } else {
    std::string base = options_.issuer;
    while (!base.empty() && base.back() == '/') base.pop_back();
    ASSIGN_OR_RETURN(json::object m, FetchJson(base + "/.well-known/openid-configuration",
                                               "provider metadata", options_));
    d->issuer = Str(m, "issuer");
    if (d->issuer != options_.issuer) {
      return UnavailableError("login provider metadata names issuer \"" + d->issuer +
                              "\", not login.issuer \"" + options_.issuer + "\"");
    }
    d->authorization_endpoint = Str(m, "authorization_endpoint");
    d->token_endpoint = Str(m, "token_endpoint");
    d->jwks_uri = Str(m, "jwks_uri");
    if (auto it = m.find("token_endpoint_auth_methods_supported");
        it != m.end() && it->value().is_array()) {
      for (const auto& a : it->value().as_array()) {
        if (a.is_string()) d->token_endpoint_auth_methods.emplace_back(a.as_string());
      }
    } else {
      // OpenID Connect Discovery 1.0 §3: "If omitted, the default is client_secret_basic".
      d->token_endpoint_auth_methods.emplace_back("client_secret_basic");
    }
    const char* method = options_.private_key ? "private_key_jwt" : "client_secret_basic";
    if (std::find(d->token_endpoint_auth_methods.begin(), d->token_endpoint_auth_methods.end(),
                  method) == d->token_endpoint_auth_methods.end()) {
      return FailedPreconditionError(
          std::string("login provider does not support ") + method +
          " at its token endpoint (token_endpoint_auth_methods_supported)" +
          (options_.private_key ? "; use login.client_secret" : "; use login.private_key_file"));
    }
    // A provider that lists the assertion algorithms it takes must list the key's.
    if (auto it = m.find("token_endpoint_auth_signing_alg_values_supported");
        options_.private_key && it != m.end() && it->value().is_array()) {
      const std::string alg(options_.private_key->alg());
      const auto& algs = it->value().as_array();
      if (std::none_of(algs.begin(), algs.end(), [&](const json::value& a) {
            return a.is_string() && a.as_string() == alg;
          })) {
        return FailedPreconditionError(
            "login provider does not take " + alg +
            " client assertions (token_endpoint_auth_signing_alg_values_supported); use a " +
            (alg == "ES256" ? "RSA (RS256)" : "EC P-256 (ES256)") +
            " key in login.private_key_file");
      }
    }
    for (const auto& [what, url] :
         {std::pair{"authorization_endpoint", d->authorization_endpoint},
          std::pair{"token_endpoint", d->token_endpoint}, std::pair{"jwks_uri", d->jwks_uri}}) {
      if (Status s = ParseEndpoint(url, std::string("login provider ") + what).status(); !s.ok()) {
        return UnavailableError(s.message());
      }
    }
  }
  ASSIGN_OR_RETURN(json::object keys, FetchJson(d->jwks_uri, "JWKS", options_));
  auto jwks = crypto::Jwks::Parse(json::serialize(keys));
  if (!jwks.ok()) return UnavailableError("login provider JWKS: " + jwks.status().message());
  d->jwks = std::move(*jwks);
  MutexLock lock(mu_);
  discovered_ = d;
  return std::shared_ptr<const Discovered>(d);
}

Status OidcLogin::CheckProvider() { return Discover(false).status(); }

Result<std::string> OidcLogin::AuthorizationUrl(const std::string& state, const std::string& nonce,
                                                const std::string& code_challenge) {
  ASSIGN_OR_RETURN(std::shared_ptr<const Discovered> d, Discover(false));
  std::string url = d->authorization_endpoint;
  url += url.find('?') == std::string::npos ? '?' : '&';
  url += "response_type=code&client_id=" + FormEncode(options_.client_id) +
         "&redirect_uri=" + FormEncode(options_.redirect_uri) +
         "&scope=" + FormEncode(options_.scopes) + "&state=" + FormEncode(state) +
         "&nonce=" + FormEncode(nonce) + "&code_challenge=" + FormEncode(code_challenge) +
         "&code_challenge_method=S256";
  return url;
}

Result<SignedInPerson> OidcLogin::Redeem(const std::string& code, const std::string& verifier,
                                         const std::string& nonce) {
  ASSIGN_OR_RETURN(std::shared_ptr<const Discovered> d, Discover(false));
  http::ClientRequest req;
  req.method = "POST";
  req.headers.Set("content-type", "application/x-www-form-urlencoded");
  req.body = "grant_type=authorization_code&code=" + FormEncode(code) +
             "&redirect_uri=" + FormEncode(options_.redirect_uri) +
             "&code_verifier=" + FormEncode(verifier);
  if (options_.private_key) {
    // private_key_jwt. aud is the issuer identifier: what OIDC Core's 2025 errata and
    // draft-ietf-oauth-rfc7523bis ask for (an assertion aimed at one provider cannot be replayed
    // at another's token endpoint), and what providers accept alongside the token endpoint URL.
    int64_t now =
        std::chrono::duration_cast<std::chrono::seconds>(clock_.Now().time_since_epoch()).count();
    ASSIGN_OR_RETURN(std::string assertion,
                     MakeClientAssertion(options_.client_id, d->issuer, *options_.private_key,
                                         options_.private_key_kid, now, random_));
    req.body += "&client_id=" + FormEncode(options_.client_id) + "&client_assertion_type=" +
                FormEncode("urn:ietf:params:oauth:client-assertion-type:jwt-bearer") +
                "&client_assertion=" + FormEncode(assertion);
  } else {
    // client_secret_basic (RFC 6749 §2.3.1): both parts form-encoded first.
    req.headers.Set("authorization", "Basic " + Base64Encode(FormEncode(options_.client_id) + ":" +
                                                             FormEncode(options_.client_secret)));
  }
  ASSIGN_OR_RETURN(http::ClientResponse r,
                   Fetch(d->token_endpoint, "token endpoint", options_, std::move(req)));
  boost::system::error_code ec;
  json::value v = ParseJson(r.body, ec);
  if (r.status != 200) {
    std::string error = !ec && v.is_object() ? Str(v.as_object(), "error") : "";
    return UnauthenticatedError("login provider refused the code (HTTP " +
                                std::to_string(r.status) + (error.empty() ? "" : ", " + error) +
                                ")");
  }
  if (ec || !v.is_object()) return UnavailableError("login provider token answer is not JSON");
  std::string id_token = Str(v.as_object(), "id_token");
  if (id_token.empty()) return UnauthenticatedError("login provider answered without an ID token");
  auto jws = crypto::VerifyJwsWithJwks(id_token, d->jwks, crypto::kTrustedIssuerAlgorithms);
  if (!jws.ok() && jws.status().message().find("kid") != std::string::npos) {
    // A key the provider rotated in since the JWKS was fetched: fetch it once more.
    ASSIGN_OR_RETURN(d, Discover(true));
    jws = crypto::VerifyJwsWithJwks(id_token, d->jwks, crypto::kTrustedIssuerAlgorithms);
  }
  if (!jws.ok()) return UnauthenticatedError("ID token: " + jws.status().message());
  int64_t now =
      std::chrono::duration_cast<std::chrono::seconds>(clock_.Now().time_since_epoch()).count();
  return CheckIdTokenClaims(jws->payload, d->issuer, options_.client_id, nonce, now,
                            options_.leeway_s);
}

}  // namespace custody::identity
