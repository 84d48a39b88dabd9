#include "api/ingest_routes.h"

#include <boost/json.hpp>
#include <memory>

#include "api/auth.h"
#include "identity/token_service.h"
#include "investigate/investigate.h"

namespace custody::api {
namespace {

namespace json = boost::json;
using http::Request;
using http::Responder;
using http::Response;
using ingest::Encoding;

// gRPC codes of google.rpc.Status, as OTLP/HTTP answers errors.
constexpr int kGrpcInvalidArgument = 3;
constexpr int kGrpcPermissionDenied = 7;
constexpr int kGrpcResourceExhausted = 8;
constexpr int kGrpcUnavailable = 14;
constexpr int kGrpcUnauthenticated = 16;

std::string MediaTypeOf(Encoding e) {
  return e == Encoding::kProtobuf ? "application/x-protobuf" : "application/json";
}

Response Otlp(int status, Encoding e, std::string body) {
  Response r;
  r.status = status;
  r.body = std::move(body);
  r.headers.Set("content-type", MediaTypeOf(e));
  return r;
}

Response OtlpError(int status, Encoding e, int grpc_code, const std::string& message) {
  Response r = Otlp(status, e, ingest::EncodeStatus(e, grpc_code, message));
  if (status == 401) {
    r.headers.Set("www-authenticate", "Bearer realm=\"custody\", error=\"invalid_token\"");
  }
  return r;
}

// The answer for a failed Status of decoding or exporting.
Response ErrorFor(const Status& s, Encoding e) {
  switch (s.code()) {
    case StatusCode::kFailedPrecondition:  // ingest::TooLargeError
      return OtlpError(413, e, kGrpcResourceExhausted, s.message());
    case StatusCode::kInvalidArgument:
      return OtlpError(400, e, kGrpcInvalidArgument, s.message());
    case StatusCode::kUnauthenticated:
      return OtlpError(401, e, kGrpcUnauthenticated, s.message());
    case StatusCode::kPermissionDenied:
      return OtlpError(403, e, kGrpcPermissionDenied, s.message());
    default: {
      // OTLP/HTTP: 503 is retryable, and Retry-After says when (the queue full, the ledger
      // failing, a shutdown: nothing of the request was acknowledged).
      Response r = OtlpError(503, e, kGrpcUnavailable, s.message());
      r.headers.Set("retry-after", std::to_string(ingest::IngestService::kRetryAfterSeconds));
      return r;
    }
  }
}

struct Deps {
  ingest::IngestService* svc;
  identity::TokenService* tokens;
  http::Authenticator* admin;
  const Clock* clock;
  IngestRouteOptions options;
};

// Who sends: an admin token (cst_…) of role ingest or admin, or a session token.
Result<ingest::IngestCredential> Authenticate(const Deps& d, const Request& req) {
  auto bearer = http::BearerToken(req.headers);
  if (!bearer || bearer->empty()) {
    return UnauthenticatedError("a bearer token is required (an ingest token or a session token)");
  }
  if (bearer->starts_with("cst_")) {
    ASSIGN_OR_RETURN(http::Principal p, d.admin->Authenticate(*bearer));
    if (p.role != kRoleIngest && p.role != kRoleAdmin) {
      return PermissionDeniedError("the token's role may not send telemetry (ingest or admin)");
    }
    return ingest::IngestCredential{"ingest-token", p.id, "", ""};
  }
  auto va = d.tokens->VerifyAccessToken(std::string(*bearer), d.options.audience);
  if (!va.ok()) {
    if (va.status().code() == StatusCode::kPermissionDenied) return va.status();
    return UnauthenticatedError("the session token does not verify");
  }
  return ingest::IngestCredential{"session", va->session.sid, va->session.agent,
                                  va->session.root_sid};
}

void Traces(const Deps& d, Request& req, Responder respond) {
  auto encoding = ingest::EncodingOf(req.headers.Get("content-type").value_or(""));
  if (!encoding.ok()) {
    return respond(
        OtlpError(415, Encoding::kJson, kGrpcInvalidArgument, encoding.status().message()));
  }
  const Encoding e = *encoding;
  auto cred = Authenticate(d, req);
  if (!cred.ok()) return respond(ErrorFor(cred.status(), e));
  const ingest::IngestOptions& o = d.svc->options();
  if (req.body.size() > o.max_body_bytes) {
    return respond(
        OtlpError(413, e, kGrpcResourceExhausted,
                  "the body is larger than " + std::to_string(o.max_body_bytes) + " bytes"));
  }
  const std::string key = cred->type + ":" + cred->id;
  // Every request costs at least one span, so a flood of empty ones is held back too.
  auto throttled = [&](int64_t wait) {
    Response r = OtlpError(429, e, kGrpcResourceExhausted,
                           "too many spans from this credential; retry later");
    r.headers.Set("retry-after", std::to_string(wait));
    respond(std::move(r));
  };
  if (auto wait = d.svc->Admit(key, 1)) return throttled(*wait);

  std::string inflated;
  std::string_view body = req.body;
  const std::string encoding_header(req.headers.Get("content-encoding").value_or(""));
  if (encoding_header == "gzip") {
    auto in = ingest::Gunzip(req.body, o.limits.max_inflated_bytes);
    if (!in.ok()) return respond(ErrorFor(in.status(), e));
    inflated = std::move(*in);
    body = inflated;
  } else if (!encoding_header.empty() && encoding_header != "identity") {
    return respond(
        OtlpError(415, e, kGrpcInvalidArgument, "Content-Encoding must be gzip or identity"));
  }
  auto spans = ingest::DecodeExportRequest(body, e, o.limits);
  if (!spans.ok()) return respond(ErrorFor(spans.status(), e));
  if (spans->size() > 1) {
    if (auto wait = d.svc->Admit(key, static_cast<double>(spans->size() - 1))) {
      return throttled(*wait);
    }
  }
  d.svc->Export(std::move(*cred), std::move(*spans), [respond, e](Result<ingest::ExportOutcome> r) {
    if (!r.ok()) return respond(ErrorFor(r.status(), e));
    respond(Otlp(200, e, ingest::EncodeExportResponse(e, r->rejected, r->message)));
  });
}

json::object CallJson(const ingest::UnmediatedCall& c) {
  return json::object{{"event_id", c.event_id},
                      {"ledger_index", c.ledger_index},
                      {"time", c.time},
                      {"operation", c.operation},
                      {"tool", c.tool},
                      {"tool_call_id", c.tool_call_id},
                      {"mcp_method", c.mcp_method},
                      {"trace_id", c.trace_id},
                      {"span_id", c.span_id},
                      {"claimed_agent", c.claimed_agent},
                      {"registered_agent", c.registered_agent},
                      {"session", c.session},
                      {"link", c.link},
                      {"credential", c.credential},
                      {"decision", c.decision},
                      {"decision_target", c.decision_target},
                      {"reason", c.reason}};
}

}  // namespace

Status AddIngestRoutes(http::Router& router, ingest::IngestService& service,
                       identity::TokenService& tokens, http::Authenticator& admin_tokens,
                       const Clock& clock, const IngestRouteOptions& options) {
  auto d = std::make_shared<Deps>(Deps{&service, &tokens, &admin_tokens, &clock, options});
  // Authenticated by the handler: a session token is not an admin token, and the answers
  // must be OTLP's, not the generic error shape.
  RETURN_IF_ERROR(
      router.Add({"POST", "/v1/traces",
                  [d](Request& req, Responder respond) { Traces(*d, req, std::move(respond)); },
                  http::AuthRequirement::None(), ""}));
  RETURN_IF_ERROR(router.Add(
      {"GET", "/v1/unmediated",
       [d](Request& req, Responder respond) {
         auto since = investigate::ParseSince(req.QueryParam("since").value_or(""),
                                              UnixMillis(d->clock->Now()));
         if (!since.ok()) return respond(http::ErrorResponse(since.status(), req.request_id));
         auto calls = d->svc->Unmediated(*since);
         if (!calls.ok()) return respond(http::ErrorResponse(calls.status(), req.request_id));
         json::array out;
         for (const auto& c : *calls) out.push_back(CallJson(c));
         respond(Response::Json(200, json::serialize(json::object{{"calls", std::move(out)}})));
       },
       http::AuthRequirement::AnyOf({std::string(kRoleAdmin), std::string(kRoleReader)}), ""}));
  return OkStatus();
}

}  // namespace custody::api
