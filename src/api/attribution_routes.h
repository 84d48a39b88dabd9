// HTTP routes of the attribution module:
//   POST /v1/actions:authorize          (bearer: the agent's session token)
//   POST /v1/actions/{id}:complete      (bearer: the same session's token)
//   POST /v1/policies                   (admin) publish {"policies": text, "entities": [..]}
//   GET  /v1/policies/active, /v1/policies (reader, or public unless admin.protect_reads)
//   POST /v1/contain                    (admin) {"session"|"agent": id, "reason": text}
//   AuthZEN 1.0: POST /access/v1/evaluation, POST /access/v1/evaluations,
//   GET /.well-known/authzen-configuration (bearer: the session token, as for authorize).
#pragma once

#include <string>

#include "attribution/attribution_service.h"
#include "common/status.h"
#include "http/http.h"

namespace custody::api {

struct AttributionRouteOptions {
  http::AuthRequirement read_auth = http::AuthRequirement::None();
  std::string base_url;  // published in the AuthZEN metadata (the issuer URL)
};

Status AddAttributionRoutes(http::Router& router, attribution::AttributionService& service,
                            const AttributionRouteOptions& options);

}  // namespace custody::api
