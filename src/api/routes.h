// The service's routes, added to an http::Router:
//   ledger:  POST /v1/ledger/entries, GET /v1/ledger/{checkpoint,key,entries/{index},
//            proof/inclusion,proof/consistency}; POST /v1/ledger/verify and
//            GET /v1/ledger/verify/{id} (a server-side verification, advanced by each poll)
//   tlog:    GET /tlog/checkpoint, /tlog/tile/<L>/<N>[.p/<W>], /tlog/tile/entries/<N>[.p/<W>]
//            (C2SP tlog-tiles, read-only)
//   ops:     GET /healthz, /readyz, /metrics
// Handlers hold references: the Ledger and Metrics must outlive the server.
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <vector>

#include "api/metrics.h"
#include "common/status.h"
#include "http/http.h"
#include "ledger/ledger.h"

namespace custody::api {

struct RouteOptions {
  // Applied to read routes (GET); state-changing routes always require the admin role.
  http::AuthRequirement read_auth;
  size_t max_events_per_request = 1000;
  // What runs degraded though the service is ready (e.g. "2 credential revocations pending"):
  // /readyz answers 200 with status "degraded" and these, rather than failing.
  std::function<std::vector<std::string>()> degraded;
};

Status AddLedgerRoutes(http::Router& router, ledger::Ledger& ledger, const RouteOptions& options);
// `ready` returns OK when storage is writable and keys are loaded.
Status AddOpsRoutes(http::Router& router, Metrics& metrics, std::function<Status()> ready,
                    const RouteOptions& options);

// Splits RFC 8785 canonical JSON text of an array into its elements' canonical texts.
// (Canonical text has no insignificant whitespace, so a depth/string scan is exact.)
std::vector<std::string_view> SplitCanonicalArray(std::string_view canonical);

}  // namespace custody::api
