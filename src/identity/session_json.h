// The one JSON shape of a session, as every client sees it: the identity routes
// (/v1/sessions/{sid}, the session tree) and the investigation answers (trace paths, session
// events, which add members of their own) all write it with SessionJson. The shape is documented in
// docs/API.md.
#pragma once

#include <boost/json/fwd.hpp>

#include "identity/records.h"

namespace custody::identity {

// {"sid","parent_sid" (null for a root session),"root_sid","depth","agent","instance",
//  "initiator":{"id","issuer","verification":"verified"|"asserted","asserted_by"},"scopes",
//  "objective_digest","txn","jti","created_at","expires_at","status":"active"|"revoked"}
// plus "revoked_at" and "revoke_reason" when revoked. Times are Unix seconds.
boost::json::object SessionJson(const Session& s);

}  // namespace custody::identity
