#include "identity/session_json.h"

#include <boost/json.hpp>

namespace custody::identity {

namespace json = boost::json;

json::object SessionJson(const Session& s) {
  json::array scopes;
  for (const auto& scope : s.scopes) scopes.emplace_back(scope);
  json::object o{
      {"sid", s.sid},
      {"parent_sid", s.parent_sid.empty() ? json::value(nullptr) : json::value(s.parent_sid)},
      {"root_sid", s.root_sid},
      {"depth", s.depth},
      {"agent", s.agent},
      {"instance", s.instance},
      {"initiator",
       {{"id", s.initiator},
        {"issuer", s.initiator_issuer},
        {"verification",
         s.verification == InitiatorVerification::kVerified ? "verified" : "asserted"},
        {"asserted_by", s.asserted_by}}},
      {"scopes", std::move(scopes)},
      {"objective_digest", s.objective_digest},
      {"txn", s.txn},
      {"jti", s.jti},
      {"created_at", s.created_at},
      {"expires_at", s.expires_at},
      {"status", s.revoked ? "revoked" : "active"}};
  if (s.revoked) {
    o["revoked_at"] = s.revoked_at;
    o["revoke_reason"] = s.revoke_reason;
  }
  return o;
}

}  // namespace custody::identity
