// TokenService::TokenAsync, the /oauth2/token request as a whole: its issuance answered once its
// event is durable, and the token.refuse event every refusal of it leaves in the ledger: an
// escalation attempt is evidence, not just an error.
#include <charconv>
#include <future>

#include "events/identity_events.h"
#include "identity/token_service.h"

namespace custody::identity {
namespace {

constexpr std::string_view kGrantTokenExchange = "urn:ietf:params:oauth:grant-type:token-exchange";
constexpr size_t kMaxRecordedChars = 256;

// What a client sent may be anything, and an unauthenticated client sends it: the ledger keeps
// at most kMaxRecordedChars of printable ASCII of each field (anything else becomes '?', so
// the event is always I-JSON and cannot carry control characters into a rendering).
std::string Bounded(std::string_view s) {
  std::string out;
  out.reserve(std::min(s.size(), kMaxRecordedChars + 3));
  for (char c : s.substr(0, kMaxRecordedChars)) out += c >= 0x20 && c < 0x7f ? c : '?';
  if (s.size() > kMaxRecordedChars) out += "...";
  return out;
}

}  // namespace

TokenService::~TokenService() {
  MutexLock lock(async_mu_);
  async_done_.Wait(async_mu_, [&]() REQUIRES(async_mu_) {
    return refusals_pending_ == 0 && issues_pending_ == 0;
  });
}

void TokenService::TokenAsync(const TokenRequest& req, TokenCallback done) {
  using R = OAuthResult<IssuedToken>;
  ExchangeFacts facts;
  auto client = AuthenticateClient(req.client_id, req.client_assertion_type, req.client_assertion,
                                   req.client_secret);
  if (!client.ok()) {
    RecordRefusal(req, nullptr, facts, client.error);
    return done(R{std::nullopt, client.error});
  }
  const Agent& agent = *client.value;
  OAuthResult<Issue> issue = [&]() -> OAuthResult<Issue> {
    int64_t requested_lifetime_s = 0;
    if (const std::string& lt = req.requested_lifetime; !lt.empty()) {
      auto [end, ec] = std::from_chars(lt.data(), lt.data() + lt.size(), requested_lifetime_s);
      if (ec != std::errc() || end != lt.data() + lt.size()) {
        return OAuthResult<Issue>::Fail("invalid_request", "bad requested_lifetime");
      }
    }
    if (req.grant_type == "client_credentials") {
      return PrepareSvid(agent, req.audience, requested_lifetime_s);
    }
    if (req.grant_type != kGrantTokenExchange) {
      return OAuthResult<Issue>::Fail("unsupported_grant_type", "grant_type not supported");
    }
    ExchangeRequest x;
    x.subject_token = req.subject_token;
    x.subject_token_type = req.subject_token_type;
    x.actor_token = req.actor_token;
    x.actor_token_type = req.actor_token_type;
    x.scope = req.scope;
    x.audience = req.audience;
    x.objective = req.objective;
    x.requested_lifetime_s = requested_lifetime_s;
    return PrepareExchange(agent, x, &facts);
  }();
  if (!issue.ok()) {
    // A server_error is Custody's failure, not the client's: it is reported where it happened.
    if (issue.error.error != "server_error") RecordRefusal(req, &agent, facts, issue.error);
    return done(R{std::nullopt, issue.error});
  }
  if (!issue.value->session) return RecordIssue(std::move(*issue.value), std::move(done));

  // An exchange: its session is stored first (concurrent exchanges share the store's
  // transaction), then its event recorded, then the answer.
  Session session = std::move(*issue.value->session);
  issue.value->session.reset();
  {
    MutexLock lock(async_mu_);
    ++issues_pending_;
  }
  store_.CreateSessionAsync(std::move(session),
                            [this, issue = std::move(*issue.value), done = std::move(done), req,
                             agent, facts](Status stored) mutable {
                              if (stored.ok()) {
                                RecordIssue(std::move(issue), std::move(done));
                              } else {
                                OAuthError error = SessionNotStored(stored);
                                if (error.error != "server_error")
                                  RecordRefusal(req, &agent, facts, error);
                                done(R{std::nullopt, std::move(error)});
                              }
                              MutexLock lock(async_mu_);
                              if (--issues_pending_ == 0) async_done_.NotifyAll();
                            });
}

OAuthResult<IssuedToken> TokenService::Token(const TokenRequest& req) {
  std::promise<OAuthResult<IssuedToken>> answer;
  auto f = answer.get_future();
  TokenAsync(req, [&answer](OAuthResult<IssuedToken> r) { answer.set_value(std::move(r)); });
  return f.get();
}

void TokenService::RecordIssue(Issue issue, TokenCallback done) {
  if (!options_.async_sink) {
    Status recorded = Record(issue.event);
    return done(FinishIssue(std::move(issue), recorded));
  }
  {
    MutexLock lock(async_mu_);
    ++issues_pending_;
  }
  std::string event = std::move(issue.event);
  // The answer goes from here, after the ledger's group commit: many requests share one fsync.
  options_.async_sink(event, [this, issue = std::move(issue), done = std::move(done)](Status s) {
    done(FinishIssue(issue, s));
    MutexLock lock(async_mu_);
    if (--issues_pending_ == 0) async_done_.NotifyAll();
  });
}

void TokenService::RecordRefusal(const TokenRequest& req, const Agent* client,
                                 const ExchangeFacts& facts, const OAuthError& error) {
  events::TokenRefuse e;
  e.event_id = NewId();
  e.time = FormatRfc3339Millis(clock_.Now());
  e.grant_type = Bounded(req.grant_type);
  e.client_id = client != nullptr ? client->name : Bounded(req.client_id);
  e.authenticated = client != nullptr;
  e.client_auth = !req.client_assertion.empty() ? "private_key_jwt"
                  : !req.client_secret.empty()  ? "client_secret"
                                                : "none";
  e.audience = Bounded(req.audience);
  e.scope = Bounded(req.scope);
  e.subject_token_type = Bounded(req.subject_token_type);
  e.actor_token_type = Bounded(req.actor_token_type);
  e.requested_lifetime = Bounded(req.requested_lifetime);
  e.instance = facts.instance;
  e.session = facts.session;
  e.error = error.error;
  e.reason = Bounded(error.description);
  std::string event = events::Build(e);

  if (!options_.async_sink) {
    if (Status s = Record(event); !s.ok()) errors_.Report("identity.refusal_record", s);
    return;
  }
  {
    MutexLock lock(async_mu_);
    if (refusals_pending_ >= options_.max_pending_refusals) {
      lock.Unlock();
      errors_.Report("identity.refusal_dropped",
                     UnavailableError("too many token refusals are being recorded; one is not"));
      return;
    }
    ++refusals_pending_;
  }
  options_.async_sink(event, [this](Status s) {
    if (!s.ok()) errors_.Report("identity.refusal_record", s);
    MutexLock lock(async_mu_);
    if (--refusals_pending_ == 0) async_done_.NotifyAll();
  });
}

}  // namespace custody::identity
