// The authorization code flow's stored values (identity/authorization_server.h): authorization
// codes, refresh token families and remembered consents. Plain values; store::IdentityStore keeps
// them in identity.db so that they survive a restart. A refresh token itself is never stored: only
// its SHA-256.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "identity/scopes.h"

namespace custody::identity {

// One authorization (a code redeemed once) and every refresh token rotated from it. Each refresh
// starts a new session of the same agent instance; reuse of a rotated-out refresh token revokes
// the family and every session in `sessions`.
struct RefreshFamily {
  std::string family_id;
  std::string client_id;         // the OAuth client
  std::string agent;             // the registered agent the client acts as
  std::string instance;          // the SPIFFE ID of the agent instance this authorization started
  std::string initiator;         // the signed-in person (sub at the IdP)
  std::string initiator_issuer;  // the IdP's issuer
  ScopeSet scopes;
  std::string resource;  // RFC 8707: the audience of every access token of the family
  int64_t created_at = 0;
  int64_t expires_at = 0;  // no refresh after this
  bool revoked = false;
  int64_t revoked_at = 0;
  std::string revoke_reason;
  std::vector<std::string> sessions;  // sids issued from the family, oldest first
};

// What looking a refresh token up found: its family, and whether it is the family's current
// token (false: it was rotated out, so presenting it again is reuse).
struct RefreshLookup {
  RefreshFamily family;
  bool current = false;
};

// An authorization code issued at /oauth2/authorize, redeemed once at POST /oauth2/token. Kept in
// the identity store so that every node redeems it (the token request is server to server: no
// browser stickiness pins it to the node that issued the code); only its SHA-256 is the key.
struct AuthorizationCode {
  std::string code_id;  // the code's id in events (never the code)
  std::string client_id, redirect_uri, code_challenge, resource, agent;
  ScopeSet scopes;
  // The signed-in person (identity/login.h SignedInPerson).
  std::string subject, issuer, name, email;
  std::vector<std::string> groups;
  int64_t expires_at = 0;
  bool used = false;
  std::string sid, family_id;  // what the first use issued ("" until noted)
};

// What redeeming a code found: the code (its sid and family as noted so far), and whether this
// redemption was the first (false: the code was used before, so this is reuse).
struct CodeRedemption {
  AuthorizationCode code;
  bool first = false;
};

// A person's consent to a client acting as its agent with these scopes; remembered until revoked.
struct Consent {
  std::string initiator_issuer;
  std::string initiator;
  std::string client_id;
  std::string agent;
  ScopeSet scopes;
  int64_t granted_at = 0;
};

}  // namespace custody::identity
