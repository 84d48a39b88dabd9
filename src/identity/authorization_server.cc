#include "identity/authorization_server.h"

#include <openssl/crypto.h>

#include <algorithm>
#include <boost/json.hpp>
#include <utility>

#include "common/encoding.h"
#include "common/html.h"
#include "common/json_parse.h"
#include "crypto/sha256.h"
#include "events/identity_events.h"
#include "identity/client_metadata.h"

namespace custody::identity {

struct AuthorizationServer::Pending {
  OAuthClient client;
  std::string redirect_uri;
  std::optional<std::string> state;
  std::string code_challenge;
  std::string resource;
  ScopeSet scopes;
  std::string browser_sha256;  // of the browser cookie that started the request
  std::string source;          // its source address (SourceAddress), "" when unknown
  int64_t expires_at = 0;
  // The sign-in leg.
  std::string idp_nonce, idp_verifier;
  // Set once the person signed in.
  SignedInPerson person;
  Agent agent;
  std::string logo_id;  // the consent page's logo (/oauth2/logo/<id>), "" for none
  // Set for an approver's sign-in (StartApproverSignIn): the approval page it returns to. Such
  // a sign-in has no client, redirect URI or consent.
  std::string approval_id;
  // Set for StartSignIn: the part of Custody the person signs in to, and what answers then.
  std::string sign_in_client;
  SignedInAnswer signed_in;
  // Also in the identity store (PutBrowserState), so that another node may take it: the store's
  // take then decides which node's step is the one (single use across nodes). False for a
  // StartSignIn (its answer is code, held here only) or when the store could not keep it.
  bool shared = false;
};

namespace {

std::string HexSha256(std::string_view s) { return HexEncode(crypto::Sha256(s)); }

// OpenID Connect's standard scopes (OIDC Core 1.0 sections 3.1.2.1, 5.4, 11). MCP clients ask for
// them out of habit (mcp-remote's fallback is "openid email profile"; the SDK adds
// offline_access when an AS lists it). Custody issues no ID token or user info, and always a
// refresh token, so they ask for nothing it would withhold: they are dropped, not refused.
bool IsOidcScope(std::string_view s) {
  for (std::string_view o : {"openid", "profile", "email", "address", "phone", "offline_access"}) {
    if (s == o) return true;
  }
  return false;
}

ScopeSet WithoutOidcScopes(ScopeSet scopes) {
  scopes.erase(std::remove_if(scopes.begin(), scopes.end(),
                              [](const std::string& s) { return IsOidcScope(s); }),
               scopes.end());
  return scopes;
}

bool ConstantTimeEquals(const std::string& a, const std::string& b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

constexpr std::string_view kStyle =
    "body{font-family:system-ui,sans-serif;max-width:34rem;margin:3rem auto;padding:0 1rem;"
    "color:#222}code{background:#f2f2f2;padding:0 .2rem}button{font-size:1rem;padding:.4rem "
    "1rem;margin-right:.5rem}ul{padding-left:1.2rem}img.logo{display:block;object-fit:contain}";

std::string Page(const std::string& title, const std::string& body) {
  return "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" "
         "content=\"width=device-width\"><title>" +
         HtmlEscape(title) + "</title><style>" + std::string(kStyle) + "</style></head><body>" +
         body + "</body></html>";
}

BrowserAnswer ErrorPage(int status, const std::string& error, const std::string& description) {
  BrowserAnswer a;
  a.status = status;
  a.error = error;
  a.html =
      Page("Authorization failed", "<h1>Authorization failed</h1><p>" + HtmlEscape(description) +
                                       "</p><p>Error: <code>" + HtmlEscape(error) +
                                       "</code></p><p>Close this window and try again from your "
                                       "application.</p>");
  return a;
}

// A page of the approver's sign-in that went wrong, with the way back to the approval.
BrowserAnswer ApproverErrorPage(int status, const std::string& error,
                                const std::string& description, const std::string& approval_id) {
  BrowserAnswer a;
  a.status = status;
  a.error = error;
  std::string back = approval_id.empty() ? ""
                                         : "<p><a href=\"/approvals/" + HtmlEscape(approval_id) +
                                               "\">Back to the approval</a></p>";
  a.html =
      Page("Sign-in failed", "<h1>Sign-in failed</h1><p>" + HtmlEscape(description) +
                                 "</p><p>Error: <code>" + HtmlEscape(error) + "</code></p>" + back);
  return a;
}

// An OAuth error code as an IdP sent it, safe to show and to put in a redirect: the RFC 6749
// syntax narrowed to [a-z0-9_], at most 64 characters; anything else is "".
std::string IdpErrorCode(std::string_view code) {
  if (code.empty() || code.size() > 64) return "";
  for (unsigned char c : code) {
    if (!(std::islower(c) || std::isdigit(c) || c == '_')) return "";
  }
  return std::string(code);
}

// The error code in a refusal OidcLogin::Redeem reports ("login provider refused the code
// (HTTP 401, invalid_client)"), and whether the HTTP status was 401: "" when the message has
// none (an unreachable IdP, an ID token that does not verify).
std::string RedeemRefusalCode(const Status& s, bool* unauthorized) {
  static constexpr std::string_view kPrefix = "login provider refused the code (HTTP ";
  std::string_view m = s.message();
  size_t at = m.find(kPrefix);
  if (at == std::string_view::npos) return "";
  m.remove_prefix(at + kPrefix.size());
  *unauthorized = m.starts_with("401");
  size_t comma = m.find(", "), close = m.find(')');
  if (close == std::string_view::npos) return "";
  if (comma == std::string_view::npos || comma > close) return "refused";
  std::string code = IdpErrorCode(m.substr(comma + 2, close - comma - 2));
  return code.empty() ? "refused" : code;
}

// The IdP refused Custody itself, not the person: its client authentication or registration
// (a configuration for an operator to fix, not something the person can retry).
bool IsIdpClientRefusal(const std::string& code, bool unauthorized) {
  return unauthorized || code == "invalid_client" || code == "unauthorized_client" ||
         code == "unsupported_grant_type";
}

// What the client hears (RFC 6749 §4.1.2.1) when the IdP answered the sign-in with `code`:
// the person's refusal or failed sign-in is access_denied; the IdP's own outage is passed on;
// anything else is Custody's request or configuration failing at the IdP: server_error.
std::string ClientErrorForIdpError(const std::string& code) {
  for (std::string_view person : {"access_denied", "login_required", "consent_required",
                                  "interaction_required", "account_selection_required"}) {
    if (code == person) return "access_denied";
  }
  if (code == "temporarily_unavailable") return "temporarily_unavailable";
  return "server_error";
}

// An approval id as it may appear in a path: UUIDs and the like, nothing a URL would reinterpret.
bool IsApprovalId(std::string_view s) {
  if (s.empty() || s.size() > 128) return false;
  return std::all_of(
             s.begin(), s.end(),
             [](unsigned char c) { return std::isalnum(c) || c == '-' || c == '_' || c == '.'; }) &&
         s != "." && s != "..";
}

// The value of cookie `name` in a Cookie header, or "".
std::string CookieValue(const std::string& header, std::string_view name) {
  size_t pos = 0;
  while (pos < header.size()) {
    size_t end = header.find(';', pos);
    if (end == std::string::npos) end = header.size();
    std::string_view part(header.data() + pos, end - pos);
    while (!part.empty() && part.front() == ' ') part.remove_prefix(1);
    if (part.size() > name.size() && part.substr(0, name.size()) == name &&
        part[name.size()] == '=') {
      return std::string(part.substr(name.size() + 1));
    }
    pos = end + 1;
  }
  return "";
}

// The browser cookie that binds a sign-in to the browser that started it. Secure: browsers keep
// Secure cookies from http://localhost and 127.0.0.1 too; HttpOnly; SameSite=Lax: sent on the
// IdP's top-level redirect back, never on cross-site subrequests.
std::string BrowserCookie(const std::string& value, int64_t lifetime_s) {
  return std::string(kBrowserCookie) + "=" + value +
         "; Path=/oauth2/; Max-Age=" + std::to_string(lifetime_s) +
         "; HttpOnly; Secure; SameSite=Lax";
}

bool IsBase64UrlToken(std::string_view s, size_t min, size_t max) {
  if (s.size() < min || s.size() > max) return false;
  return std::all_of(s.begin(), s.end(),
                     [](unsigned char c) { return std::isalnum(c) || c == '-' || c == '_'; });
}

events::Initiator InitiatorOf(const SignedInPerson& p) {
  return events::Initiator{p.subject, p.issuer, true, ""};
}

// What a client sent, bounded and printable, for a refusal event.
std::string Bounded(std::string_view s) {
  std::string out;
  for (char c : s.substr(0, 256)) out += c >= 0x20 && c < 0x7f ? c : '?';
  if (s.size() > 256) out += "...";
  return out;
}

// The identity store's kinds of browser state (IdentityStore::PutBrowserState).
constexpr std::string_view kLoginState = "login";        // by SHA-256 of the IdP state
constexpr std::string_view kConsentState = "consent";    // by SHA-256 of the request id
constexpr std::string_view kApproverState = "approver";  // by SHA-256 of the approver cookie

namespace json = boost::json;

std::string Str(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  return v != nullptr && v->is_string() ? std::string(v->get_string()) : std::string();
}

int64_t Int(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  return v != nullptr && v->is_int64() ? v->get_int64() : 0;
}

json::array StrArray(const std::vector<std::string>& v) {
  json::array a;
  for (const std::string& s : v) a.emplace_back(s);
  return a;
}

std::vector<std::string> Strs(const json::object& o, std::string_view key) {
  std::vector<std::string> out;
  const json::value* v = o.if_contains(key);
  if (v == nullptr || !v->is_array()) return out;
  for (const json::value& e : v->get_array()) {
    if (e.is_string()) out.emplace_back(e.get_string());
  }
  return out;
}

json::object PersonJson(const SignedInPerson& p) {
  return {{"sub", p.subject},
          {"iss", p.issuer},
          {"name", p.name},
          {"email", p.email},
          {"groups", StrArray(p.groups)}};
}

SignedInPerson PersonOf(const json::object& o) {
  return SignedInPerson{Str(o, "sub"), Str(o, "iss"), Str(o, "name"), Str(o, "email"),
                        Strs(o, "groups")};
}

}  // namespace

std::string AuthorizationServer::PendingJson(const Pending& p) {
  // What another node needs to continue `p`. Its secrets are the nonce and PKCE verifier of
  // Custody's own sign-in at the IdP, of no use without the IdP's code, which only the browser
  // gets; the browser binding and the consent's CSRF token are hashes. Of the agent only its
  // name: nothing after the sign-in reads more.
  json::object o{{"client_id", p.client.client_id},
                 {"client_name", p.client.name},
                 {"client_agent", p.client.agent},
                 {"client_logo_uri", p.client.logo_uri},
                 {"client_uri", p.client.client_uri},
                 {"client_dev", p.client.dev},
                 {"redirect_uri", p.redirect_uri},
                 {"code_challenge", p.code_challenge},
                 {"resource", p.resource},
                 {"scopes", StrArray(p.scopes)},
                 {"browser_sha256", p.browser_sha256},
                 {"source", p.source},
                 {"expires_at", p.expires_at},
                 {"idp_nonce", p.idp_nonce},
                 {"idp_verifier", p.idp_verifier},
                 {"approval_id", p.approval_id},
                 {"agent", p.agent.name},
                 {"logo_id", p.logo_id}};
  if (p.state) o["state"] = *p.state;
  if (!p.person.subject.empty()) o["person"] = PersonJson(p.person);
  return json::serialize(o);
}

std::shared_ptr<AuthorizationServer::Pending> AuthorizationServer::PendingOf(
    const std::string& body) {
  boost::system::error_code ec;
  json::value v = ParseJson(body, ec);
  if (ec || !v.is_object()) return nullptr;
  const json::object& o = v.get_object();
  auto p = std::make_shared<Pending>();
  p->client.client_id = Str(o, "client_id");
  p->client.name = Str(o, "client_name");
  p->client.agent = Str(o, "client_agent");
  p->client.logo_uri = Str(o, "client_logo_uri");
  p->client.client_uri = Str(o, "client_uri");
  const json::value* dev = o.if_contains("client_dev");
  p->client.dev = dev != nullptr && dev->is_bool() && dev->get_bool();
  p->redirect_uri = Str(o, "redirect_uri");
  if (o.contains("state")) p->state = Str(o, "state");
  p->code_challenge = Str(o, "code_challenge");
  p->resource = Str(o, "resource");
  p->scopes = Strs(o, "scopes");
  p->browser_sha256 = Str(o, "browser_sha256");
  p->source = Str(o, "source");
  p->expires_at = Int(o, "expires_at");
  p->idp_nonce = Str(o, "idp_nonce");
  p->idp_verifier = Str(o, "idp_verifier");
  p->approval_id = Str(o, "approval_id");
  p->agent.name = Str(o, "agent");
  p->logo_id = Str(o, "logo_id");
  if (const json::value* person = o.if_contains("person"); person && person->is_object()) {
    p->person = PersonOf(person->get_object());
  }
  p->shared = true;
  if (p->browser_sha256.empty()) return nullptr;  // nothing binds it to a browser
  return p;
}

AuthorizationServer::AuthorizationServer(TokenService& tokens, store::IdentityStore& store,
                                         ClientDirectory& clients, IdentityProvider* login,
                                         const Clock& clock, Random& random, ErrorReporter& errors,
                                         IdentityEventSink sink, AuthorizationServerOptions options)
    : tokens_(tokens),
      store_(store),
      clients_(clients),
      login_(login),
      clock_(clock),
      random_(random),
      errors_(errors),
      ids_(clock, random),
      sink_(std::move(sink)),
      options_(std::move(options)) {
  options_.code_lifetime_s = std::clamp<int64_t>(options_.code_lifetime_s, 1, 60);
}

AuthorizationServer::~AuthorizationServer() { Stop(); }

bool AuthorizationServer::Post(std::function<void()> work) {
  {
    MutexLock lock(work_mu_);
    if (!stopping_) {
      if (work_.size() >= options_.max_queued_work) return false;
      if (workers_.empty()) {
        for (size_t i = 0; i < kWorkers; ++i) workers_.emplace_back([this] { WorkLoop(); });
      }
      work_.push_back(std::move(work));
      work_cv_.NotifyOne();
      return true;
    }
  }
  work();
  return true;
}

BrowserAnswer AuthorizationServer::BusyPage() {
  return ErrorPage(503, "temporarily_unavailable",
                   "Custody has too many sign-ins waiting on other hosts right now. Try again in "
                   "a moment.");
}

std::string AuthorizationServer::SourceAddress(std::string_view remote) {
  // The HTTP server writes "ADDR:PORT" (an IPv6 address unbracketed): the port is after the
  // last colon. "[ADDR]:PORT" is taken too.
  size_t colon = remote.rfind(':');
  if (colon == std::string_view::npos) return std::string(remote);
  std::string_view addr = remote.substr(0, colon);
  if (addr.size() >= 2 && addr.front() == '[' && addr.back() == ']') {
    addr = addr.substr(1, addr.size() - 2);
  }
  return std::string(addr);
}

size_t AuthorizationServer::held_from(std::string_view remote) {
  std::string source = SourceAddress(remote);
  MutexLock lock(mu_);
  auto it = in_flight_by_source_.find(source);
  return it == in_flight_by_source_.end() ? 0 : it->second;
}

AuthorizationServer::Held AuthorizationServer::held() {
  Held h;
  {
    MutexLock lock(mu_);
    h.in_flight = logins_.size() + consents_.size();
    h.approver_sessions = approvers_.size();
  }
  MutexLock lock(work_mu_);
  h.queued_work = work_.size();
  return h;
}

void AuthorizationServer::WorkLoop() {
  while (true) {
    std::function<void()> next;
    {
      MutexLock lock(work_mu_);
      work_cv_.Wait(work_mu_, [&]() REQUIRES(work_mu_) { return stopping_ || !work_.empty(); });
      if (work_.empty()) return;  // stopping, and nothing is left
      next = std::move(work_.front());
      work_.pop_front();
    }
    next();
  }
}

void AuthorizationServer::Stop() {
  std::vector<std::thread> workers;
  {
    MutexLock lock(work_mu_);
    stopping_ = true;
    work_cv_.NotifyAll();
    workers.swap(workers_);
  }
  for (std::thread& t : workers) t.join();
}

int64_t AuthorizationServer::Now() const {
  return std::chrono::duration_cast<std::chrono::seconds>(clock_.Now().time_since_epoch()).count();
}

std::string AuthorizationServer::RandomToken(size_t bytes) {
  std::vector<uint8_t> raw(bytes);
  random_.Fill(raw);
  return Base64UrlEncode(raw);
}

Status AuthorizationServer::Record(const std::string& event) {
  if (!sink_) return OkStatus();
  Status s = sink_(event);
  if (!s.ok()) errors_.Report("identity.oauth_event", s);
  return s;
}

std::string AuthorizationServer::DevAgentName(const std::string& client_id) {
  return "oauth-dev-" + HexSha256(client_id).substr(0, 12);
}

void AuthorizationServer::PurgeLocked(int64_t now) {
  for (auto* m : {&logins_, &consents_}) {
    for (auto it = m->begin(); it != m->end();) {
      if (it->second->expires_at > now) {
        ++it;
        continue;
      }
      ReleaseSourceLocked(*it->second);
      it = m->erase(it);
    }
  }
  std::erase_if(logos_, [now](const auto& kv) { return kv.second.expires_at <= now; });
  std::erase_if(approvers_, [now](const auto& kv) { return kv.second.session.expires_at <= now; });
}

bool AuthorizationServer::FullLocked() const {
  return logins_.size() + consents_.size() >= options_.max_in_flight;
}

void AuthorizationServer::HoldLocked(std::map<std::string, std::shared_ptr<Pending>>& m,
                                     const std::string& key, std::shared_ptr<Pending> p) {
  if (!p->source.empty()) ++in_flight_by_source_[p->source];
  m[key] = std::move(p);  // keys are fresh random tokens: nothing held is replaced
}

std::shared_ptr<AuthorizationServer::Pending> AuthorizationServer::TakeLocked(
    std::map<std::string, std::shared_ptr<Pending>>& m, const std::string& key) {
  auto it = m.find(key);
  if (it == m.end()) return nullptr;
  std::shared_ptr<Pending> p = std::move(it->second);
  m.erase(it);
  ReleaseSourceLocked(*p);
  return p;
}

void AuthorizationServer::ReleaseSourceLocked(const Pending& p) {
  if (p.source.empty()) return;
  auto it = in_flight_by_source_.find(p.source);
  if (it == in_flight_by_source_.end()) return;
  if (--it->second == 0) in_flight_by_source_.erase(it);  // the map holds live sources only
}

BrowserAnswer AuthorizationServer::ToClient(const std::string& redirect_uri,
                                            const std::string& params,
                                            const std::optional<std::string>& state) const {
  BrowserAnswer a;
  a.status = 302;
  a.location = redirect_uri + (redirect_uri.find('?') == std::string::npos ? "?" : "&") + params;
  if (state) a.location += "&state=" + FormEncode(*state);
  a.location += "&iss=" + FormEncode(options_.issuer);  // RFC 9207
  return a;
}

BrowserAnswer AuthorizationServer::IdpRefusedPage(const Pending& p, const std::string& what) const {
  // The client's RFC 6749 §4.1.2.1 answer, server_error, is the page's way back: the person
  // reads what happened here (the client could only show a code), then returns to the client.
  BrowserAnswer back =
      ClientError(p.redirect_uri, "server_error",
                  what + "; an operator must check Custody's [login] settings", p.state);
  std::string sentence = what;
  if (!sentence.empty()) sentence[0] = static_cast<char>(std::toupper(sentence[0]));
  BrowserAnswer a;
  a.status = 502;
  a.error = "server_error";
  a.html = Page("Sign-in failed",
                "<h1>Sign-in failed</h1><p>" + HtmlEscape(sentence) +
                    ".</p><p>Nothing is wrong with your account: Custody's settings for your "
                    "company's login provider need an operator's attention.</p><p>Error: "
                    "<code>server_error</code></p><p><a href=\"" +
                    HtmlEscape(back.location) + "\">Return to " + HtmlEscape(p.client.name) +
                    "</a></p>");
  return a;
}

BrowserAnswer AuthorizationServer::ClientError(const std::string& redirect_uri,
                                               const std::string& error,
                                               const std::string& description,
                                               const std::optional<std::string>& state) const {
  BrowserAnswer a = ToClient(
      redirect_uri, "error=" + FormEncode(error) + "&error_description=" + FormEncode(description),
      state);
  a.error = error;
  return a;
}

// ---------------------------------------------------------------------------------------------
// GET /oauth2/authorize

BrowserAnswer AuthorizationServer::Authorize(const AuthorizeRequest& q,
                                             const std::string& cookie_header) {
  // 1. The client and its redirect URI: until both are known good, errors are shown here.
  if (!q.client_id || q.client_id->empty()) {
    return ErrorPage(400, "invalid_request", "The request names no client (client_id).");
  }
  if (!ValidateClientId(*q.client_id).ok()) {
    return ErrorPage(400, "invalid_request", "The client_id is malformed.");
  }
  OAuthClient client;
  auto found = clients_.Find(*q.client_id);
  if (found.ok()) {
    client = std::move(*found);
  } else if (found.status().code() == StatusCode::kNotFound && options_.dev_unknown_clients) {
    client.client_id = *q.client_id;
    client.name = *q.client_id;
    client.dev = true;
    client.agent = DevAgentName(*q.client_id);
  } else if (found.status().code() == StatusCode::kNotFound) {
    return ErrorPage(400, "invalid_client",
                     "This client is not registered with Custody. An operator registers it in "
                     "[oauth.clients].");
  } else if (found.status().code() == StatusCode::kInvalidArgument) {
    // A Client ID Metadata Document that breaks a rule (the fetcher's message is safe to show).
    return ErrorPage(400, "invalid_client", found.status().message());
  } else if (found.status().code() == StatusCode::kUnavailable) {
    return ErrorPage(
        400, "invalid_client",
        "The client's metadata document cannot be fetched: " + found.status().message());
  } else {
    errors_.Report("identity.oauth_client_lookup", found.status());
    return ErrorPage(503, "temporarily_unavailable", "The client cannot be looked up now.");
  }
  if (client.agent.empty()) {
    // Known by its metadata document only: no operator mapped it to an agent.
    if (!options_.dev_unknown_clients) {
      return ErrorPage(400, "invalid_client",
                       "No agent is registered for this client. An operator maps it to one in "
                       "[oauth.clients].");
    }
    client.dev = true;
    client.agent = DevAgentName(client.client_id);
  }
  if (!q.redirect_uri || q.redirect_uri->empty()) {
    return ErrorPage(400, "invalid_request", "The request has no redirect_uri.");
  }
  const std::string& redirect_uri = *q.redirect_uri;
  if (client.redirect_uris.empty()) {
    // Nothing is registered to match: only for an unknown client in development, and then only
    // a loopback http URI (the app on this machine).
    if (!client.dev) {
      return ErrorPage(400, "invalid_request",
                       "No redirect URI is known for this client (its metadata document is "
                       "not fetched: oauth.client_metadata_documents is off).");
    }
    if (!IsLoopbackHttpUri(redirect_uri) || !ValidateRedirectUri(redirect_uri).ok()) {
      return ErrorPage(400, "invalid_request",
                       "An unregistered client may only use a loopback http redirect URI.");
    }
  } else if (std::find(client.redirect_uris.begin(), client.redirect_uris.end(), redirect_uri) ==
             client.redirect_uris.end()) {
    return ErrorPage(400, "invalid_request",
                     "The redirect_uri is not one registered for this client.");
  }

  // 2. From here on, errors go back to the client.
  const auto& state = q.state;
  if (!q.response_type || *q.response_type != "code") {
    return ClientError(redirect_uri, "unsupported_response_type",
                       "only response_type=code is supported", state);
  }
  if (!q.code_challenge || q.code_challenge->empty()) {
    return ClientError(redirect_uri, "invalid_request", "PKCE is required (code_challenge)", state);
  }
  if (!q.code_challenge_method || *q.code_challenge_method != "S256") {
    return ClientError(redirect_uri, "invalid_request",
                       "code_challenge_method must be S256 (plain is not accepted)", state);
  }
  if (!IsBase64UrlToken(*q.code_challenge, 43, 43)) {
    return ClientError(redirect_uri, "invalid_request",
                       "code_challenge must be the base64url SHA-256 of the verifier", state);
  }
  std::string resource = options_.resource;
  if (q.resource && *q.resource != options_.resource) {
    return ClientError(redirect_uri, "invalid_target",
                       "resource must be this gateway's resource, " + options_.resource, state);
  }
  if (login_ == nullptr) {
    return ClientError(redirect_uri, "server_error", "no login provider is configured ([login])",
                       state);
  }

  // Scopes: the tool scopes Custody understands, narrowed to the agent's grants.
  ScopeSet grants;
  if (client.dev) {
    grants = options_.dev_grants;
  } else {
    auto agent = tokens_.GetAgent(client.agent);
    if (!agent.ok() || agent->disabled) {
      if (!agent.ok() && agent.status().code() != StatusCode::kNotFound) {
        errors_.Report("identity.oauth_agent_lookup", agent.status());
      }
      return ClientError(redirect_uri, "unauthorized_client",
                         "the client's agent is not registered or is disabled", state);
    }
    grants = agent->grants;
  }
  // OpenID Connect scopes are dropped; only those asked for (none: all the grants).
  ScopeSet scopes = grants;
  if (q.scope && !q.scope->empty()) {
    auto requested = ParseScopes(*q.scope);
    if (!requested.ok()) {
      return ClientError(redirect_uri, "invalid_scope", requested.status().message(), state);
    }
    ScopeSet tool_scopes = WithoutOidcScopes(std::move(*requested));
    if (!tool_scopes.empty()) scopes = Intersect(tool_scopes, grants);
  }
  if (scopes.empty()) {
    return ClientError(redirect_uri, "invalid_scope",
                       "none of the requested scopes is granted to the client's agent", state);
  }

  // 3. The browser binding: a cookie of its own, whose hash the request keeps. A browser that
  // already has one keeps it (two authorizations in one browser do not undo each other).
  auto p = std::make_shared<Pending>();
  p->client = std::move(client);
  p->redirect_uri = redirect_uri;
  p->state = state;
  p->code_challenge = *q.code_challenge;
  p->resource = resource;
  p->scopes = std::move(scopes);
  p->source = SourceAddress(q.remote);
  Full full = Full::kNo;
  if (auto sent = SendToIdp(std::move(p), cookie_header, &full)) return std::move(*sent);
  return ClientError(redirect_uri, "temporarily_unavailable",
                     full == Full::kAll      ? "too many authorizations in progress"
                     : full == Full::kSource ? "too many authorizations in progress from this "
                                               "address"
                                             : "the login provider cannot be reached",
                     state);
}

std::optional<BrowserAnswer> AuthorizationServer::SendToIdp(std::shared_ptr<Pending> p,
                                                            const std::string& cookie_header,
                                                            Full* full) {
  int64_t now = Now();
  p->expires_at = now + options_.login_lifetime_s;
  std::string browser = CookieValue(cookie_header, kBrowserCookie);
  if (!IsBase64UrlToken(browser, 43, 43)) browser = RandomToken(32);
  p->browser_sha256 = HexSha256(browser);
  p->idp_nonce = RandomToken(32);
  p->idp_verifier = RandomToken(32);
  std::string idp_state = RandomToken(32);
  auto url = login_->AuthorizationUrl(idp_state, p->idp_nonce, PkceS256(p->idp_verifier));
  if (!url.ok()) {
    errors_.Report("identity.login_discovery", url.status());
    return std::nullopt;
  }
  {
    MutexLock lock(mu_);
    PurgeLocked(now);
    if (FullLocked()) {
      *full = Full::kAll;
      return std::nullopt;
    }
    if (options_.max_in_flight_per_source > 0 && !p->source.empty()) {
      auto it = in_flight_by_source_.find(p->source);
      if (it != in_flight_by_source_.end() && it->second >= options_.max_in_flight_per_source) {
        *full = Full::kSource;
        return std::nullopt;
      }
    }
    HoldLocked(logins_, idp_state, p);
  }
  // Outside mu_ (the store may be across a network); the browser does not know idp_state yet.
  Share(kLoginState, idp_state, *p);
  PurgeShared(now);
  BrowserAnswer a;
  a.status = 302;
  a.location = *url;
  a.set_cookies.push_back(BrowserCookie(browser, options_.login_lifetime_s));
  return a;
}

// ---------------------------------------------------------------------------------------------
// The IdP's answer, then consent

Result<Agent> AuthorizationServer::AgentFor(const OAuthClient& client,
                                            const SignedInPerson& person) {
  auto agent = tokens_.GetAgent(client.agent);
  if (agent.ok()) {
    if (client.dev && agent->environment != Environment::kDev) {
      return FailedPreconditionError("the development agent " + client.agent +
                                     " is no longer in the dev environment");
    }
    return agent;
  }
  if (agent.status().code() != StatusCode::kNotFound || !client.dev) return agent.status();
  // oauth.dev_unknown_clients: a dev agent of the client's own, owned by the person signing in.
  Agent a;
  a.name = client.agent;
  a.description = "development agent of OAuth client " + client.client_id;
  a.environment = Environment::kDev;
  std::string owner = person.email.empty() ? person.subject : person.email;
  a.business_owner = owner;
  a.technical_owner = owner;
  a.grants = options_.dev_grants;
  // Its client secret is generated and dropped: this agent only ever acts through the
  // authorization code flow.
  auto registered = tokens_.RegisterAgent(a, /*generate_secret=*/true,
                                          "oauth-dev:" + person.issuer + "#" + person.subject);
  if (!registered.ok()) {
    if (registered.status().code() == StatusCode::kAlreadyExists) {
      return tokens_.GetAgent(client.agent);  // a concurrent first sign-in registered it
    }
    return registered.status();
  }
  return registered->agent;
}

BrowserAnswer AuthorizationServer::LoginCallback(const std::optional<std::string>& state,
                                                 const std::optional<std::string>& code,
                                                 const std::optional<std::string>& error,
                                                 const std::string& cookie_header,
                                                 const std::optional<std::string>& iss) {
  if (!state || state->empty()) {
    return ErrorPage(400, "invalid_request", "The sign-in answer has no state.");
  }
  std::shared_ptr<Pending> p;
  int64_t now = Now();
  {
    MutexLock lock(mu_);
    PurgeLocked(now);
    p = TakeLocked(logins_, *state);  // one answer per sign-in
  }
  bool unavailable = false;
  p = TakeShared(kLoginState, *state, std::move(p), now, &unavailable);  // ... on every node
  if (unavailable) {
    return ErrorPage(503, "temporarily_unavailable",
                     "This sign-in cannot be continued now. Start again from your application.");
  }
  if (!p) {
    std::string idp_error = error ? IdpErrorCode(*error) : "";
    return ErrorPage(400, "invalid_request",
                     idp_error.empty()
                         ? "This sign-in is unknown or has expired. Start again from your "
                           "application."
                         : "The login provider answered " + idp_error +
                               " for a sign-in that is unknown or has expired. Start again from "
                               "your application.");
  }
  std::string browser = CookieValue(cookie_header, kBrowserCookie);
  if (browser.empty() || !ConstantTimeEquals(HexSha256(browser), p->browser_sha256)) {
    return ErrorPage(400, "invalid_request",
                     "This sign-in was started in another browser (or its cookie is missing).");
  }
  if (!p->approval_id.empty() || p->signed_in) return ApproverSignedIn(*p, code, error, iss);
  if (error) {
    // The IdP's own answer (RFC 6749 §4.1.2.1 towards Custody), named to the client: the
    // person's refusal is access_denied, the IdP refusing Custody's request server_error.
    std::string idp_error = IdpErrorCode(*error);
    if (idp_error.empty()) idp_error = "an unreadable error";
    const std::string mapped = ClientErrorForIdpError(idp_error);
    if (mapped == "server_error") {
      return IdpRefusedPage(
          *p, "the login provider refused Custody's sign-in request (" + idp_error + ")");
    }
    return ClientError(p->redirect_uri, mapped,
                       "the login provider answered the sign-in with " + idp_error, p->state);
  }
  if (!code || code->empty()) {
    return ClientError(p->redirect_uri, "access_denied", "the sign-in was not completed", p->state);
  }
  if (iss && !login_->issuer().empty() && *iss != login_->issuer()) {
    // RFC 9207: an answer that names another issuer is a mix-up; its code is never redeemed.
    return ClientError(p->redirect_uri, "access_denied",
                       "the sign-in answer came from another issuer", p->state);
  }
  auto person = login_->Redeem(*code, p->idp_verifier, p->idp_nonce);
  if (!person.ok()) {
    errors_.Report("identity.login_redeem", person.status());
    if (person.status().code() == StatusCode::kUnavailable) {
      return ClientError(p->redirect_uri, "temporarily_unavailable",
                         "the login provider cannot be reached", p->state);
    }
    bool unauthorized = false;
    std::string refused = RedeemRefusalCode(person.status(), &unauthorized);
    if (IsIdpClientRefusal(refused, unauthorized)) {
      // Custody's own credentials at the IdP: nothing the person or the client can fix.
      return IdpRefusedPage(
          *p, "the login provider refused Custody's client authentication (" + refused + ")");
    }
    if (!refused.empty()) {
      return ClientError(p->redirect_uri, "access_denied",
                         "the login provider refused the sign-in code (" + refused + ")", p->state);
    }
    return ClientError(p->redirect_uri, "access_denied", "the sign-in could not be verified",
                       p->state);
  }
  p->person = std::move(*person);
  auto agent = AgentFor(p->client, p->person);
  if (!agent.ok() || agent->disabled) {
    if (!agent.ok()) errors_.Report("identity.oauth_agent", agent.status());
    return ClientError(p->redirect_uri, "unauthorized_client",
                       "the client's agent is not available", p->state);
  }
  p->agent = std::move(*agent);
  p->scopes = Intersect(p->scopes, p->agent.grants);
  if (p->scopes.empty()) {
    return ClientError(p->redirect_uri, "invalid_scope",
                       "none of the requested scopes is granted to the client's agent", p->state);
  }
  if (!Record(events::Build(events::OAuthSignIn{.event_id = ids_.NextString(),
                                                .time = FormatRfc3339Millis(clock_.Now()),
                                                .initiator = InitiatorOf(p->person),
                                                .client_id = p->client.client_id,
                                                .agent = p->agent.name}))
           .ok()) {
    return ClientError(p->redirect_uri, "temporarily_unavailable", "cannot record the sign-in",
                       p->state);
  }

  // A consent remembered for this person and client that covers the request: no page.
  auto remembered = store_.GetConsent(p->person.issuer, p->person.subject, p->client.client_id);
  if (remembered.ok() && remembered->agent == p->agent.name &&
      std::all_of(p->scopes.begin(), p->scopes.end(),
                  [&](const std::string& s) { return CoveredBy(s, remembered->scopes); })) {
    if (!Record(events::Build(events::OAuthConsent{.event_id = ids_.NextString(),
                                                   .time = FormatRfc3339Millis(clock_.Now()),
                                                   .requested_by = "",
                                                   .decision = "remembered",
                                                   .initiator = InitiatorOf(p->person),
                                                   .client_id = p->client.client_id,
                                                   .agent = p->agent.name,
                                                   .scopes = p->scopes}))
             .ok()) {
      return ClientError(p->redirect_uri, "temporarily_unavailable", "cannot record the consent",
                         p->state);
    }
    return IssueCode(*p);
  }
  if (!remembered.ok() && remembered.status().code() != StatusCode::kNotFound) {
    errors_.Report("identity.consent_lookup", remembered.status());
  }
  std::string request_id = RandomToken(24);
  std::string csrf = RandomToken(32);
  p->logo_id = ConsentLogo(*p);
  p->expires_at = now + options_.login_lifetime_s;
  p->idp_verifier.clear();
  p->idp_nonce = HexSha256(csrf);  // the CSRF token's hash (the nonce is spent)
  {
    MutexLock lock(mu_);
    if (FullLocked()) {
      return ClientError(p->redirect_uri, "temporarily_unavailable",
                         "too many authorizations in progress", p->state);
    }
    // Counted for its source again, not checked: the same authorization, one step on.
    HoldLocked(consents_, request_id, p);
  }
  // The form may be posted to any node; the page (with request_id) is not sent yet.
  Share(kConsentState, request_id, *p);
  return ConsentPage(*p, request_id, csrf);
}

std::string AuthorizationServer::ConsentLogo(const Pending& p) {
  if (logo_fetcher_ == nullptr || p.client.logo_uri.empty()) return "";
  // Fetched on this (the authorization server's) thread; a logo that cannot be had is left out
  // (the fetcher logs why), the page is shown without it.
  auto logo = logo_fetcher_->FetchLogo(p.client.logo_uri);
  if (!logo.ok()) return "";
  std::string id = HexSha256(logo->bytes);
  int64_t now = Now();
  MutexLock lock(mu_);
  PurgeLocked(now);
  auto it = logos_.find(id);
  if (it == logos_.end()) {
    if (logos_.size() >= kMaxLogos) return "";  // bounded: this page goes without
    it = logos_.emplace(id, ServedLogo{std::make_shared<const ClientLogo>(std::move(*logo)), 0})
             .first;
  }
  it->second.expires_at = std::max(it->second.expires_at, now + options_.login_lifetime_s);
  return id;
}

std::shared_ptr<const ClientLogo> AuthorizationServer::Logo(const std::string& id) {
  MutexLock lock(mu_);
  auto it = logos_.find(id);
  if (it == logos_.end() || it->second.expires_at <= Now()) return nullptr;
  return it->second.logo;
}

BrowserAnswer AuthorizationServer::ConsentPage(const Pending& p, const std::string& request_id,
                                               const std::string& csrf) {
  std::string scopes;
  for (const std::string& s : p.scopes) scopes += "<li><code>" + HtmlEscape(s) + "</code></li>";
  std::string who = p.person.email.empty() ? p.person.subject : p.person.email;
  // The logo comes from Custody's own origin (the page's CSP allows img-src 'self' only).
  std::string logo = p.logo_id.empty() ? ""
                                       : "<img class=\"logo\" src=\"/oauth2/logo/" + p.logo_id +
                                             "\" alt=\"\" width=\"64\" height=\"64\">";
  std::string body =
      logo + "<h1>Allow access?</h1><p>Signed in as <b>" + HtmlEscape(who) + "</b> (" +
      HtmlEscape(p.person.issuer) + ").</p><p>The application <b>" + HtmlEscape(p.client.name) +
      "</b> (client <code>" + HtmlEscape(p.client.client_id) + "</code>" +
      // Its site as its metadata document names it: text to read, not a link to follow.
      (p.client.client_uri.empty()
           ? ""
           : ", whose site is <code>" + HtmlEscape(p.client.client_uri) + "</code>") +
      (p.client.dev ? ", not registered: development only" : "") +
      ") asks to act on your behalf as the agent <b>" + HtmlEscape(p.agent.name) + "</b>" +
      (p.agent.description.empty() ? "" : " (" + HtmlEscape(p.agent.description) + ")") +
      ", with these tool scopes:</p><ul>" + scopes +
      "</ul><p>Every action it takes is checked by policy and recorded with your name.</p>"
      "<form method=\"post\" action=\"/oauth2/consent\"><input type=\"hidden\" name=\"request\" "
      "value=\"" +
      HtmlEscape(request_id) + "\"><input type=\"hidden\" name=\"csrf\" value=\"" +
      HtmlEscape(csrf) +
      "\"><button type=\"submit\" name=\"decision\" value=\"allow\">Allow</button>"
      "<button type=\"submit\" name=\"decision\" value=\"deny\">Deny</button></form>";
  BrowserAnswer a;
  a.status = 200;
  a.html = Page("Allow " + p.client.name + "?", body);
  return a;
}

BrowserAnswer AuthorizationServer::Consent(const std::string& request_id, const std::string& csrf,
                                           const std::string& decision,
                                           const std::string& cookie_header) {
  std::shared_ptr<Pending> p;
  int64_t now = Now();
  {
    MutexLock lock(mu_);
    PurgeLocked(now);
    p = TakeLocked(consents_, request_id);  // one decision per request
  }
  bool unavailable = false;
  p = TakeShared(kConsentState, request_id, std::move(p), now, &unavailable);  // on every node
  if (unavailable) {
    return ErrorPage(503, "temporarily_unavailable",
                     "This request cannot be answered now. Start again from your application.");
  }
  if (!p) {
    return ErrorPage(400, "invalid_request",
                     "This request is unknown or has expired. Start again from your application.");
  }
  std::string browser = CookieValue(cookie_header, kBrowserCookie);
  if (browser.empty() || !ConstantTimeEquals(HexSha256(browser), p->browser_sha256) ||
      !ConstantTimeEquals(HexSha256(csrf), p->idp_nonce)) {
    return ErrorPage(403, "invalid_request",
                     "This form was not sent from the page Custody showed (CSRF check failed).");
  }
  const bool allow = decision == "allow";
  events::OAuthConsent e{.event_id = ids_.NextString(),
                         .time = FormatRfc3339Millis(clock_.Now()),
                         .requested_by = "",
                         .decision = allow ? "granted" : "denied",
                         .initiator = InitiatorOf(p->person),
                         .client_id = p->client.client_id,
                         .agent = p->agent.name,
                         .scopes = p->scopes};
  if (!Record(events::Build(e)).ok()) {
    return ClientError(p->redirect_uri, "temporarily_unavailable", "cannot record the consent",
                       p->state);
  }
  if (!allow) {
    return ClientError(p->redirect_uri, "access_denied", "the person denied the request", p->state);
  }
  identity::Consent c{p->person.issuer, p->person.subject, p->client.client_id,
                      p->agent.name,    p->scopes,         now};
  if (Status s = store_.PutConsent(c); !s.ok()) {
    errors_.Report("identity.consent_store", s);  // this authorization goes on; not remembered
  }
  return IssueCode(*p);
}

BrowserAnswer AuthorizationServer::IssueCode(const Pending& p) {
  std::string code = RandomToken(32);
  AuthorizationCode c;
  c.code_id = ids_.NextString();
  c.client_id = p.client.client_id;
  c.redirect_uri = p.redirect_uri;
  c.code_challenge = p.code_challenge;
  c.resource = p.resource;
  c.agent = p.agent.name;
  c.scopes = p.scopes;
  c.subject = p.person.subject;
  c.issuer = p.person.issuer;
  c.name = p.person.name;
  c.email = p.person.email;
  c.groups = p.person.groups;
  int64_t now = Now();
  c.expires_at = now + options_.code_lifetime_s;
  if (!Record(events::Build(events::OAuthCodeIssue{.event_id = ids_.NextString(),
                                                   .time = FormatRfc3339Millis(clock_.Now()),
                                                   .code_id = c.code_id,
                                                   .client_id = c.client_id,
                                                   .agent = c.agent,
                                                   .redirect_uri = c.redirect_uri,
                                                   .resource = c.resource,
                                                   .initiator = InitiatorOf(p.person),
                                                   .scopes = c.scopes,
                                                   .exp = c.expires_at}))
           .ok()) {
    return ClientError(p.redirect_uri, "temporarily_unavailable", "cannot record the code",
                       p.state);
  }
  PurgeCodes(now);
  // In the identity store, not this node's memory: the client's token request is server to
  // server, so browser stickiness does not bring it back here.
  if (Status st = store_.CreateAuthorizationCode(c, HexSha256(code)); !st.ok()) {
    errors_.Report("identity.code_store", st);
    return ClientError(p.redirect_uri, "temporarily_unavailable", "cannot store the code", p.state);
  }
  return ToClient(p.redirect_uri, "code=" + FormEncode(code), p.state);
}

void AuthorizationServer::PurgeCodes(int64_t now) {
  {
    MutexLock lock(mu_);
    if (now < next_code_purge_) return;
    next_code_purge_ = now + options_.code_lifetime_s;  // one DELETE per code lifetime
  }
  if (Status st = store_.PurgeAuthorizationCodes(now, CodeReuseGrace()); !st.ok()) {
    errors_.Report("identity.code_purge", st);  // the rows stay until the next purge
  }
}

void AuthorizationServer::Share(std::string_view kind, const std::string& secret, Pending& p) {
  p.shared = false;
  if (p.signed_in) return;  // code: it cannot be continued anywhere else
  Status st =
      store_.PutBrowserState(std::string(kind), HexSha256(secret), PendingJson(p), p.expires_at);
  if (!st.ok()) {
    // This node still continues it (the browser may come back here); no other node can.
    errors_.Report("identity.browser_state_store", st);
    return;
  }
  p.shared = true;
}

std::shared_ptr<AuthorizationServer::Pending> AuthorizationServer::TakeShared(
    std::string_view kind, const std::string& secret, std::shared_ptr<Pending> local, int64_t now,
    bool* unavailable) {
  *unavailable = false;
  if (local && !local->shared) return local;  // only this node ever had it
  auto taken = store_.TakeBrowserState(std::string(kind), HexSha256(secret), now);
  if (taken.ok()) {
    if (local) return local;
    auto p = PendingOf(*taken);
    if (!p) errors_.Report("identity.browser_state_read", InternalError("unreadable entry"));
    return p;
  }
  if (taken.status().code() == StatusCode::kNotFound) {
    // Taken at another node (a replay there, or this step's first use), or expired.
    return nullptr;
  }
  errors_.Report("identity.browser_state_take", taken.status());
  *unavailable = true;
  return nullptr;
}

void AuthorizationServer::PurgeShared(int64_t now) {
  {
    MutexLock lock(mu_);
    if (now < next_state_purge_) return;
    next_state_purge_ = now + 60;  // one DELETE a minute, whatever the sign-ins
  }
  if (Status st = store_.PurgeBrowserStates(now); !st.ok()) {
    errors_.Report("identity.browser_state_purge", st);  // the rows stay until the next purge
  }
}

// ---------------------------------------------------------------------------------------------
// Approvers: the same sign-in, then an approver session for the approval pages

std::string AuthorizationServer::BusySentence(Full full) {
  switch (full) {
    case Full::kAll:
      return "Too many sign-ins are in progress; try again shortly.";
    case Full::kSource:
      return "Too many sign-ins are in progress from your address; finish or abandon one, or "
             "try again in a few minutes.";
    case Full::kNo:
      break;
  }
  return "The login provider cannot be reached.";
}

BrowserAnswer AuthorizationServer::StartApproverSignIn(const std::string& approval_id,
                                                       const std::string& cookie_header,
                                                       const std::string& remote) {
  if (!IsApprovalId(approval_id)) {
    return ApproverErrorPage(400, "invalid_request", "The approval id is malformed.", "");
  }
  if (login_ == nullptr) {
    return ApproverErrorPage(503, "server_error", "No login provider is configured ([login]).",
                             approval_id);
  }
  auto p = std::make_shared<Pending>();
  p->approval_id = approval_id;
  p->source = SourceAddress(remote);
  Full full = Full::kNo;
  if (auto sent = SendToIdp(std::move(p), cookie_header, &full)) return std::move(*sent);
  return ApproverErrorPage(503, "temporarily_unavailable", BusySentence(full), approval_id);
}

BrowserAnswer AuthorizationServer::StartSignIn(const std::string& client, SignedInAnswer signed_in,
                                               const std::string& cookie_header,
                                               const std::string& remote) {
  if (login_ == nullptr) {
    return ApproverErrorPage(503, "server_error", "No login provider is configured ([login]).", "");
  }
  auto p = std::make_shared<Pending>();
  p->sign_in_client = client;
  p->signed_in = std::move(signed_in);
  p->source = SourceAddress(remote);
  Full full = Full::kNo;
  if (auto sent = SendToIdp(std::move(p), cookie_header, &full)) return std::move(*sent);
  return ApproverErrorPage(503, "temporarily_unavailable", BusySentence(full), "");
}

BrowserAnswer AuthorizationServer::ApproverSignedIn(Pending& p,
                                                    const std::optional<std::string>& code,
                                                    const std::optional<std::string>& error,
                                                    const std::optional<std::string>& iss) {
  const std::string& id = p.approval_id;
  if (error) {
    std::string idp_error = IdpErrorCode(*error);
    if (idp_error.empty()) idp_error = "an unreadable error";
    const std::string mapped = ClientErrorForIdpError(idp_error);
    return ApproverErrorPage(mapped == "access_denied" ? 403 : 502, mapped,
                             "The login provider answered the sign-in with " + idp_error + ".", id);
  }
  if (!code || code->empty()) {
    return ApproverErrorPage(403, "access_denied", "The sign-in was not completed.", id);
  }
  if (iss && !login_->issuer().empty() && *iss != login_->issuer()) {
    // RFC 9207, as for a client's sign-in: the code of a mixed-up answer is never redeemed.
    return ApproverErrorPage(403, "access_denied", "The sign-in answer came from another issuer.",
                             id);
  }
  auto person = login_->Redeem(*code, p.idp_verifier, p.idp_nonce);
  if (!person.ok()) {
    errors_.Report("identity.login_redeem", person.status());
    if (person.status().code() == StatusCode::kUnavailable) {
      return ApproverErrorPage(503, "temporarily_unavailable",
                               "The login provider cannot be reached.", id);
    }
    bool unauthorized = false;
    std::string refused = RedeemRefusalCode(person.status(), &unauthorized);
    if (IsIdpClientRefusal(refused, unauthorized)) {
      return ApproverErrorPage(502, "server_error",
                               "The login provider refused Custody's client authentication (" +
                                   refused +
                                   "). Nothing is wrong with your account: an operator must check "
                                   "Custody's [login] settings.",
                               id);
    }
    if (!refused.empty()) {
      return ApproverErrorPage(403, "access_denied",
                               "The login provider refused the sign-in code (" + refused + ").",
                               id);
    }
    return ApproverErrorPage(403, "access_denied", "The sign-in could not be verified.", id);
  }
  // Recorded as any sign-in; the client it names is the approval pages.
  if (!Record(events::Build(events::OAuthSignIn{
                  .event_id = ids_.NextString(),
                  .time = FormatRfc3339Millis(clock_.Now()),
                  .initiator = InitiatorOf(*person),
                  .client_id = p.signed_in ? p.sign_in_client : std::string(kApprovalPagesClient),
                  .agent = ""}))
           .ok()) {
    return ApproverErrorPage(503, "temporarily_unavailable", "The sign-in cannot be recorded now.",
                             id);
  }
  if (p.signed_in) return p.signed_in(std::move(*person));
  std::string token = RandomToken(32);
  std::string key = HexSha256(token);
  int64_t now = Now();
  ApproverSession session{std::move(*person), RandomToken(32),
                          now + options_.approver_session_lifetime_s};
  namespace json = boost::json;
  std::string body = json::serialize(json::object{{"person", PersonJson(session.person)},
                                                  {"csrf", session.csrf},
                                                  {"expires_at", session.expires_at}});
  {
    MutexLock lock(mu_);
    PurgeLocked(now);
    if (approvers_.size() >= options_.max_approver_sessions) {
      return ApproverErrorPage(503, "temporarily_unavailable",
                               "Too many approvers are signed in; try again shortly.", id);
    }
    approvers_[key] = HeldApprover{session, /*shared=*/true};
  }
  // In the identity store too (outside mu_; the browser has not got the cookie yet), so that
  // every node honours it and a sign-out at any node ends it everywhere. When the store cannot
  // keep it, this node alone knows it.
  Status shared =
      store_.PutBrowserState(std::string(kApproverState), key, body, session.expires_at);
  if (!shared.ok()) {
    errors_.Report("identity.browser_state_store", shared);
    MutexLock lock(mu_);
    if (auto it = approvers_.find(key); it != approvers_.end()) it->second.shared = false;
  }
  BrowserAnswer a;
  a.status = 302;
  a.location = options_.issuer + "/approvals/" + id;
  // Only the approval pages see it. SameSite=Lax, not Strict: the browser arrives here from the
  // IdP, a cross-site navigation whose redirect to the approval page must carry the cookie; the
  // page's form is a same-site POST, and it carries the session's CSRF token as well.
  a.set_cookies.push_back(
      std::string(kApproverCookie) + "=" + token + "; Path=/approvals; Max-Age=" +
      std::to_string(options_.approver_session_lifetime_s) + "; HttpOnly; Secure; SameSite=Lax");
  return a;
}

std::string AuthorizationServer::ClearedApproverCookie() {
  return std::string(kApproverCookie) + "=; Path=/approvals; Max-Age=0; HttpOnly; Secure; " +
         "SameSite=Lax";
}

Status AuthorizationServer::SignOutApprover(const std::string& cookie_header,
                                            const std::string& csrf) {
  std::string token = CookieValue(cookie_header, kApproverCookie);
  if (!IsBase64UrlToken(token, 43, 43)) {
    return UnauthenticatedError("not signed in as an approver");
  }
  auto session = FindApproverSession(cookie_header);
  if (!session) {
    return UnauthenticatedError("not signed in as an approver, or the sign-in has expired");
  }
  // The CSRF token, as for a decision: another site cannot sign the approver out.
  if (csrf.empty() || !ConstantTimeEquals(csrf, session->csrf)) {
    return PermissionDeniedError(
        "this form was not sent from the page Custody showed (CSRF check failed)");
  }
  std::string key = HexSha256(token);
  bool ended = false, shared = true;
  {
    MutexLock lock(mu_);
    if (auto it = approvers_.find(key); it != approvers_.end()) {
      shared = it->second.shared;
      approvers_.erase(it);
      ended = true;
    }
  }
  if (shared) {
    // Every node's: the row goes, so no node honours the cookie any more.
    auto taken = store_.TakeBrowserState(std::string(kApproverState), key, Now());
    if (taken.ok()) {
      ended = true;
    } else if (taken.status().code() != StatusCode::kNotFound) {
      // The row stays until it expires, but the route clears the browser's cookie, the only
      // holder of the token: ending authority does not wait for the store either.
      errors_.Report("identity.browser_state_take", taken.status());
      ended = true;
    }
  }
  if (!ended) {  // a concurrent sign-out ended it first (and records it)
    return UnauthenticatedError("not signed in as an approver, or the sign-in has expired");
  }
  SignedInPerson person = std::move(session->person);
  // Dropped first, recorded after (outside mu_: the ledger may wait for its fsync). When the
  // event cannot be recorded the session stays dropped: the person asked to end their authority,
  // and keeping it alive because the ledger is down would be the worse failure. Record reports
  // the error; the sign-out still succeeds.
  (void)Record(events::Build(events::OAuthSignOut{.event_id = ids_.NextString(),
                                                  .time = FormatRfc3339Millis(clock_.Now()),
                                                  .initiator = InitiatorOf(person),
                                                  .client_id = std::string(kApprovalPagesClient)}));
  return OkStatus();
}

std::optional<ApproverSession> AuthorizationServer::FindApproverSession(
    const std::string& cookie_header) {
  std::string token = CookieValue(cookie_header, kApproverCookie);
  if (!IsBase64UrlToken(token, 43, 43)) return std::nullopt;
  int64_t now = Now();
  std::string key = HexSha256(token);
  std::optional<ApproverSession> local;
  {
    MutexLock lock(mu_);
    auto it = approvers_.find(key);
    if (it != approvers_.end() && it->second.session.expires_at > now) {
      if (!it->second.shared) return it->second.session;  // only this node knows it
      local = it->second.session;
    }
  }
  // Opened at another node, or here and shared: the store says whether it is still live (a
  // sign-out at any node deletes its row).
  auto stored = store_.GetBrowserState(std::string(kApproverState), key, now);
  if (!stored.ok()) {
    if (stored.status().code() != StatusCode::kNotFound) {
      errors_.Report("identity.browser_state_read", stored.status());
      return local;  // the store cannot tell now: this node's own knowledge stands
    }
    if (local) {
      MutexLock lock(mu_);
      approvers_.erase(key);  // signed out at another node
    }
    return std::nullopt;
  }
  if (local) return local;
  namespace json = boost::json;
  boost::system::error_code ec;
  json::value v = ParseJson(*stored, ec);
  if (ec || !v.is_object()) {
    errors_.Report("identity.browser_state_read", InternalError("unreadable approver session"));
    return std::nullopt;
  }
  const json::object& o = v.get_object();
  ApproverSession session;
  if (const json::value* person = o.if_contains("person"); person && person->is_object()) {
    session.person = PersonOf(person->get_object());
  }
  session.csrf = Str(o, "csrf");
  session.expires_at = Int(o, "expires_at");
  if (session.person.subject.empty() || session.csrf.empty() || session.expires_at <= now) {
    return std::nullopt;
  }
  return session;
}

Result<SignedInPerson> AuthorizationServer::ApproverOfForm(const std::string& cookie_header,
                                                           const std::string& csrf) {
  auto session = FindApproverSession(cookie_header);
  if (!session) {
    return UnauthenticatedError("not signed in as an approver, or the sign-in has expired");
  }
  if (csrf.empty() || !ConstantTimeEquals(csrf, session->csrf)) {
    return PermissionDeniedError(
        "this form was not sent from the page Custody showed (CSRF check failed)");
  }
  return std::move(session->person);
}

AuthorizationServer::Registration AuthorizationServer::RegisterClient(const std::string& body) {
  namespace json = boost::json;
  if (registry_ == nullptr) {
    return {404, R"({"error":"invalid_request","error_description":"registration is off"})"};
  }
  DynamicClientRegistry::Error error;
  auto r = registry_->Register(body, Now(), &error);
  if (!r.ok()) {
    return {400, json::serialize(json::object{{"error", error.error},
                                              {"error_description", error.description}})};
  }
  if (!Record(events::Build(events::OAuthClientRegister{.event_id = ids_.NextString(),
                                                        .time = FormatRfc3339Millis(clock_.Now()),
                                                        .client_id = r->client.client_id,
                                                        .client_name = r->client.name,
                                                        .redirect_uris = r->client.redirect_uris}))
           .ok()) {
    return {503, R"({"error":"temporarily_unavailable"})"};
  }
  json::array uris;
  for (const std::string& u : r->client.redirect_uris) uris.emplace_back(u);
  json::object o{{"client_id", r->client.client_id},
                 {"client_id_issued_at", r->issued_at},
                 {"client_name", r->client.name},
                 {"redirect_uris", uris},
                 {"grant_types", json::array{"authorization_code", "refresh_token"}},
                 {"response_types", json::array{"code"}},
                 {"token_endpoint_auth_method", "none"}};
  return {201, json::serialize(o)};
}

Status AuthorizationServer::RevokeConsent(const std::string& initiator_issuer,
                                          const std::string& initiator,
                                          const std::string& client_id, const std::string& by) {
  ASSIGN_OR_RETURN(identity::Consent c, store_.GetConsent(initiator_issuer, initiator, client_id));
  RETURN_IF_ERROR(store_.DeleteConsent(initiator_issuer, initiator, client_id));
  return Record(events::Build(
      events::OAuthConsent{.event_id = ids_.NextString(),
                           .time = FormatRfc3339Millis(clock_.Now()),
                           .requested_by = by,
                           .decision = "revoked",
                           .initiator = events::Initiator{initiator, initiator_issuer, true, ""},
                           .client_id = client_id,
                           .agent = c.agent,
                           .scopes = c.scopes}));
}

// ---------------------------------------------------------------------------------------------
// POST /oauth2/token

OAuthResult<CodeTokenAnswer> AuthorizationServer::Token(const CodeTokenRequest& req) {
  using R = OAuthResult<CodeTokenAnswer>;
  R r;
  if (req.client_id.empty()) {
    r = R::Fail("invalid_request", "client_id is required (public clients authenticate with it)");
  } else if (req.client_authenticated_otherwise) {
    r = R::Fail("invalid_client",
                "clients of the authorization code flow are public "
                "(token_endpoint_auth_method none)",
                401);
  } else if (req.grant_type == kAuthorizationCodeGrant) {
    r = CodeGrant(req);
  } else {
    r = RefreshGrant(req);
  }
  if (!r.ok() && r.error.error != "server_error") RecordRefusal(req, r.error);
  return r;
}

void AuthorizationServer::RecordRefusal(const CodeTokenRequest& req, const OAuthError& error) {
  int64_t unrecorded = 0;
  {
    int64_t now = Now();
    MutexLock lock(mu_);
    if (now >= refusal_window_start_ + 60) {
      refusal_window_start_ = now;
      refusals_recorded_ = 0;
      refusal_flood_noticed_ = false;
    }
    if (refusals_recorded_ >= options_.refusal_events_per_minute) {
      // Counted, not recorded: the next refusal recorded carries the count. Logged once a
      // minute.
      ++refusals_unrecorded_;
      const bool notice = !std::exchange(refusal_flood_noticed_, true);
      lock.Unlock();
      if (notice) {
        errors_.Report(
            "identity.oauth_refusal_flood",
            UnavailableError("more than " + std::to_string(options_.refusal_events_per_minute) +
                             " token refusals a minute: the rest are counted, not "
                             "recorded one by one"));
      }
      return;
    }
    ++refusals_recorded_;
    unrecorded = std::exchange(refusals_unrecorded_, 0);
  }
  events::TokenRefuse e;
  e.unrecorded = unrecorded;
  e.event_id = ids_.NextString();
  e.time = FormatRfc3339Millis(clock_.Now());
  e.grant_type = Bounded(req.grant_type);
  e.client_id = Bounded(req.client_id);
  e.authenticated = false;
  e.client_auth = "none";
  e.audience = Bounded(req.resource);
  e.scope = Bounded(req.scope);
  e.error = error.error;
  e.reason = Bounded(error.description);
  (void)Record(events::Build(e));
}

OAuthResult<CodeTokenAnswer> AuthorizationServer::CodeGrant(const CodeTokenRequest& req) {
  using R = OAuthResult<CodeTokenAnswer>;
  if (req.code.empty()) return R::Fail("invalid_request", "code is required");
  const std::string hash = HexSha256(req.code);
  int64_t now = Now();
  // Single use across every node: whatever happens next, this code is spent.
  auto redeemed = store_.RedeemAuthorizationCode(hash);
  if (!redeemed.ok()) {
    if (redeemed.status().code() == StatusCode::kNotFound) {
      return R::Fail("invalid_grant", "unknown or expired authorization code");
    }
    errors_.Report("identity.code_redeem", redeemed.status());
    return R::Fail("server_error", "cannot look the authorization code up", 500);
  }
  const AuthorizationCode& c = redeemed->code;
  const SignedInPerson person{c.subject, c.issuer, c.name, c.email, c.groups};
  if (!redeemed->first) {
    // Past the grace period a used code would have been purged: answered as unknown, whether or
    // not a purge has run yet.
    if (c.expires_at + CodeReuseGrace() <= now) {
      return R::Fail("invalid_grant", "unknown or expired authorization code");
    }
    // OAuth 2.1 §4.1.3: the code was already redeemed; what its first use issued is revoked.
    std::vector<std::string> revoked;
    if (!c.family_id.empty()) {
      revoked = RevokeFamily(c.family_id, "authorization code reused");
    } else if (!c.sid.empty()) {
      auto r = tokens_.RevokeSession(c.sid, "authorization code reused", "oauth:code-reuse");
      if (r.ok()) revoked = *r;
    }
    (void)Record(events::Build(events::OAuthReuse{.event_id = ids_.NextString(),
                                                  .time = FormatRfc3339Millis(clock_.Now()),
                                                  .what = "authorization_code",
                                                  .client_id = c.client_id,
                                                  .agent = c.agent,
                                                  .family_id = c.family_id,
                                                  .code_id = c.code_id,
                                                  .initiator = InitiatorOf(person),
                                                  .revoked_sessions = revoked}));
    return R::Fail("invalid_grant",
                   "authorization code was already used; the tokens issued from it are revoked");
  }
  if (c.expires_at <= now) return R::Fail("invalid_grant", "authorization code expired");
  if (req.client_id != c.client_id) {
    return R::Fail("invalid_grant", "authorization code was issued to another client");
  }
  if (req.redirect_uri != c.redirect_uri) {
    return R::Fail("invalid_grant", "redirect_uri does not match the authorization request");
  }
  if (req.code_verifier.empty()) return R::Fail("invalid_grant", "code_verifier is required");
  if (!IsPkceVerifier(req.code_verifier) ||
      !ConstantTimeEquals(PkceS256(req.code_verifier), c.code_challenge)) {
    return R::Fail("invalid_grant", "code_verifier does not match the code_challenge");
  }
  if (!req.resource.empty() && req.resource != c.resource) {
    return R::Fail("invalid_target", "resource does not match the authorization request");
  }
  auto agent = tokens_.GetAgent(c.agent);
  if (!agent.ok()) return R::Fail("invalid_grant", "the client's agent is not registered");
  ScopeSet scopes = Intersect(c.scopes, agent->grants);
  auto out = IssueTokens(*agent, c.client_id, person, scopes, c.resource, nullptr, c.code_id);
  if (!out.ok()) return out;
  auto raced = store_.NoteAuthorizationCodeIssued(hash, out.value->token.sid, out.value->family_id);
  if (!raced.ok()) {
    // Unnoted, a reuse could not revoke these tokens: they do not leave.
    errors_.Report("identity.code_note", raced.status());
    RevokeFamily(out.value->family_id, "authorization code issuance not stored");
    return R::Fail("server_error", "cannot store the authorization code's use", 500);
  }
  if (*raced) {
    // Reused (at this node or another) while this first use was being answered: revoke what it
    // just issued.
    RevokeFamily(out.value->family_id, "authorization code reused");
    return R::Fail("invalid_grant", "authorization code was used twice; its tokens are revoked");
  }
  return out;
}

std::vector<std::string> AuthorizationServer::RevokeFamily(const std::string& family_id,
                                                           const std::string& reason) {
  std::vector<std::string> revoked;
  auto f = store_.RevokeRefreshFamily(family_id, reason, Now());
  if (!f.ok()) {
    errors_.Report("identity.refresh_family_revoke", f.status());
    return revoked;
  }
  for (const std::string& sid : f->sessions) {
    auto r = tokens_.RevokeSession(sid, reason, "oauth:" + f->client_id);
    if (r.ok()) {
      revoked.insert(revoked.end(), r->begin(), r->end());
    } else {
      errors_.Report("identity.refresh_session_revoke", r.status());
    }
  }
  return revoked;
}

OAuthResult<CodeTokenAnswer> AuthorizationServer::IssueTokens(
    const Agent& agent, const std::string& client_id, const SignedInPerson& person,
    const ScopeSet& scopes, const std::string& resource, const RefreshFamily* family,
    const std::string& code_id) {
  using R = OAuthResult<CodeTokenAnswer>;
  SignedInSessionRequest s;
  s.initiator = person.subject;
  s.initiator_issuer = person.issuer;
  s.scopes = scopes;
  s.audience = resource;
  s.client_id = client_id;
  s.instance = family != nullptr ? family->instance : "";  // an authorization: a new instance
  s.requested_by = "oauth:" + client_id;
  auto issued = tokens_.IssueSignedInSession(agent, s);
  if (!issued.ok()) return R{std::nullopt, issued.error};
  CodeTokenAnswer answer;
  answer.token = std::move(*issued.value);
  answer.refresh_token = "rt_" + RandomToken(32);
  const std::string hash = HexSha256(answer.refresh_token);
  int64_t now = Now();
  std::string family_id;
  std::string instance;
  if (family == nullptr) {
    auto session = store_.GetSession(answer.token.sid);
    RefreshFamily f;
    f.family_id = ids_.NextString();
    f.client_id = client_id;
    f.agent = agent.name;
    f.instance = session.ok() ? session->instance : "";
    f.initiator = person.subject;
    f.initiator_issuer = person.issuer;
    f.scopes = scopes;
    f.resource = resource;
    f.created_at = now;
    f.expires_at = now + options_.refresh_lifetime_s;
    f.sessions = {answer.token.sid};
    family_id = f.family_id;
    instance = f.instance;
    if (Status st = store_.CreateRefreshFamily(f, hash); !st.ok()) {
      errors_.Report("identity.refresh_family_store", st);
      (void)tokens_.RevokeSession(answer.token.sid, "refresh token not stored",
                                  "oauth:" + client_id);
      return R::Fail("server_error", "cannot store the refresh token", 500);
    }
  } else {
    // The session joins the family with the rotation (RefreshGrant): one commit per refresh.
    family_id = family->family_id;
    instance = family->instance;
  }
  answer.family_id = family_id;
  if (!Record(events::Build(events::OAuthTokenIssue{
                  .event_id = ids_.NextString(),
                  .time = FormatRfc3339Millis(clock_.Now()),
                  .grant_type =
                      std::string(family == nullptr ? kAuthorizationCodeGrant : kRefreshTokenGrant),
                  .client_id = client_id,
                  .agent = agent.name,
                  .instance = instance,
                  .sid = answer.token.sid,
                  .jti = answer.token.jti,
                  .family_id = family_id,
                  .code_id = code_id,
                  .initiator = InitiatorOf(person),
                  .scopes = scopes,
                  .exp = Now() + answer.token.expires_in}))
           .ok()) {
    // Nothing leaves unrecorded: the session and (for a new family) the family are revoked.
    if (family == nullptr) {
      RevokeFamily(family_id, "issuance not recorded");
    } else {
      (void)tokens_.RevokeSession(answer.token.sid, "issuance not recorded", "oauth:" + client_id);
    }
    return R::Fail("temporarily_unavailable", "cannot record the issuance", 503);
  }
  R r;
  r.value = std::move(answer);
  return r;
}

OAuthResult<CodeTokenAnswer> AuthorizationServer::RefreshGrant(const CodeTokenRequest& req) {
  using R = OAuthResult<CodeTokenAnswer>;
  if (req.refresh_token.empty()) return R::Fail("invalid_request", "refresh_token is required");
  const std::string hash = HexSha256(req.refresh_token);
  auto found = store_.FindRefreshToken(hash);
  if (!found.ok()) {
    if (found.status().code() == StatusCode::kNotFound) {
      return R::Fail("invalid_grant", "unknown refresh token");
    }
    errors_.Report("identity.refresh_lookup", found.status());
    return R::Fail("server_error", "cannot look the refresh token up", 500);
  }
  RefreshFamily& f = found->family;
  if (req.client_id != f.client_id) {
    return R::Fail("invalid_grant", "refresh token was issued to another client");
  }
  SignedInPerson person{f.initiator, f.initiator_issuer, "", ""};
  auto reused = [&]() {
    std::vector<std::string> revoked = RevokeFamily(f.family_id, "refresh token reused");
    (void)Record(events::Build(events::OAuthReuse{.event_id = ids_.NextString(),
                                                  .time = FormatRfc3339Millis(clock_.Now()),
                                                  .what = "refresh_token",
                                                  .client_id = f.client_id,
                                                  .agent = f.agent,
                                                  .family_id = f.family_id,
                                                  .code_id = "",
                                                  .initiator = InitiatorOf(person),
                                                  .revoked_sessions = revoked}));
    return R::Fail("invalid_grant",
                   "refresh token was already used; its family and sessions are revoked");
  };
  if (f.revoked) return R::Fail("invalid_grant", "refresh token is revoked");
  if (!found->current) return reused();
  if (f.expires_at <= Now()) return R::Fail("invalid_grant", "refresh token expired");
  if (!req.resource.empty() && req.resource != f.resource) {
    return R::Fail("invalid_target", "resource does not match the authorization");
  }
  ScopeSet scopes = f.scopes;
  if (!req.scope.empty()) {
    auto requested = ParseScopes(req.scope);
    if (!requested.ok()) return R::Fail("invalid_scope", requested.status().message());
    ScopeSet tool_scopes = WithoutOidcScopes(std::move(*requested));  // as at /oauth2/authorize
    for (const std::string& s : tool_scopes) {
      if (!CoveredBy(s, f.scopes)) {
        return R::Fail("invalid_scope", "scope " + s + " was not granted by the authorization");
      }
    }
    if (!tool_scopes.empty()) scopes = std::move(tool_scopes);
  }
  auto agent = tokens_.GetAgent(f.agent);
  if (!agent.ok()) return R::Fail("invalid_grant", "the client's agent is not registered");
  scopes = Intersect(scopes, agent->grants);
  // The next token is chosen before the rotation, so the rotation is one compare-and-swap, and
  // it appends the new session to the family in the same transaction.
  auto answer = IssueTokens(*agent, f.client_id, person, scopes, f.resource, &f, "");
  if (!answer.ok()) return answer;
  Status rotated = store_.RotateRefreshToken(
      f.family_id, hash, HexSha256(answer.value->refresh_token), answer.value->token.sid);
  if (!rotated.ok()) {
    // The session just issued goes with the family either way.
    (void)tokens_.RevokeSession(answer.value->token.sid, "refresh token not rotated",
                                "oauth:" + f.client_id);
    if (rotated.code() == StatusCode::kFailedPrecondition) return reused();  // a concurrent use
    errors_.Report("identity.refresh_rotate", rotated);
    return R::Fail("server_error", "cannot rotate the refresh token", 500);
  }
  return answer;
}

}  // namespace custody::identity
