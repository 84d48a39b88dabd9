// Transaction Tokens (draft-ietf-oauth-transaction-tokens-10, "Txn-Tokens") that Custody mints
// for one action at a time: what the MCP gateway hands a tool server with each call it forwards
// after an allowed decision, so the server learns who is behind the call (the initiator, `sub`)
// and through which agents (`act`), narrowed to that one action (`scope`). docs/IDENTITY.md,
// "Transaction Tokens", has the shape claim by claim.
//
// A Txn-Token is an ES256 JWS signed with Custody's current token-signing key (its kid is in
// /.well-known/jwks.json), header `typ` "txntoken+jwt", lifetime at most 60 s. It is minted by
// TokenService::MintTxnToken (defined in txn_token.cc). Plain values; thread-safe as TokenService.
// TxnTokenSeries: the tokens of one transaction whose request is sent more than once.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "common/clock.h"
#include "common/mutex.h"
#include "common/status.h"

namespace custody::identity {

class TokenService;  // identity/token_service.h

inline constexpr std::string_view kTxnTokenTyp = "txntoken+jwt";
// The draft asks for a short life; a tool call that takes longer still has its token checked
// when it arrives, which is when the server reads it.
inline constexpr int64_t kTxnTokenMaxLifetimeS = 60;
// A token with less than this left is not sent: the server reads it on arrival, and a send
// that then waits for a connection or a new session must still find it valid.
inline constexpr int64_t kTxnTokenMinRemainingS = 10;

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

// The Transaction Tokens of one transaction whose request may be sent more than once: after an
// HTTP 404 (the server's session expired) and in each round of a 2026-07-28 input_required
// exchange, which a person may answer minutes later, long after a 60 s token expired. Every
// token of the series says the same (the request given to Start: txn, sub, act, scope, aud,
// tctx, rctx); only iat, exp and jti differ.
//
// Policy, one token per send: the first send gets the token minted by Start (minted with the
// decision, so that a failure refuses the call before anything is sent) when it still has
// kTxnTokenMinRemainingS left; every later send gets a fresh one. Re-minting per send rather
// than only near expiry costs one signature per resend (rare) and keeps each jti to one
// delivery, so a server that refuses a jti seen before accepts every send.
//
// Thread-safe. Holds `tokens` and `clock`, which must outlive it (the gateway's own, which
// outlive the gateway and its upstreams).
class TxnTokenSeries {
 public:
  // Mints the first token. InvalidArgument / Internal as MintTxnToken.
  static Result<std::shared_ptr<TxnTokenSeries>> Start(TokenService& tokens, const Clock& clock,
                                                       TxnTokenRequest request);
  // The token for one send (a secret: never logged), as the policy above says. An error when a
  // fresh one cannot be minted: the request must then not be sent.
  Result<std::string> ForSend() EXCLUDES(mu_);
  // The jti of the last token minted (the one the last send carried, once sent): what the
  // ledger records. Every token of the series has the same txn.
  std::string last_jti() const EXCLUDES(mu_);
  int64_t minted() const EXCLUDES(mu_);  // tokens minted so far (1 after Start)

  TxnTokenSeries(TokenService& tokens, const Clock& clock, TxnTokenRequest request,
                 MintedTxnToken first);

 private:
  TokenService& tokens_;
  const Clock& clock_;
  const TxnTokenRequest request_;
  mutable Mutex mu_;
  std::string held_ GUARDED_BY(mu_);  // the first token, until its send (or it is too old)
  int64_t held_exp_ GUARDED_BY(mu_) = 0;
  std::string last_jti_ GUARDED_BY(mu_);
  int64_t minted_ GUARDED_BY(mu_) = 1;
};

}  // namespace custody::identity
