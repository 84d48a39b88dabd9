// Typed builders for the identity events TokenService records: agent.register, agent.update,
// credential.issue (a JWT-SVID for a new agent instance), session.start and delegation,
// revocation (of a session tree, of an agent's sessions, or of one credential), key.rotate and
// token.refuse (a refused /oauth2/token request); and the authorization code flow's steps
// (identity/authorization_server.h): oauth.sign_in, oauth.sign_out, oauth.consent,
// oauth.code_issue, oauth.token_issue, oauth.reuse and oauth.client_register. Never a token, code,
// secret or verifier: codes and refresh token families are named by ids of their own. Each kind is
// built here and nowhere else; events_test.cc pins the bytes of each.
//
// Each builder returns the event's JSON text, which is what the identity event sink takes
// (identity/token_service.h); the Recorder canonicalizes it and derives its index columns
// (events/columns.h). Plain types only: identity depends on events, never the reverse, so agents,
// environments and sessions arrive as strings and integers. No Boost.JSON here.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "events/event_parts.h"

namespace custody::events {

struct AgentRegister {
  std::string event_id, time, requested_by;
  std::string name, environment;  // "dev", "staging" or "prod"
  std::string business_owner, technical_owner, sponsor, revocation_contact;
  std::vector<std::string> grants, permissions;
  int64_t max_delegation_depth = 0, max_token_lifetime_s = 0;
  std::string credential;  // "private_key_jwt" or "client_secret"
};

struct AgentUpdate {
  std::string event_id, time, requested_by;
  std::string name, environment;
  std::vector<std::string> grants;
};

// A JWT-SVID issued to a new instance of an agent (there is no session yet).
struct CredentialIssue {
  std::string event_id, time;
  std::string agent, instance;  // instance: the SVID's SPIFFE ID
  std::string jti;
  int64_t exp = 0;
  std::string audience;
  std::string requested_by;
};

// A root session (kind session.start) or a delegated one (kind delegation: parent_sid is set).
// Its actor is {agent, instance, sid, jti}.
struct SessionStart {
  std::string event_id, time;
  std::string agent, instance, jti;
  Initiator initiator;
  std::string sid, parent_sid, root_sid;
  int64_t depth = 0;
  std::vector<std::string> scopes;
  int64_t exp = 0;
  std::string objective_digest;  // hex SHA-256, "" when none was given
  std::string txn;
  std::string requested_by;
};

// What was revoked: a session and its descendants, every session of an agent (it was disabled),
// or one credential. A credential's revocation carries no reason and no revoked_sessions.
struct Revocation {
  enum class Of { kSession, kAgent, kCredential };
  std::string event_id, time, requested_by;
  Of of = Of::kSession;
  std::string subject;  // the sid, the agent's name or the jti
  std::string reason;
  std::vector<std::string> revoked_sessions;
};

struct KeyRotate {
  std::string event_id, time, requested_by;
  std::string kid;  // the new signing key's
  std::vector<std::string> retired_kids;
  int64_t publish_until = 0;  // Unix seconds: the retired keys stay published until then
};

// A refused /oauth2/token request: what was asked, by which client, and why it was refused.
// Never a token, secret or assertion: only their types, and what Custody had verified before it
// refused (the client, the actor token's instance, the subject token's session). The strings a
// client sent arrive already bounded and printable (TokenService sanitizes them).
struct TokenRefuse {
  std::string event_id, time;
  std::string grant_type;
  std::string client_id;       // as the client sent it
  bool authenticated = false;  // client authentication succeeded (client_id is then the agent)
  std::string client_auth;     // "private_key_jwt", "client_secret" or "none"
  std::string audience, scope, subject_token_type, actor_token_type, requested_lifetime;
  std::string instance;  // the verified actor token's SPIFFE ID; "" if it was not verified
  std::string session;   // the verified subject token's session; "" if none was
  std::string error;     // the OAuth error code answered (RFC 6749 §5.2)
  std::string reason;    // the error_description answered
  // Refusals before this one that were counted but not recorded one by one (a flood past the
  // authorization server's refusal_events_per_minute); refusal.unrecorded, absent when 0.
  int64_t unrecorded = 0;
};

// A person signed in at the company IdP ([login]) during an authorization request: the IdP's ID
// token verified (iss, aud, exp, nonce). The person is a verified initiator.
struct OAuthSignIn {
  std::string event_id, time;
  Initiator initiator;
  std::string client_id;  // the OAuth client the person is authorizing
  std::string agent;      // the agent it acts as
};

// A person signed out of one of Custody's own pages (an approver's POST
// /approvals/{id}/sign-out): the person as the IdP verified them at sign-in, and the pages
// (client) signed out of. Never the session's cookie, its hash or its CSRF token.
struct OAuthSignOut {
  std::string event_id, time;
  Initiator initiator;
  std::string client_id;  // the pages signed out of: custody:approvals
};

// A consent decision: "granted" (on the consent page), "denied", "remembered" (an earlier
// consent covered the request, no page shown) or "revoked" (by an operator).
struct OAuthConsent {
  std::string event_id, time, requested_by;
  std::string decision;
  Initiator initiator;
  std::string client_id, agent;
  std::vector<std::string> scopes;
};

// An authorization code was issued to a client's redirect URI (named by code_id, never the code).
struct OAuthCodeIssue {
  std::string event_id, time;
  std::string code_id, client_id, agent, redirect_uri, resource;
  Initiator initiator;
  std::vector<std::string> scopes;
  int64_t exp = 0;
};

// Tokens issued by grant_type=authorization_code (code_id set) or refresh_token: the session
// started for it and the refresh token family (named by family_id, never a token).
struct OAuthTokenIssue {
  std::string event_id, time;
  std::string grant_type;  // "authorization_code" or "refresh_token"
  std::string client_id, agent, instance, sid, jti, family_id, code_id;
  Initiator initiator;
  std::vector<std::string> scopes;
  int64_t exp = 0;
};

// Reuse detected: an authorization code redeemed a second time, or a rotated-out refresh token
// presented again. What the first use issued is revoked: the family and its sessions.
struct OAuthReuse {
  std::string event_id, time;
  std::string what;  // "authorization_code" or "refresh_token"
  std::string client_id, agent, family_id, code_id;
  Initiator initiator;
  std::vector<std::string> revoked_sessions;
};

// A client registered itself (RFC 7591 Dynamic Client Registration): its id, name and redirect
// URIs.
struct OAuthClientRegister {
  std::string event_id, time;
  std::string client_id, client_name;
  std::vector<std::string> redirect_uris;
};

std::string Build(const AgentRegister& e);
std::string Build(const AgentUpdate& e);
std::string Build(const CredentialIssue& e);
std::string Build(const SessionStart& e);
std::string Build(const Revocation& e);
std::string Build(const KeyRotate& e);
std::string Build(const TokenRefuse& e);
std::string Build(const OAuthSignIn& e);
std::string Build(const OAuthSignOut& e);
std::string Build(const OAuthConsent& e);
std::string Build(const OAuthCodeIssue& e);
std::string Build(const OAuthTokenIssue& e);
std::string Build(const OAuthReuse& e);
std::string Build(const OAuthClientRegister& e);

}  // namespace custody::events
