// Transaction Tokens (draft-ietf-oauth-transaction-tokens-10, "Txn-Tokens") that Custody mints
// for one action at a time: what the MCP gateway hands a tool server with each call it forwards
// after an allowed decision, so the server learns who is behind the call (the initiator, `sub`)
// and through which agents (`act`), narrowed to that one action (`scope`). docs/IDENTITY.md,
// "Transaction Tokens", has the shape claim by claim.
//
// A Txn-Token is an ES256 JWS signed with Custody's current token-signing key (its kid is in
// /.well-known/jwks.json), header `typ` "txntoken+jwt", lifetime at most 60 s. It is minted by
// TokenService::MintTxnToken (defined in txn_token.cc). Plain values; thread-safe as TokenService.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

namespace custody::identity {

inline constexpr std::string_view kTxnTokenTyp = "txntoken+jwt";
// The draft asks for a short life; a tool call that takes longer still has its token checked
// when it arrives, which is when the server reads it.
inline constexpr int64_t kTxnTokenMaxLifetimeS = 60;

// What one Txn-Token says. Every string but act_json is required (InvalidArgument otherwise).
struct TxnTokenRequest {
  std::string audience;  // aud: the one recipient (an MCP server's audience)
  std::string txn;       // txn: the transaction (the gateway: the decision's action id)
  std::string subject;   // sub: the principal (the session's initiator)
  // act: the actor chain, as the session token carries it ({"sub":…,"act":{…}}); empty: none.
  std::string act_json;
  std::string scope;                           // scope: narrowed to this transaction
  std::string requesting_workload;             // req_wl: who asked Custody for the token
  std::map<std::string, std::string> tctx;     // tctx: immutable facts of the transaction
  std::map<std::string, std::string> rctx;     // rctx: the request's environment
  int64_t lifetime_s = kTxnTokenMaxLifetimeS;  // 1..kTxnTokenMaxLifetimeS
};

struct MintedTxnToken {
  std::string token;  // the compact JWS; a secret: never logged or recorded
  std::string jti;    // what may be logged or recorded instead
  std::string kid;
  int64_t iat = 0;
  int64_t exp = 0;
};

}  // namespace custody::identity
