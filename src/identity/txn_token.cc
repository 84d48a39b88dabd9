// TokenService::MintTxnToken: a Transaction Token (identity/txn_token.h), signed as every other
// Custody token is, with the current ES256 key.
#include "identity/txn_token.h"

#include <boost/json.hpp>

#include "common/encoding.h"
#include "common/json_parse.h"
#include "identity/token_service.h"

namespace custody::identity {
namespace {

namespace json = boost::json;

json::object StringObject(const std::map<std::string, std::string>& members) {
  json::object o;
  for (const auto& [k, v] : members) o[k] = v;
  return o;
}

}  // namespace

Result<MintedTxnToken> TokenService::MintTxnToken(const TxnTokenRequest& request) {
  struct Required {
    std::string_view claim;
    const std::string& value;
  };
  for (const Required& r : {Required{"aud", request.audience}, Required{"txn", request.txn},
                            Required{"sub", request.subject}, Required{"scope", request.scope},
                            Required{"req_wl", request.requesting_workload}}) {
    if (r.value.empty()) {
      return InvalidArgumentError("a transaction token needs " + std::string(r.claim));
    }
  }
  if (request.lifetime_s < 1 || request.lifetime_s > kTxnTokenMaxLifetimeS) {
    return InvalidArgumentError("a transaction token lives 1 to " +
                                std::to_string(kTxnTokenMaxLifetimeS) + " s");
  }
  json::value act;
  if (!request.act_json.empty()) {
    boost::system::error_code ec;
    act = ParseJson(request.act_json, ec);
    if (ec || !act.is_object()) {
      return InvalidArgumentError("a transaction token's act must be a JSON object");
    }
  }
  MintedTxnToken out;
  out.jti = NewId();
  out.iat = Now();
  out.exp = out.iat + request.lifetime_s;
  // Member names as draft-ietf-oauth-transaction-tokens-10 §4.2 has them; jti (RFC 7519) so
  // that the issuance can be named without the token.
  json::object claims{
      {"iss", options_.issuer}, {"aud", request.audience}, {"iat", out.iat},
      {"exp", out.exp},         {"jti", out.jti},          {"txn", request.txn},
      {"sub", request.subject}, {"scope", request.scope},  {"req_wl", request.requesting_workload}};
  if (act.is_object()) claims["act"] = std::move(act);
  if (!request.tctx.empty()) claims["tctx"] = StringObject(request.tctx);
  if (!request.rctx.empty()) claims["rctx"] = StringObject(request.rctx);
  auto token = Sign(std::string(kTxnTokenTyp), json::serialize(claims), out.exp);
  if (!token.ok()) {
    errors_.Report("identity.sign", token.status());
    return InternalError("cannot sign a transaction token");
  }
  out.token = std::move(*token);
  // The kid Sign used (the current key may have rotated since we last looked).
  if (auto header = Base64UrlDecode(std::string_view(out.token).substr(0, out.token.find('.')));
      header.ok()) {
    boost::system::error_code ec;
    json::value h = ParseJson(AsString(*header), ec);
    if (!ec && h.is_object()) {
      if (const json::value* kid = h.as_object().if_contains("kid"); kid && kid->is_string()) {
        out.kid = std::string(kid->get_string());
      }
    }
  }
  return out;
}

Result<std::shared_ptr<TxnTokenSeries>> TxnTokenSeries::Start(TokenService& tokens,
                                                              const Clock& clock,
                                                              TxnTokenRequest request) {
  ASSIGN_OR_RETURN(MintedTxnToken first, tokens.MintTxnToken(request));
  return std::make_shared<TxnTokenSeries>(tokens, clock, std::move(request), std::move(first));
}

TxnTokenSeries::TxnTokenSeries(TokenService& tokens, const Clock& clock, TxnTokenRequest request,
                               MintedTxnToken first)
    : tokens_(tokens),
      clock_(clock),
      request_(std::move(request)),
      held_(std::move(first.token)),
      held_exp_(first.exp),
      last_jti_(std::move(first.jti)) {}

Result<std::string> TxnTokenSeries::ForSend() {
  {
    MutexLock lock(mu_);
    if (!held_.empty()) {
      std::string first = std::exchange(held_, "");
      const int64_t now =
          std::chrono::duration_cast<std::chrono::seconds>(clock_.Now().time_since_epoch()).count();
      if (held_exp_ - now >= kTxnTokenMinRemainingS) return first;
    }
  }
  // Signed outside the lock: concurrent sends of one request do not happen, but a slow
  // signature must not hold up last_jti() readers.
  ASSIGN_OR_RETURN(MintedTxnToken fresh, tokens_.MintTxnToken(request_));
  MutexLock lock(mu_);
  last_jti_ = std::move(fresh.jti);
  ++minted_;
  return std::move(fresh.token);
}

std::string TxnTokenSeries::last_jti() const {
  MutexLock lock(mu_);
  return last_jti_;
}

int64_t TxnTokenSeries::minted() const {
  MutexLock lock(mu_);
  return minted_;
}

}  // namespace custody::identity
