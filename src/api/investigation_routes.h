// HTTP routes for investigations (reader or admin token; all GET):
//   /v1/trace/{event_id}[?format=tree]          who initiated, who executed, what allowed it
//   /v1/sessions/{sid}/events[?format=tree]     the session tree with its actions in order
//   /v1/blast-radius?kind=agent|session|user&id=…
//   /v1/review/{agent}[?since=…]                granted vs used scopes and credential templates
//   /v1/graph[?format=json|dot]
//   /v1/evidence/{sid}                          a custody-evidence/v1 bundle
// JSON answers unless format=tree (text/plain) or format=dot (text/vnd.graphviz).
#pragma once

#include <map>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/status.h"
#include "http/http.h"

namespace custody::ledger {
class Ledger;
}
namespace custody::identity {
class TokenService;
}
namespace custody::attribution {
class AttributionService;
}

namespace custody::api {

// The collaborators must outlive the router. `credential_levels`: the configured database
// credentials' access levels by database, for the review's unused_credential_templates.
Status AddInvestigationRoutes(
    http::Router& router, identity::TokenService& tokens, ledger::Ledger& ledger,
    attribution::AttributionService& attribution, const Clock& clock,
    std::map<std::string, std::vector<std::string>> credential_levels = {});

}  // namespace custody::api
