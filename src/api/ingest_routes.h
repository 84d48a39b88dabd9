// HTTP routes of OTLP ingest (docs/OTLP.md):
//   POST /v1/traces       OTLP/HTTP, application/x-protobuf or application/json, optionally
//                         Content-Encoding: gzip. Bearer: an admin token of role ingest (or
//                         admin), or an agent's own session token. Answered as a collector
//                         does: ExportTraceServiceResponse (partial_success when spans were
//                         rejected), or a google.rpc.Status with 400, 401, 403, 413, 415, 429
//                         (Retry-After) or 503, in the request's encoding.
//   GET  /v1/unmediated   (reader) ?since=30d|2026-11-01|<unix ms>: tool calls seen in
//                         telemetry with no Custody decision for them.
#pragma once

#include <string>

#include "common/clock.h"
#include "common/status.h"
#include "http/http.h"
#include "ingest/ingest_service.h"

namespace custody::identity {
class TokenService;
}

namespace custody::api {

struct IngestRouteOptions {
  std::string audience;  // session tokens must carry it when non-empty
};

Status AddIngestRoutes(http::Router& router, ingest::IngestService& service,
                       identity::TokenService& tokens, http::Authenticator& admin_tokens,
                       const Clock& clock, const IngestRouteOptions& options);

}  // namespace custody::api
