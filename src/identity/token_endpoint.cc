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
  std::optional<AssertionJti> jti;
  auto client = VerifyClient(req.client_id, req.client_assertion_type, req.client_assertion,
                             req.client_secret, &jti);
  if (!client.ok()) {
    RecordRefusal(req, nullptr, ExchangeFacts{}, client.error);
    return done(R{std::nullopt, client.error});
  }
  auto prepare = [this, &req](const Agent& agent, ExchangeFacts* facts) -> OAuthResult<Issue> {
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
    return PrepareExchange(agent, x, facts);
  };
  if (!jti) {
    ExchangeFacts facts;
    OAuthResult<Issue> issue = prepare(*client.value, &facts);
    return FinishToken(req, *client.value, std::move(issue), facts, std::move(done));
  }

  // private_key_jwt: the assertion's jti is stored (IdentityStore::UseAssertionJtiAsync: many
  // requests' jtis share one transaction) while the grant is validated and signed here. Whichever
  // of the two ends last goes on, so nothing is stored, recorded or answered before the jti is
  // durable; a token signed for a refused jti never leaves this process.
  struct Join {
    Mutex mu;
    bool first_arrived GUARDED_BY(mu) = false;
    bool jti_arrived GUARDED_BY(mu) = false;
    Status jti;  // written before the jti's arrival
    // Written before the request thread's arrival.
    TokenRequest req;
    std::optional<Agent> agent;
    std::optional<OAuthResult<Issue>> issue;
    ExchangeFacts facts;
    TokenCallback done;
  };
  auto join = std::make_shared<Join>();
  join->req = req;
  join->agent = std::move(*client.value);
  join->done = std::move(done);
  // The second to arrive answers: a refused jti as the refused authentication it is.
  auto go_on = [this](Join& j) {
    if (!j.jti.ok()) {
      OAuthError error = JtiNotRecorded(j.jti);
      if (error.error != "server_error") RecordRefusal(j.req, nullptr, ExchangeFacts{}, error);
      return j.done(R{std::nullopt, std::move(error)});
    }
    FinishToken(j.req, *j.agent, std::move(*j.issue), j.facts, std::move(j.done));
  };
  {
    MutexLock lock(async_mu_);
    ++issues_pending_;
  }
  store_.UseAssertionJtiAsync(jti->key, jti->exp, [this, join, go_on](Status stored) {
    join->jti = std::move(stored);
    bool last = false;
    {
      MutexLock lock(join->mu);
      last = join->first_arrived;
      join->first_arrived = join->jti_arrived = true;
    }
    if (last) go_on(*join);
    MutexLock lock(async_mu_);
    if (--issues_pending_ == 0) async_done_.NotifyAll();
  });
  bool refused_already = false;
  {
    MutexLock lock(join->mu);
    refused_already = join->jti_arrived && !join->jti.ok();
  }
  // A replay refused at once (its first use still in flight) is not worth a signature.
  join->issue = refused_already ? OAuthResult<Issue>::Fail("invalid_client", "replay")
                                : prepare(*join->agent, &join->facts);
  bool last = false;
  {
    MutexLock lock(join->mu);
    last = join->first_arrived;
    join->first_arrived = true;
  }
  if (last) go_on(*join);
}

void TokenService::FinishToken(const TokenRequest& req, const Agent& agent,
                               OAuthResult<Issue> issue, const ExchangeFacts& facts,
                               TokenCallback done) {
  using R = OAuthResult<IssuedToken>;
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
