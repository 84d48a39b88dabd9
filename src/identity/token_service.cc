#include "identity/token_service.h"

#include <openssl/crypto.h>

#include <algorithm>
#include <boost/json.hpp>
#include <limits>

#include "common/encoding.h"
#include "common/json_array.h"
#include "common/json_parse.h"
#include "crypto/sha256.h"
#include "events/identity_events.h"
#include "identity/spiffe_id.h"

namespace custody::identity {
namespace {

namespace json = boost::json;

// Registered claims of a verified JWT, read strictly.
struct Claims {
  json::object raw;
  std::string iss, sub, jti;
  std::vector<std::string> aud;
  std::optional<int64_t> exp, nbf, iat;

  std::string Str(std::string_view name) const {
    auto it = raw.find(name);
    return it != raw.end() && it->value().is_string() ? std::string(it->value().as_string()) : "";
  }
};

std::optional<int64_t> NumericDate(const json::object& o, std::string_view name, bool* bad) {
  auto it = o.find(name);
  if (it == o.end()) return std::nullopt;
  const json::value& v = it->value();
  if (v.is_int64()) return v.as_int64();
  if (v.is_uint64() && v.as_uint64() < (uint64_t{1} << 62))
    return static_cast<int64_t>(v.as_uint64());
  if (v.is_double()) return static_cast<int64_t>(v.as_double());
  *bad = true;
  return std::nullopt;
}

Result<Claims> ParseClaims(const std::string& payload) {
  boost::system::error_code ec;
  json::value v = ParseJson(payload, ec);
  if (ec || !v.is_object()) return UnauthenticatedError("token claims are not a JSON object");
  Claims c;
  c.raw = std::move(v.as_object());
  c.iss = c.Str("iss");
  c.sub = c.Str("sub");
  c.jti = c.Str("jti");
  if (auto it = c.raw.find("aud"); it != c.raw.end()) {
    if (it->value().is_string()) {
      c.aud.emplace_back(it->value().as_string());
    } else if (it->value().is_array()) {
      for (const auto& a : it->value().as_array()) {
        if (!a.is_string()) return UnauthenticatedError("token aud must hold strings");
        c.aud.emplace_back(a.as_string());
      }
    } else {
      return UnauthenticatedError("token aud must be a string or an array");
    }
  }
  bool bad = false;
  c.exp = NumericDate(c.raw, "exp", &bad);
  c.nbf = NumericDate(c.raw, "nbf", &bad);
  c.iat = NumericDate(c.raw, "iat", &bad);
  if (bad) return UnauthenticatedError("token time claims must be numbers");
  return c;
}

// exp required and not past; nbf (if present) not in the future; both with leeway.
// Claims: Claims, or a cached subset with the same exp/nbf/aud members.
template <typename C>
Status CheckTimes(const C& c, int64_t now, int64_t leeway) {
  if (!c.exp) return UnauthenticatedError("token has no exp");
  if (*c.exp + leeway <= now) return UnauthenticatedError("token expired");
  if (c.nbf && *c.nbf - leeway > now) return UnauthenticatedError("token is not valid yet (nbf)");
  return OkStatus();
}

template <typename C>
bool HasAudience(const C& c, std::string_view aud) {
  return std::find(c.aud.begin(), c.aud.end(), aud) != c.aud.end();
}

// The header of a verified JWS may carry only alg, kid and typ (JWT-SVID §2).
Status CheckSvidHeader(const std::string& header_json, const std::string& typ) {
  json::value v = ParseJson(header_json);
  for (const auto& kv : v.as_object()) {
    if (kv.key() != "alg" && kv.key() != "kid" && kv.key() != "typ") {
      return UnauthenticatedError("JWT-SVID header may not carry \"" + std::string(kv.key()) +
                                  "\"");
    }
  }
  if (!typ.empty() && typ != "JWT" && typ != "JOSE") {
    return UnauthenticatedError("JWT-SVID typ must be JWT or JOSE");
  }
  return OkStatus();
}

std::string HexSha256(std::string_view s) { return HexEncode(crypto::Sha256(s)); }

bool ConstantTimeEquals(const std::string& a, const std::string& b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

// Extracts the agent name from spiffe://<td>/agent/<name>/instance/<id>.
std::string AgentOfInstance(const SpiffeId& id, std::string_view trust_domain) {
  if (id.trust_domain != trust_domain) return "";
  constexpr std::string_view kPrefix = "/agent/";
  std::string_view p = id.path;
  if (p.substr(0, kPrefix.size()) != kPrefix) return "";
  p.remove_prefix(kPrefix.size());
  size_t slash = p.find('/');
  if (slash == std::string_view::npos) return "";
  std::string_view rest = p.substr(slash);
  if (rest.substr(0, 10) != "/instance/" || rest.size() <= 10) return "";
  if (rest.find('/', 10) != std::string_view::npos) return "";
  return std::string(p.substr(0, slash));
}

// The payload of a JWS, unverified: only to pick which issuer's keys to verify it with.
std::string UnverifiedIssuer(const std::string& token) {
  size_t d1 = token.find('.');
  size_t d2 = d1 == std::string::npos ? d1 : token.find('.', d1 + 1);
  if (d2 == std::string::npos) return "";
  auto payload = Base64UrlDecode(std::string_view(token).substr(d1 + 1, d2 - d1 - 1));
  if (!payload.ok()) return "";
  boost::system::error_code ec;
  json::value v = ParseJson(AsString(*payload), ec);
  if (ec || !v.is_object()) return "";
  auto it = v.as_object().find("iss");
  return it != v.as_object().end() && it->value().is_string() ? std::string(it->value().as_string())
                                                              : "";
}

}  // namespace

TokenService::TokenService(store::IdentityStore& store, const Clock& clock, Random& random,
                           ErrorReporter& errors, IdentityEventSink sink,
                           TokenServiceOptions options)
    : store_(store),
      clock_(clock),
      random_(random),
      errors_(errors),
      ids_(clock, random),
      sink_(std::move(sink)),
      options_(std::move(options)),
      access_cache_(options_.verify_cache_entries),
      svid_cache_(options_.verify_cache_entries) {
  if (options_.token_endpoint.empty()) options_.token_endpoint = options_.issuer + "/oauth2/token";
}

Result<std::unique_ptr<TokenService>> TokenService::Create(store::IdentityStore& store,
                                                           const Clock& clock, Random& random,
                                                           ErrorReporter& errors,
                                                           IdentityEventSink sink,
                                                           TokenServiceOptions options) {
  RETURN_IF_ERROR(ValidateTrustDomain(options.trust_domain));
  if (options.issuer.empty()) return InvalidArgumentError("token issuer must be set");
  std::unique_ptr<TokenService> s(
      new TokenService(store, clock, random, errors, std::move(sink), std::move(options)));
  RETURN_IF_ERROR(s->LoadOrCreateKeys());
  return s;
}

int64_t TokenService::Now() const {
  return std::chrono::duration_cast<std::chrono::seconds>(clock_.Now().time_since_epoch()).count();
}

std::string TokenService::NewId() { return ids_.NextString(); }

Status TokenService::Record(const std::string& event_json) {
  if (!sink_) return OkStatus();
  return sink_(event_json);
}

namespace {

// A retired key stays published until every token it signed has expired; after that it verifies
// nothing and leaves the JWKS, in the running server as on a restart.
bool Published(const SigningKeyRecord& r, int64_t now) {
  return r.retired_at == 0 || r.publish_until > now;
}

}  // namespace

Status TokenService::LoadKeys(bool create) {
  ASSIGN_OR_RETURN(std::vector<SigningKeyRecord> records, store_.ListSigningKeys());
  MutexLock lock(keys_mu_);
  int64_t now = Now();
  std::vector<SigningKey> loaded;
  bool have_current = false;
  for (const auto& r : records) {
    if (!Published(r, now)) continue;  // no live token can use it
    std::shared_ptr<const crypto::EcdsaP256PrivateKey> key;
    for (const auto& k : keys_) {
      if (k.kid == r.kid) key = k.key;  // parsed already
    }
    if (!key) {
      ASSIGN_OR_RETURN(crypto::EcdsaP256PrivateKey parsed,
                       crypto::EcdsaP256PrivateKey::FromPkcs8Pem(r.private_pem));
      key = std::make_shared<const crypto::EcdsaP256PrivateKey>(std::move(parsed));
    }
    loaded.push_back(SigningKey{r.kid, std::move(key), r});
    have_current = have_current || r.retired_at == 0;
  }
  // Retired keys first; of the current ones (several nodes may each have made one at their
  // first start), the newest signs, so every node settles on the same key.
  std::stable_sort(loaded.begin(), loaded.end(), [](const SigningKey& a, const SigningKey& b) {
    const bool ac = a.record.retired_at == 0, bc = b.record.retired_at == 0;
    if (ac != bc) return !ac;
    return ac && a.record.created_at < b.record.created_at;
  });
  keys_ = std::move(loaded);
  if (have_current || !create) return OkStatus();
  ASSIGN_OR_RETURN(crypto::EcdsaP256PrivateKey key, crypto::EcdsaP256PrivateKey::Generate());
  SigningKeyRecord r;
  r.kid = crypto::JwkThumbprint(key.public_key());
  ASSIGN_OR_RETURN(r.private_pem, key.ToPkcs8Pem());
  r.created_at = now;
  RETURN_IF_ERROR(store_.PutSigningKey(r));
  keys_.push_back(
      SigningKey{r.kid, std::make_shared<const crypto::EcdsaP256PrivateKey>(std::move(key)), r});
  return OkStatus();
}

Status TokenService::RefreshKeys() {
  keys_refreshed_ms_.store(UnixMillis(clock_.Now()), std::memory_order_relaxed);
  return LoadKeys(/*create=*/false);
}

Result<std::string> TokenService::RotateSigningKey(const std::string& by) {
  int64_t now = Now();
  // Tokens live at most 24 h (ValidateAgent caps lifetimes), so retired keys are published that
  // long. The new key is stored first: if anything fails, the old key goes on signing.
  const int64_t publish_until = now + 86400 + options_.leeway_s;
  ASSIGN_OR_RETURN(crypto::EcdsaP256PrivateKey key, crypto::EcdsaP256PrivateKey::Generate());
  SigningKeyRecord fresh;
  fresh.kid = crypto::JwkThumbprint(key.public_key());
  ASSIGN_OR_RETURN(fresh.private_pem, key.ToPkcs8Pem());
  fresh.created_at = now;
  std::vector<std::string> retired;
  {
    MutexLock lock(keys_mu_);
    RETURN_IF_ERROR(store_.PutSigningKey(fresh));
    for (auto& k : keys_) {
      if (k.record.retired_at != 0) continue;
      SigningKeyRecord r = k.record;
      r.retired_at = now;
      r.publish_until = publish_until;
      RETURN_IF_ERROR(store_.PutSigningKey(r));
      k.record = std::move(r);
      retired.emplace_back(k.kid);
    }
    std::erase_if(keys_, [&](const SigningKey& k) { return !Published(k.record, now); });
    keys_.push_back(SigningKey{
        fresh.kid, std::make_shared<const crypto::EcdsaP256PrivateKey>(std::move(key)), fresh});
  }
  if (options_.on_keys_rotated) options_.on_keys_rotated();
  events::KeyRotate e;
  e.event_id = NewId();
  e.time = FormatRfc3339Millis(clock_.Now());
  e.requested_by = by;
  e.kid = fresh.kid;
  e.retired_kids = std::move(retired);
  e.publish_until = publish_until;
  RETURN_IF_ERROR(Record(events::Build(e)));
  return fresh.kid;
}

std::string TokenService::JwksJson() {
  int64_t now = Now();
  MutexLock lock(keys_mu_);
  crypto::Jwks set;
  for (const auto& k : keys_) {
    if (Published(k.record, now)) set.Add(k.kid, k.key->public_key());
  }
  return set.ToJson();
}

std::shared_ptr<const crypto::EcdsaP256PrivateKey> TokenService::FindKey(std::string_view kid,
                                                                         int64_t* published_until) {
  for (int attempt = 0; attempt < 2; ++attempt) {
    {
      int64_t now = Now();
      MutexLock lock(keys_mu_);
      for (const auto& k : keys_) {
        if (k.kid != kid) continue;
        if (!Published(k.record, now)) return nullptr;
        if (published_until != nullptr) {
          *published_until = k.record.retired_at == 0 ? std::numeric_limits<int64_t>::max()
                                                      : k.record.publish_until;
        }
        return k.key;
      }
    }
    // Not loaded here. With other nodes on the store it may be another node's key: re-read the
    // keys, at most once a second (a stream of made-up kids costs one read a second).
    if (!options_.shared_store || attempt > 0) break;
    const int64_t now_ms = UnixMillis(clock_.Now());
    int64_t last = keys_refreshed_ms_.load(std::memory_order_relaxed);
    if (now_ms - last < 1000 ||
        !keys_refreshed_ms_.compare_exchange_strong(last, now_ms, std::memory_order_relaxed)) {
      break;
    }
    if (Status st = LoadKeys(/*create=*/false); !st.ok()) {
      errors_.Report("identity.key_refresh", st);
      break;
    }
  }
  return nullptr;
}

Result<crypto::VerifiedJws> TokenService::VerifyOwnJws(const std::string& token,
                                                       int64_t* published_until) {
  // `held` keeps the key alive while it is used: a rotation may drop it from keys_ meanwhile.
  std::shared_ptr<const crypto::EcdsaP256PrivateKey> held;
  return crypto::VerifyJwsEs256(token, [&](std::string_view kid) {
    held = FindKey(kid, published_until);
    return held ? &held->public_key() : nullptr;
  });
}

Result<std::string> TokenService::Sign(const std::string& typ, const std::string& claims_json,
                                       int64_t /*expires_at*/) {
  std::shared_ptr<const crypto::EcdsaP256PrivateKey> key;
  std::string kid;
  {
    MutexLock lock(keys_mu_);
    key = keys_.back().key;
    kid = keys_.back().kid;
  }
  json::object header{{"alg", "ES256"}, {"kid", kid}, {"typ", typ}};
  return crypto::SignJwsEs256(json::serialize(header), claims_json, *key);
}

// ---------------------------------------------------------------------------------------------
// Registry

Result<TokenService::Registered> TokenService::RegisterAgent(Agent agent, bool generate_secret,
                                                             const std::string& by) {
  Registered out;
  if (generate_secret) {
    if (!agent.client_jwk.empty()) {
      return InvalidArgumentError("give either a client JWK or ask for a client secret, not both");
    }
    std::array<uint8_t, 32> raw{};
    random_.Fill(raw);
    out.client_secret = "cs_" + Base64UrlEncode(raw);
    agent.client_secret_sha256 = HexSha256(out.client_secret);
  }
  RETURN_IF_ERROR(ValidateAgent(agent));
  ASSIGN_OR_RETURN(agent.grants, ParseScopes(JoinScopes(agent.grants)));  // sorted, unique
  agent.disabled = false;
  agent.created_at = agent.updated_at = FormatRfc3339Millis(clock_.Now());
  RETURN_IF_ERROR(store_.CreateAgent(agent));
  events::AgentRegister e;
  e.event_id = NewId();
  e.time = agent.created_at;
  e.requested_by = by;
  e.name = agent.name;
  e.environment = std::string(EnvironmentName(agent.environment));
  e.business_owner = agent.business_owner;
  e.technical_owner = agent.technical_owner;
  e.sponsor = agent.sponsor;
  e.revocation_contact = agent.revocation_contact;
  e.grants = agent.grants;
  e.permissions = agent.permissions;
  e.max_delegation_depth = agent.max_delegation_depth;
  e.max_token_lifetime_s = agent.max_token_lifetime_s;
  e.credential = agent.client_jwk.empty() ? "client_secret" : "private_key_jwt";
  RETURN_IF_ERROR(Record(events::Build(e)));
  out.agent = std::move(agent);
  return out;
}

Result<Agent> TokenService::UpdateAgent(Agent agent, const std::string& by) {
  ASSIGN_OR_RETURN(Agent current, store_.GetAgent(agent.name));
  if (agent.client_jwk.empty() && agent.client_secret_sha256.empty()) {
    agent.client_jwk = current.client_jwk;
    agent.client_secret_sha256 = current.client_secret_sha256;
  }
  agent.created_at = current.created_at;
  agent.disabled = current.disabled;
  RETURN_IF_ERROR(ValidateAgent(agent));  // a promotion to prod is checked here
  ASSIGN_OR_RETURN(agent.grants, ParseScopes(JoinScopes(agent.grants)));
  agent.updated_at = FormatRfc3339Millis(clock_.Now());
  RETURN_IF_ERROR(store_.UpdateAgent(agent));
  RETURN_IF_ERROR(Record(events::Build(
      events::AgentUpdate{.event_id = NewId(),
                          .time = agent.updated_at,
                          .requested_by = by,
                          .name = agent.name,
                          .environment = std::string(EnvironmentName(agent.environment)),
                          .grants = agent.grants})));
  return agent;
}

Result<std::vector<std::string>> TokenService::DisableAgent(const std::string& name,
                                                            const std::string& by) {
  ASSIGN_OR_RETURN(Agent agent, store_.GetAgent(name));
  agent.disabled = true;
  agent.updated_at = FormatRfc3339Millis(clock_.Now());
  RETURN_IF_ERROR(store_.UpdateAgent(agent));
  ASSIGN_OR_RETURN(std::vector<std::string> revoked,
                   store_.RevokeAgentSessions(name, "agent disabled", Now()));
  NotifyRevoked(revoked);
  RETURN_IF_ERROR(Record(events::Build(events::Revocation{.event_id = NewId(),
                                                          .time = agent.updated_at,
                                                          .requested_by = by,
                                                          .of = events::Revocation::Of::kAgent,
                                                          .subject = name,
                                                          .reason = "agent disabled",
                                                          .revoked_sessions = revoked})));
  return revoked;
}

// ---------------------------------------------------------------------------------------------
// Client authentication (RFC 6749 §2.3, RFC 7523 §2.2 and §3)

OAuthResult<Agent> TokenService::AuthenticateClient(const std::string& client_id,
                                                    const std::string& assertion_type,
                                                    const std::string& assertion,
                                                    const std::string& secret) {
  std::optional<AssertionJti> jti;
  auto client = VerifyClient(client_id, assertion_type, assertion, secret, &jti);
  if (!client.ok() || !jti) return client;
  if (Status fresh = store_.UseAssertionJti(jti->key, jti->exp); !fresh.ok()) {
    return OAuthResult<Agent>{std::nullopt, JtiNotRecorded(fresh)};
  }
  return client;
}

OAuthError TokenService::JtiNotRecorded(const Status& recorded) {
  if (recorded.code() == StatusCode::kAlreadyExists) {
    return OAuthError{"invalid_client", "client assertion was already used", 401};
  }
  errors_.Report("identity.assertion_jti", recorded);
  return OAuthError{"server_error", "cannot record client assertion", 500};
}

void TokenService::MaybePurgeAssertionJtis(int64_t now) {
  // An assertion whose exp + leeway has passed is refused as expired (CheckTimes), so its jti
  // is no longer needed to refuse its replay; another minute's margin covers nodes whose clocks
  // differ a little.
  constexpr int64_t kPurgeIntervalS = 60;
  int64_t last = jtis_purged_s_.load(std::memory_order_relaxed);
  if (now - last < kPurgeIntervalS) return;
  if (!jtis_purged_s_.compare_exchange_strong(last, now)) return;  // another thread purges
  if (Status st = store_.PurgeAssertionJtis(now - options_.leeway_s - kPurgeIntervalS); !st.ok()) {
    errors_.Report("identity.assertion_jti_purge", st);
  }
}

OAuthResult<Agent> TokenService::VerifyClient(const std::string& client_id,
                                              const std::string& assertion_type,
                                              const std::string& assertion,
                                              const std::string& secret,
                                              std::optional<AssertionJti>* jti) {
  using R = OAuthResult<Agent>;
  if (client_id.empty()) return R::Fail("invalid_client", "client_id is required", 401);
  auto agent = store_.GetAgent(client_id);
  if (!agent.ok()) {
    // A store failure is not the client's fault, but the answer stays what it was.
    if (agent.status().code() != StatusCode::kNotFound) {
      errors_.Report("identity.client_lookup", agent.status());
    }
    return R::Fail("invalid_client", "unknown client", 401);
  }
  if (agent->disabled) return R::Fail("invalid_client", "client is disabled", 401);
  int64_t now = Now();

  if (!assertion.empty()) {
    if (assertion_type != kClientAssertionTypeJwtBearer) {
      return R::Fail("invalid_client", "client_assertion_type must be jwt-bearer", 401);
    }
    if (agent->client_jwk.empty()) {
      return R::Fail("invalid_client", "client has no registered public key", 401);
    }
    std::string registered_kid;
    auto key = crypto::ParseEcPublicJwk(agent->client_jwk, &registered_kid);
    if (!key.ok()) {
      errors_.Report("identity.client_key", key.status());  // it was validated at registration
      return R::Fail("invalid_client", "registered client key is unusable", 401);
    }
    auto jws = crypto::VerifyJwsEs256(assertion, [&](std::string_view kid) {
      return kid.empty() || registered_kid.empty() || kid == registered_kid ? &*key : nullptr;
    });
    if (!jws.ok())
      return R::Fail("invalid_client", "client assertion: " + jws.status().message(), 401);
    auto claims = ParseClaims(jws->payload);
    if (!claims.ok()) return R::Fail("invalid_client", claims.status().message(), 401);
    if (claims->iss != client_id || claims->sub != client_id) {
      return R::Fail("invalid_client", "client assertion iss and sub must be the client_id", 401);
    }
    if (!HasAudience(*claims, options_.token_endpoint) && !HasAudience(*claims, options_.issuer)) {
      return R::Fail("invalid_client", "client assertion aud must be the token endpoint", 401);
    }
    if (Status t = CheckTimes(*claims, now, options_.leeway_s); !t.ok()) {
      return R::Fail("invalid_client", "client assertion: " + t.message(), 401);
    }
    if (*claims->exp - now > options_.max_assertion_lifetime_s) {
      return R::Fail("invalid_client", "client assertion lifetime is too long", 401);
    }
    if (claims->jti.empty()) return R::Fail("invalid_client", "client assertion has no jti", 401);
    MaybePurgeAssertionJtis(now);
    *jti = AssertionJti{client_id + "/" + claims->jti, *claims->exp};
  } else if (!secret.empty()) {
    if (agent->client_secret_sha256.empty() ||
        !ConstantTimeEquals(HexSha256(secret), agent->client_secret_sha256)) {
      return R::Fail("invalid_client", "client authentication failed", 401);
    }
  } else {
    return R::Fail("invalid_client", "client authentication is required", 401);
  }
  R r;
  r.value = std::move(*agent);
  return r;
}

// ---------------------------------------------------------------------------------------------
// JWT-SVID

OAuthResult<IssuedToken> TokenService::IssueSvid(const Agent& client, const std::string& audience,
                                                 int64_t requested_lifetime_s) {
  auto issue = PrepareSvid(client, audience, requested_lifetime_s);
  if (!issue.ok()) return OAuthResult<IssuedToken>{std::nullopt, issue.error};
  Status recorded = Record(issue.value->event);
  return FinishIssue(std::move(*issue.value), recorded);
}

OAuthResult<TokenService::Issue> TokenService::PrepareSvid(const Agent& client,
                                                           const std::string& audience,
                                                           int64_t requested_lifetime_s) {
  using R = OAuthResult<Issue>;
  if (audience.empty()) return R::Fail("invalid_request", "audience is required (JWT-SVID aud)");
  if (requested_lifetime_s < 0) {
    return R::Fail("invalid_request", "requested_lifetime must be a positive number of seconds");
  }
  if (requested_lifetime_s > options_.svid_lifetime_s) {
    return R::Fail("invalid_request", "requested_lifetime " + std::to_string(requested_lifetime_s) +
                                          " s is past this server's JWT-SVID maximum of " +
                                          std::to_string(options_.svid_lifetime_s) +
                                          " s (identity.svid_lifetime_s)");
  }
  const int64_t lifetime_s =
      requested_lifetime_s > 0 ? requested_lifetime_s : options_.svid_lifetime_s;
  std::string instance = NewId();
  auto sub = AgentInstanceSpiffeId(options_.trust_domain, client.name, instance);
  if (!sub.ok()) return R::Fail("invalid_request", sub.status().message());
  int64_t now = Now();
  int64_t exp = now + lifetime_s;
  std::string jti = NewId();
  json::object claims{{"aud", json::array{json::value(audience)}},
                      {"exp", exp},
                      {"iat", now},
                      {"iss", options_.issuer},
                      {"jti", jti},
                      {"sub", *sub}};
  auto token = Sign("JWT", json::serialize(claims), exp);
  if (!token.ok()) {
    errors_.Report("identity.sign", token.status());
    return R::Fail("server_error", "cannot sign token", 500);
  }
  R r;
  r.value =
      Issue{IssuedToken{*token, "Bearer", std::string(kTokenTypeJwt), exp - now, "", jti, "", *sub},
            events::Build(events::CredentialIssue{.event_id = NewId(),
                                                  .time = FormatRfc3339Millis(clock_.Now()),
                                                  .agent = client.name,
                                                  .instance = *sub,
                                                  .jti = jti,
                                                  .exp = exp,
                                                  .audience = audience,
                                                  .requested_by = client.name}),
            exp, std::nullopt};
  return r;
}

OAuthResult<IssuedToken> TokenService::FinishIssue(Issue issue, const Status& recorded) {
  using R = OAuthResult<IssuedToken>;
  if (recorded.ok()) {
    R r;
    r.value = std::move(issue.token);
    return r;
  }
  errors_.Report("identity.event_record", recorded);
  // The token never leaves Custody. It is revoked as well, so that it would not verify even if
  // it had: an exchange's session (written before its event), a JWT-SVID's jti.
  const bool session = !issue.token.sid.empty();
  if (session) {
    auto revoked = store_.RevokeSessionTree(issue.token.sid, "issuance not recorded", Now());
    if (!revoked.ok()) errors_.Report("identity.issue_undo", revoked.status());
  } else if (Status s = store_.RevokeJti(issue.token.jti, issue.exp + options_.leeway_s); !s.ok()) {
    errors_.Report("identity.issue_undo", s);
  }
  // The ledger's reason (it may name files) stays in the report; the client learns only that
  // it may try again.
  return R::Fail("temporarily_unavailable",
                 session ? "cannot record session" : "cannot record issuance", 503);
}

Result<TokenService::SvidClaims> TokenService::VerifySvidSignature(const std::string& token) {
  int64_t published_until = 0;
  ASSIGN_OR_RETURN(crypto::VerifiedJws jws, VerifyOwnJws(token, &published_until));
  RETURN_IF_ERROR(CheckSvidHeader(jws.header_json, jws.typ));
  ASSIGN_OR_RETURN(Claims c, ParseClaims(jws.payload));
  if (c.iss != options_.issuer) return UnauthenticatedError("JWT-SVID was not issued by Custody");
  auto id = ParseSpiffeId(c.sub);
  if (!id.ok())
    return UnauthenticatedError("JWT-SVID sub is not a SPIFFE ID: " + id.status().message());
  if (id->trust_domain != options_.trust_domain) {
    return UnauthenticatedError("JWT-SVID is for another trust domain");
  }
  if (c.aud.empty()) return UnauthenticatedError("JWT-SVID has no aud");
  if (!c.exp) return UnauthenticatedError("token has no exp");
  return SvidClaims{std::move(c.sub), std::move(c.jti), std::move(c.aud), c.exp, c.nbf,
                    published_until};
}

Result<std::string> TokenService::VerifySvid(const std::string& token,
                                             const std::string& audience) {
  int64_t now = Now();
  // Signature and claims, possibly from the verified-token cache; audience, times and
  // revocation are checked on every call.
  ASSIGN_OR_RETURN(SvidClaims c,
                   svid_cache_.GetOrVerify(
                       token, now, [this](const std::string& t) { return VerifySvidSignature(t); },
                       [&](const SvidClaims& v) {
                         return std::min({*v.exp + options_.leeway_s, now + kVerifyCacheTtlS,
                                          v.key_published_until});
                       }));
  if (!HasAudience(c, audience))
    return UnauthenticatedError("JWT-SVID aud does not include " + audience);
  RETURN_IF_ERROR(CheckTimes(c, now, options_.leeway_s));
  if (!c.jti.empty()) {
    ASSIGN_OR_RETURN(bool revoked, store_.IsJtiRevoked(c.jti));
    if (revoked) return UnauthenticatedError("credential revoked");
  }
  return std::move(c.sub);
}

// ---------------------------------------------------------------------------------------------
// Access tokens (RFC 9068) and token exchange (RFC 8693)

Result<TokenService::AccessClaims> TokenService::VerifyAccessSignature(const std::string& token) {
  int64_t published_until = 0;
  ASSIGN_OR_RETURN(crypto::VerifiedJws jws, VerifyOwnJws(token, &published_until));
  if (jws.typ != "at+jwt") return UnauthenticatedError("not an access token (typ must be at+jwt)");
  ASSIGN_OR_RETURN(Claims c, ParseClaims(jws.payload));
  if (c.iss != options_.issuer)
    return UnauthenticatedError("access token was not issued by Custody");
  if (!c.exp) return UnauthenticatedError("token has no exp");
  AccessClaims a;
  a.sid = c.Str("sid");
  a.jti = c.jti;
  if (a.sid.empty() || a.jti.empty()) {
    return UnauthenticatedError("access token has no sid or jti");
  }
  a.aud = std::move(c.aud);
  a.exp = *c.exp;
  a.nbf = c.nbf;
  a.key_published_until = published_until;
  if (auto it = c.raw.find("act"); it != c.raw.end()) a.act_json = json::serialize(it->value());
  return a;
}

Result<VerifiedAccess> TokenService::VerifyAccessToken(const std::string& token,
                                                       const std::string& audience,
                                                       VerifiedAccess* revoked) {
  return VerifyAccessToken(token, audience, revoked, nullptr);
}

Result<VerifiedAccess> TokenService::VerifyAccessToken(const std::string& token,
                                                       const std::string& audience,
                                                       VerifiedAccess* revoked,
                                                       const SessionRead& read_session) {
  int64_t now = Now();
  // Signature and claims, possibly from the verified-token cache. Everything below (times,
  // audience, session and revocation state) is checked on every call, cached or not, so
  // revocation is effective at once.
  ASSIGN_OR_RETURN(
      AccessClaims c,
      access_cache_.GetOrVerify(
          token, now, [this](const std::string& t) { return VerifyAccessSignature(t); },
          [&](const AccessClaims& v) {
            return std::min(
                {v.exp + options_.leeway_s, now + kVerifyCacheTtlS, v.key_published_until});
          }));
  if (c.exp + options_.leeway_s <= now) return UnauthenticatedError("token expired");
  if (c.nbf && *c.nbf - options_.leeway_s > now) {
    return UnauthenticatedError("token is not valid yet (nbf)");
  }
  if (!audience.empty() && std::find(c.aud.begin(), c.aud.end(), audience) == c.aud.end()) {
    return UnauthenticatedError("access token audience does not include " + audience);
  }
  // The session, the jti's revocation and the agent in one read: one round trip on a store
  // across the network, on every call.
  auto read = read_session ? read_session(c.sid, c.jti, now - options_.leeway_s)
                           : store_.GetSessionForToken(c.sid, c.jti);
  if (!read.ok()) {
    if (read.status().code() != StatusCode::kNotFound) {
      errors_.Report("identity.session_lookup", read.status());
    }
    return UnauthenticatedError("unknown session");
  }
  store::SessionForToken& found = *read;
  const Session& session = found.session;
  if (session.jti != c.jti) return UnauthenticatedError("token does not belong to its session");
  if (session.revoked) {
    // Genuine, but revoked: the caller may record the refusal against the real session.
    if (revoked != nullptr) {
      revoked->session = session;
      revoked->agent = std::move(found.agent);
      revoked->jti = c.jti;
      revoked->audiences = c.aud;
      revoked->exp = c.exp;
    }
    return UnauthenticatedError("session revoked: " + session.revoke_reason);
  }
  if (session.expires_at + options_.leeway_s <= now) return UnauthenticatedError("session expired");
  if (found.jti_revoked) return UnauthenticatedError("credential revoked");
  VerifiedAccess out;
  out.session = std::move(found.session);
  out.agent = std::move(found.agent);
  out.jti = std::move(c.jti);
  out.audiences = std::move(c.aud);
  out.exp = c.exp;
  out.act_json = std::move(c.act_json);
  return out;
}

OAuthResult<IssuedToken> TokenService::Exchange(const Agent& client, const ExchangeRequest& req,
                                                ExchangeFacts* facts) {
  auto issue = PrepareExchange(client, req, facts);
  if (!issue.ok()) return OAuthResult<IssuedToken>{std::nullopt, issue.error};
  if (Status stored = store_.CreateSession(*issue.value->session); !stored.ok()) {
    return OAuthResult<IssuedToken>{std::nullopt, SessionNotStored(stored)};
  }
  Status recorded = Record(issue.value->event);
  return FinishIssue(std::move(*issue.value), recorded);
}

std::string TokenService::SessionTokenClaims(const Session& s, const std::string& audience,
                                             const std::string& client_id,
                                             const std::string& act_json) const {
  json::object claims{
      {"iss", options_.issuer},
      {"sub", s.initiator},
      {"aud", json::array{json::value(audience)}},
      {"exp", s.expires_at},
      {"iat", s.created_at},
      {"nbf", s.created_at},
      {"jti", s.jti},
      {"client_id", client_id},
      {"scope", JoinScopes(s.scopes)},
      {"sid", s.sid},
      {"txn", s.txn},
      {"act", ParseJson(act_json)},
      {"initiator_verification",
       s.verification == InitiatorVerification::kVerified ? "verified" : "asserted"}};
  if (!s.objective_digest.empty()) claims["objective"] = "sha256:" + s.objective_digest;
  return json::serialize(claims);
}

OAuthError TokenService::SessionNotStored(const Status& stored) {
  // Refused by the store: the parent was revoked, or the agent disabled, after the exchange
  // had verified them (store::IdentityStore::CreateSession).
  if (stored.code() == StatusCode::kFailedPrecondition) {
    return OAuthError{"invalid_grant", stored.message(), 400};
  }
  errors_.Report("identity.session_store", stored);
  return OAuthError{"server_error", "cannot store session", 500};
}

OAuthResult<TokenService::Issue> TokenService::PrepareExchange(const Agent& client,
                                                               const ExchangeRequest& req,
                                                               ExchangeFacts* facts) {
  using R = OAuthResult<Issue>;
  int64_t now = Now();
  if (req.audience.empty()) return R::Fail("invalid_request", "audience is required");
  if (req.actor_token.empty() || req.actor_token_type != kTokenTypeJwt) {
    return R::Fail("invalid_request",
                   "actor_token (the agent's JWT-SVID, type urn:ietf:params:oauth:token-type:jwt) "
                   "is required");
  }
  // The actor: a JWT-SVID of the authenticated client's own agent.
  auto actor = VerifySvid(req.actor_token, options_.issuer);
  if (!actor.ok()) return R::Fail("invalid_grant", "actor_token: " + actor.status().message());
  auto actor_id = ParseSpiffeId(*actor);
  if (!actor_id.ok() || AgentOfInstance(*actor_id, options_.trust_domain) != client.name) {
    return R::Fail("invalid_grant", "actor_token belongs to another agent than the client");
  }
  if (facts != nullptr) facts->instance = *actor;

  Session s;
  s.agent = client.name;
  s.instance = *actor;
  std::optional<VerifiedAccess> parent;
  if (req.subject_token.empty()) return R::Fail("invalid_request", "subject_token is required");
  if (req.subject_token_type == kTokenTypeIdToken) {
    std::string iss = UnverifiedIssuer(req.subject_token);
    auto trusted = std::find_if(options_.trusted_issuers.begin(), options_.trusted_issuers.end(),
                                [&](const TrustedIssuer& t) { return t.issuer == iss; });
    if (iss.empty() || trusted == options_.trusted_issuers.end()) {
      return R::Fail("invalid_grant", "ID token issuer is not trusted");
    }
    // ES256 or RS256 (most providers sign with RS256), the key's type matching the alg.
    auto jws = crypto::VerifyJwsWithJwks(req.subject_token, trusted->jwks,
                                         crypto::kTrustedIssuerAlgorithms);
    if (!jws.ok()) return R::Fail("invalid_grant", "ID token: " + jws.status().message());
    auto c = ParseClaims(jws->payload);
    if (!c.ok()) return R::Fail("invalid_grant", "ID token: " + c.status().message());
    if (c->iss != trusted->issuer || !HasAudience(*c, trusted->audience)) {
      return R::Fail("invalid_grant", "ID token iss/aud do not match the trusted issuer");
    }
    if (Status t = CheckTimes(*c, now, options_.leeway_s); !t.ok()) {
      return R::Fail("invalid_grant", "ID token: " + t.message());
    }
    if (c->sub.empty()) return R::Fail("invalid_grant", "ID token has no sub");
    s.initiator = c->sub;
    s.initiator_issuer = c->iss;
    s.verification = InitiatorVerification::kVerified;
  } else if (req.subject_token_type == kTokenTypeAccessToken ||
             req.subject_token_type == kTokenTypeJwt) {
    VerifiedAccess revoked;  // a genuine token of a revoked session: the refusal names it
    auto p = VerifyAccessToken(req.subject_token, "", &revoked);
    if (!p.ok()) {
      if (facts != nullptr) facts->session = revoked.session.sid;
      return R::Fail("invalid_grant", "subject_token: " + p.status().message());
    }
    parent = std::move(*p);
    if (facts != nullptr) facts->session = parent->session.sid;
    s.initiator = parent->session.initiator;
    s.initiator_issuer = parent->session.initiator_issuer;
    s.verification = parent->session.verification;
    s.asserted_by = parent->session.asserted_by;
  } else if (req.subject_token_type == kTokenTypeInitiatorAssertion) {
    if (!client.HasPermission(kAssertInitiator)) {
      return R::Fail("invalid_grant", "client may not assert initiators (needs assert_initiator)");
    }
    boost::system::error_code ec;
    json::value v = ParseJson(req.subject_token, ec);
    if (ec || !v.is_object() || !v.as_object().contains("sub") ||
        !v.as_object().at("sub").is_string() || v.as_object().at("sub").as_string().empty()) {
      return R::Fail("invalid_request", "initiator assertion must be a JSON object with a sub");
    }
    s.initiator = std::string(v.as_object().at("sub").as_string());
    if (auto it = v.as_object().find("iss"); it != v.as_object().end() && it->value().is_string()) {
      s.initiator_issuer = std::string(it->value().as_string());
    }
    s.verification = InitiatorVerification::kAsserted;
    s.asserted_by = client.name;
  } else {
    return R::Fail("invalid_request", "unsupported subject_token_type");
  }

  // Depth: a child sits one below its parent. Every agent on the chain bounds how deep the tree
  // below it may go, so the limit carried down is the smallest seen so far.
  s.depth = parent ? parent->session.depth + 1 : 0;
  s.max_depth = parent ? std::min(parent->session.max_depth, client.max_delegation_depth)
                       : client.max_delegation_depth;
  if (parent && s.depth > parent->session.max_depth) {
    return R::Fail("invalid_grant", "delegation depth limit (" +
                                        std::to_string(parent->session.max_depth) +
                                        ") of this session tree reached");
  }
  if (s.depth > client.max_delegation_depth) {
    return R::Fail("invalid_grant", "delegation depth limit (" +
                                        std::to_string(client.max_delegation_depth) +
                                        ") reached for agent " + client.name);
  }

  // Scope = requested ∩ grants ∩ parent's scope; asking for more than either is refused.
  ScopeSet allowed = parent ? Intersect(client.grants, parent->session.scopes) : client.grants;
  if (!req.scope.empty()) {
    auto requested = ParseScopes(req.scope);
    if (!requested.ok()) return R::Fail("invalid_scope", requested.status().message());
    for (const auto& sc : *requested) {
      if (!CoveredBy(sc, client.grants)) {
        return R::Fail("invalid_scope", "scope " + sc + " is not granted to agent " + client.name);
      }
      if (parent && !CoveredBy(sc, parent->session.scopes)) {
        return R::Fail("invalid_scope", "scope " + sc + " exceeds the parent session's scope");
      }
    }
    s.scopes = *requested;
  } else {
    s.scopes = allowed;
  }
  if (s.scopes.empty()) return R::Fail("invalid_scope", "no scope is left to delegate");

  // Lifetime: the agent's maximum, never past the parent's expiry.
  int64_t lifetime = client.max_token_lifetime_s;
  if (req.requested_lifetime_s > 0) {
    if (req.requested_lifetime_s > client.max_token_lifetime_s) {
      return R::Fail("invalid_request", "requested lifetime exceeds the agent's maximum");
    }
    lifetime = req.requested_lifetime_s;
  }
  int64_t exp = now + lifetime;
  if (parent) {
    if (req.requested_lifetime_s > 0 && exp > parent->exp) {
      return R::Fail("invalid_request", "a delegated token may not outlive its parent");
    }
    exp = std::min(exp, parent->exp);
  }

  s.sid = NewId();
  s.parent_sid = parent ? parent->session.sid : "";
  s.root_sid = parent ? parent->session.root_sid : s.sid;
  s.txn = parent ? parent->session.txn : NewId();
  s.jti = NewId();
  s.objective_digest = req.objective.empty() ? "" : HexSha256(req.objective);
  s.created_at = now;
  s.expires_at = exp;

  // act: the current actor, with the prior actors nested inside (RFC 8693 §4.1).
  json::object act{{"sub", s.instance}};
  if (parent && !parent->act_json.empty()) act["act"] = ParseJson(parent->act_json);
  auto token =
      Sign("at+jwt", SessionTokenClaims(s, req.audience, client.name, json::serialize(act)), exp);
  if (!token.ok()) {
    errors_.Report("identity.sign", token.status());
    return R::Fail("server_error", "cannot sign token", 500);
  }
  events::SessionStart e;  // a delegation when it has a parent (parent_sid is set)
  e.event_id = NewId();
  e.time = FormatRfc3339Millis(clock_.Now());
  e.agent = s.agent;
  e.instance = s.instance;
  e.jti = s.jti;
  e.initiator =
      events::Initiator{s.initiator, s.initiator_issuer,
                        s.verification == InitiatorVerification::kVerified, s.asserted_by};
  e.sid = s.sid;
  e.parent_sid = s.parent_sid;
  e.root_sid = s.root_sid;
  e.depth = s.depth;
  e.scopes = s.scopes;
  e.exp = exp;
  e.objective_digest = s.objective_digest;
  e.txn = s.txn;
  e.requested_by = client.name;

  R r;
  r.value = Issue{IssuedToken{*token, "Bearer", std::string(kTokenTypeAccessToken), exp - now,
                              JoinScopes(s.scopes), s.jti, s.sid, s.initiator},
                  events::Build(e), exp, std::move(s)};
  return r;
}

std::string TokenService::Introspect(const std::string& token) {
  auto v = VerifyAccessToken(token, "");
  if (!v.ok()) {
    // A token that does not verify is inactive (RFC 7662 §2.2); a store failure says so too,
    // but is reported. (A session lookup's failure is reported where it happens.)
    if (v.status().code() != StatusCode::kUnauthenticated) {
      errors_.Report("identity.introspect", v.status());
    }
    return R"({"active":false})";
  }
  const Session& s = v->session;
  json::object o{{"active", true},
                 {"iss", options_.issuer},
                 {"sub", s.initiator},
                 {"client_id", s.agent},
                 {"scope", JoinScopes(s.scopes)},
                 {"exp", v->exp},
                 {"iat", s.created_at},
                 {"jti", v->jti},
                 {"sid", s.sid},
                 {"txn", s.txn},
                 {"aud", StringArray(v->audiences)},
                 {"token_type", "Bearer"},
                 {"initiator_verification",
                  s.verification == InitiatorVerification::kVerified ? "verified" : "asserted"}};
  if (!v->act_json.empty()) o["act"] = ParseJson(v->act_json);
  return json::serialize(o);
}

Result<std::vector<std::string>> TokenService::RevokeSession(const std::string& sid,
                                                             const std::string& reason,
                                                             const std::string& by) {
  ASSIGN_OR_RETURN(std::vector<std::string> revoked, store_.RevokeSessionTree(sid, reason, Now()));
  NotifyRevoked(revoked);
  RETURN_IF_ERROR(Record(events::Build(events::Revocation{.event_id = NewId(),
                                                          .time = FormatRfc3339Millis(clock_.Now()),
                                                          .requested_by = by,
                                                          .of = events::Revocation::Of::kSession,
                                                          .subject = sid,
                                                          .reason = reason,
                                                          .revoked_sessions = revoked})));
  return revoked;
}

int TokenService::AddRevocationListener(RevocationListener listener) {
  MutexLock lock(listeners_mu_);
  int id = next_listener_++;
  listeners_[id] = std::move(listener);
  return id;
}

void TokenService::RemoveRevocationListener(int id) {
  MutexLock lock(listeners_mu_);
  listeners_.erase(id);
}

void TokenService::RevokedElsewhere(const std::vector<std::string>& sids, int skip_listener) {
  if (sids.empty()) return;
  MutexLock lock(listeners_mu_);
  for (const auto& [id, l] : listeners_) {
    if (id != skip_listener) l(sids);
  }
}

void TokenService::NotifyRevoked(const std::vector<std::string>& sids) {
  if (sids.empty()) return;
  MutexLock lock(listeners_mu_);
  for (const auto& [_, l] : listeners_) l(sids);
}

Status TokenService::RevokeCredential(const std::string& jti, const std::string& by) {
  RETURN_IF_ERROR(store_.RevokeJti(jti, Now() + 86400 + options_.leeway_s));
  events::Revocation e;  // a credential's: no reason, no sessions
  e.event_id = NewId();
  e.time = FormatRfc3339Millis(clock_.Now());
  e.requested_by = by;
  e.of = events::Revocation::Of::kCredential;
  e.subject = jti;
  return Record(events::Build(e));
}

}  // namespace custody::identity
