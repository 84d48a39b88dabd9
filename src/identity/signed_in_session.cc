// TokenService::IssueSignedInSession: the session an authorization code (or a refresh of it)
// starts for a person who signed in at the company IdP. The token is the one an RFC 8693
// exchange issues, so the gateway, policy, containment and investigations treat it alike.
#include <boost/json.hpp>

#include "crypto/sha256.h"
#include "events/identity_events.h"
#include "identity/spiffe_id.h"
#include "identity/token_service.h"

namespace custody::identity {

OAuthResult<IssuedToken> TokenService::IssueSignedInSession(const Agent& agent,
                                                            const SignedInSessionRequest& req) {
  namespace json = boost::json;
  using R = OAuthResult<IssuedToken>;
  if (agent.disabled) return R::Fail("invalid_grant", "agent " + agent.name + " is disabled");
  if (req.scopes.empty()) return R::Fail("invalid_scope", "no scope is left to grant");
  if (req.initiator.empty()) return R::Fail("invalid_grant", "no signed-in person");
  if (req.audience.empty()) return R::Fail("invalid_target", "no resource");
  int64_t now = Now();
  Session s;
  s.agent = agent.name;
  if (req.instance.empty()) {
    auto id = AgentInstanceSpiffeId(options_.trust_domain, agent.name, NewId());
    if (!id.ok()) return R::Fail("invalid_request", id.status().message());
    s.instance = *id;
  } else {
    s.instance = req.instance;
  }
  s.initiator = req.initiator;
  s.initiator_issuer = req.initiator_issuer;
  s.verification = InitiatorVerification::kVerified;
  s.depth = 0;
  s.max_depth = agent.max_delegation_depth;
  s.scopes = req.scopes;
  int64_t lifetime = req.lifetime_s > 0 ? std::min(req.lifetime_s, agent.max_token_lifetime_s)
                                        : agent.max_token_lifetime_s;
  int64_t exp = now + lifetime;
  s.sid = NewId();
  s.root_sid = s.sid;
  s.txn = NewId();
  s.jti = NewId();
  s.created_at = now;
  s.expires_at = exp;

  auto token = Sign("at+jwt",
                    SessionTokenClaims(s, req.audience, req.client_id,
                                       json::serialize(json::object{{"sub", s.instance}})),
                    exp);
  if (!token.ok()) {
    errors_.Report("identity.sign", token.status());
    return R::Fail("server_error", "cannot sign token", 500);
  }
  events::SessionStart e;
  e.event_id = NewId();
  e.time = FormatRfc3339Millis(clock_.Now());
  e.agent = s.agent;
  e.instance = s.instance;
  e.jti = s.jti;
  e.initiator = events::Initiator{s.initiator, s.initiator_issuer, true, ""};
  e.sid = s.sid;
  e.root_sid = s.root_sid;
  e.scopes = s.scopes;
  e.exp = exp;
  e.txn = s.txn;
  e.requested_by = req.requested_by;
  Issue issue{IssuedToken{*token, "Bearer", std::string(kTokenTypeAccessToken), exp - now,
                          JoinScopes(s.scopes), s.jti, s.sid, s.initiator},
              events::Build(e), exp, std::nullopt};
  if (Status stored = store_.CreateSession(s); !stored.ok()) {
    return R{std::nullopt, SessionNotStored(stored)};
  }
  Status recorded = Record(issue.event);
  return FinishIssue(std::move(issue), recorded);
}

}  // namespace custody::identity
