#include "events/identity_events.h"

#include <boost/json.hpp>

#include "common/json_array.h"
#include "events/internal/parts_json.h"

namespace custody::events {

namespace json = boost::json;

std::string Build(const AgentRegister& e) {
  json::object o{{"kind", "agent.register"},
                 {"event_id", e.event_id},
                 {"time", e.time},
                 {"requested_by", e.requested_by},
                 {"agent",
                  {{"name", e.name},
                   {"environment", e.environment},
                   {"business_owner", e.business_owner},
                   {"technical_owner", e.technical_owner},
                   {"sponsor", e.sponsor},
                   {"revocation_contact", e.revocation_contact},
                   {"grants", StringArray(e.grants)},
                   {"permissions", StringArray(e.permissions)},
                   {"max_delegation_depth", e.max_delegation_depth},
                   {"max_token_lifetime_s", e.max_token_lifetime_s},
                   {"credential", e.credential}}}};
  return json::serialize(o);
}

std::string Build(const AgentUpdate& e) {
  json::object o{
      {"kind", "agent.update"},
      {"event_id", e.event_id},
      {"time", e.time},
      {"requested_by", e.requested_by},
      {"agent",
       {{"name", e.name}, {"environment", e.environment}, {"grants", StringArray(e.grants)}}}};
  return json::serialize(o);
}

std::string Build(const CredentialIssue& e) {
  json::object o{{"kind", "credential.issue"},
                 {"event_id", e.event_id},
                 {"time", e.time},
                 {"actor", {{"agent", e.agent}, {"instance", e.instance}, {"credential", e.jti}}},
                 {"credential",
                  {{"type", "jwt-svid"},
                   {"jti", e.jti},
                   {"exp", e.exp},
                   {"aud", json::array{json::value(e.audience)}}}},
                 {"requested_by", e.requested_by}};
  return json::serialize(o);
}

std::string Build(const SessionStart& e) {
  json::object o{{"kind", e.parent_sid.empty() ? "session.start" : "delegation"},
                 {"event_id", e.event_id},
                 {"time", e.time},
                 {"actor", internal::ActorJson(Actor{e.agent, e.instance, e.sid, e.jti})},
                 {"initiator", internal::InitiatorJson(e.initiator)},
                 {"session",
                  {{"sid", e.sid},
                   {"parent_sid", e.parent_sid},
                   {"root_sid", e.root_sid},
                   {"depth", e.depth},
                   {"scopes", StringArray(e.scopes)},
                   {"exp", e.exp},
                   {"objective_digest", e.objective_digest}}},
                 {"trace", {{"txn", e.txn}}},
                 {"requested_by", e.requested_by}};
  return json::serialize(o);
}

std::string Build(const Revocation& e) {
  const char* target = e.of == Revocation::Of::kSession ? "session"
                       : e.of == Revocation::Of::kAgent ? "agent"
                                                        : "credential";
  json::object o{{"kind", "revocation"},
                 {"event_id", e.event_id},
                 {"time", e.time},
                 {"requested_by", e.requested_by},
                 {"target", {{target, e.subject}}}};
  if (e.of != Revocation::Of::kCredential) {
    o["reason"] = e.reason;
    o["revoked_sessions"] = StringArray(e.revoked_sessions);
  }
  return json::serialize(o);
}

std::string Build(const KeyRotate& e) {
  json::object o{{"kind", "key.rotate"},
                 {"event_id", e.event_id},
                 {"time", e.time},
                 {"requested_by", e.requested_by},
                 {"kid", e.kid},
                 {"retired_kids", StringArray(e.retired_kids)},
                 {"publish_until", e.publish_until}};
  return json::serialize(o);
}

// The agent is named (and indexed) only once authenticated, and the session only once a subject
// token verified: an unauthenticated client cannot file refusals under someone else's name.
std::string Build(const TokenRefuse& e) {
  json::object o{
      {"kind", "token.refuse"},
      {"event_id", e.event_id},
      {"time", e.time},
      {"actor", {{"agent", e.authenticated ? e.client_id : ""}, {"instance", e.instance}}},
      {"target", {{"session", e.session}}},
      {"client",
       {{"id", e.client_id},
        {"authenticated", e.authenticated},
        {"authentication", e.client_auth}}},
      {"request",
       {{"grant_type", e.grant_type},
        {"audience", e.audience},
        {"scope", e.scope},
        {"subject_token_type", e.subject_token_type},
        {"actor_token_type", e.actor_token_type},
        {"requested_lifetime", e.requested_lifetime}}},
      {"refusal", {{"error", e.error}, {"reason", e.reason}}}};
  if (e.unrecorded > 0) o["refusal"].as_object()["unrecorded"] = e.unrecorded;
  return json::serialize(o);
}

// The authorization code flow. The agent (and, once there is one, the session) is the actor, so
// `ledger query --agent/--session` finds each step.
std::string Build(const OAuthSignIn& e) {
  json::object o{{"kind", "oauth.sign_in"},
                 {"event_id", e.event_id},
                 {"time", e.time},
                 {"actor", {{"agent", e.agent}}},
                 {"initiator", internal::InitiatorJson(e.initiator)},
                 {"client", {{"id", e.client_id}}}};
  return json::serialize(o);
}

// The same shape as oauth.sign_in (an empty agent: no agent acts), so one reader takes both.
std::string Build(const OAuthSignOut& e) {
  json::object o{{"kind", "oauth.sign_out"},
                 {"event_id", e.event_id},
                 {"time", e.time},
                 {"actor", {{"agent", ""}}},
                 {"initiator", internal::InitiatorJson(e.initiator)},
                 {"client", {{"id", e.client_id}}}};
  return json::serialize(o);
}

std::string Build(const OAuthConsent& e) {
  json::object o{{"kind", "oauth.consent"},
                 {"event_id", e.event_id},
                 {"time", e.time},
                 {"requested_by", e.requested_by},
                 {"decision", e.decision},
                 {"actor", {{"agent", e.agent}}},
                 {"initiator", internal::InitiatorJson(e.initiator)},
                 {"client", {{"id", e.client_id}}},
                 {"scopes", StringArray(e.scopes)}};
  return json::serialize(o);
}

std::string Build(const OAuthCodeIssue& e) {
  json::object o{{"kind", "oauth.code_issue"},
                 {"event_id", e.event_id},
                 {"time", e.time},
                 {"actor", {{"agent", e.agent}}},
                 {"initiator", internal::InitiatorJson(e.initiator)},
                 {"client", {{"id", e.client_id}, {"redirect_uri", e.redirect_uri}}},
                 {"code", {{"id", e.code_id}, {"exp", e.exp}}},
                 {"resource", e.resource},
                 {"scopes", StringArray(e.scopes)}};
  return json::serialize(o);
}

std::string Build(const OAuthTokenIssue& e) {
  json::object o{{"kind", "oauth.token_issue"},
                 {"event_id", e.event_id},
                 {"time", e.time},
                 {"grant_type", e.grant_type},
                 {"actor", internal::ActorJson(Actor{e.agent, e.instance, e.sid, e.jti})},
                 {"initiator", internal::InitiatorJson(e.initiator)},
                 {"client", {{"id", e.client_id}}},
                 {"family", e.family_id},
                 {"code", e.code_id},
                 {"scopes", StringArray(e.scopes)},
                 {"exp", e.exp}};
  return json::serialize(o);
}

std::string Build(const OAuthReuse& e) {
  json::object o{{"kind", "oauth.reuse"},
                 {"event_id", e.event_id},
                 {"time", e.time},
                 {"what", e.what},
                 {"actor", {{"agent", e.agent}}},
                 {"initiator", internal::InitiatorJson(e.initiator)},
                 {"client", {{"id", e.client_id}}},
                 {"family", e.family_id},
                 {"code", e.code_id},
                 {"revoked_sessions", StringArray(e.revoked_sessions)}};
  return json::serialize(o);
}

std::string Build(const OAuthClientRegister& e) {
  json::object o{{"kind", "oauth.client_register"},
                 {"event_id", e.event_id},
                 {"time", e.time},
                 {"client",
                  {{"id", e.client_id},
                   {"name", e.client_name},
                   {"redirect_uris", StringArray(e.redirect_uris)}}}};
  return json::serialize(o);
}

}  // namespace custody::events
