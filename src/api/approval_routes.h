// HTTP routes of approvals (docs/APPROVALS.md):
//   GET  /v1/approvals?state=pending&limit=N   (admin, reader or approver token)
//   GET  /v1/approvals/{id}                    (admin, reader or approver token)
//   POST /v1/approvals/{id}:approve  {"reason"} (approver token: the token's label is the person)
//   POST /v1/approvals/{id}:deny     {"reason"} (approver token)
//   GET  /approvals/{id}                       the page an approval link opens: what is asked,
//                                              its state, and how to decide it
// With [login] (ApprovalRouteOptions::sign_in), people decide on that page (docs/APPROVALS.md,
// "Approving in the browser"):
//   GET  /approvals/{id}/sign-in               sign in at the company IdP, back to the page
//   POST /approvals/{id}   decision=approve|deny&reason=…&csrf=…   (the page's form)
#pragma once

#include <boost/json/fwd.hpp>
#include <string>
#include <string_view>

#include "attribution/attribution_service.h"
#include "common/clock.h"
#include "common/status.h"
#include "http/http.h"
#include "store/admin_token_store.h"

namespace custody::identity {
class AuthorizationServer;
}  // namespace custody::identity

namespace custody::api {

struct ApprovalRouteOptions {
  std::string base_url;  // approval links: <base_url>/approvals/<id>
  // The company IdP's sign-in ([login]); null: the page only shows how to decide elsewhere.
  // Must outlive the router.
  identity::AuthorizationServer* sign_in = nullptr;
};

// An approval as the API shows it (times RFC 3339, groups and policies as arrays, its link).
boost::json::object ApprovalJson(const store::ApprovalRow& row, const std::string& base_url);

// A webhook notification's body, in Standard Webhooks' payload shape: {"type": `type`,
// "timestamp": RFC 3339, "data": the approval}.
std::string ApprovalWebhookBody(std::string_view type, const store::ApprovalRow& row,
                                const std::string& base_url, TimePoint now);

// `tokens` gives an approver token's person (its label); it must outlive the router.
Status AddApprovalRoutes(http::Router& router, attribution::AttributionService& service,
                         store::AdminTokenStore& tokens, const ApprovalRouteOptions& options);

}  // namespace custody::api
