#include "api/investigation_routes.h"

#include <memory>

#include "attribution/attribution_service.h"
#include "investigate/evidence.h"
#include "investigate/investigate.h"

namespace custody::api {
namespace {

using http::AuthRequirement;
using http::Request;
using http::Responder;
using http::Response;

void Reply(Responder& respond, const Request& req, const Status& s) {
  respond(http::ErrorResponse(s, req.request_id));
}

// JSON, or the readable tree when ?format=tree and a renderer is given.
void Answer(Responder& respond, const Request& req, Result<std::string> r,
            Result<std::string> (*render)(std::string_view) = nullptr) {
  if (!r.ok()) return Reply(respond, req, r.status());
  auto format = req.QueryParam("format").value_or("json");
  if (format == "json") return respond(Response::Json(200, std::move(*r)));
  if (format == "tree" && render != nullptr) {
    auto text = render(*r);
    if (!text.ok()) return Reply(respond, req, text.status());
    return respond(Response::Text(200, std::move(*text)));
  }
  Reply(respond, req,
        InvalidArgumentError(render ? "format must be json or tree" : "format must be json"));
}

}  // namespace

Status AddInvestigationRoutes(http::Router& router, identity::TokenService& tokens,
                              ledger::Ledger& ledger, attribution::AttributionService& attribution,
                              const Clock& clock,
                              std::map<std::string, std::vector<std::string>> credential_levels) {
  auto inv = std::make_shared<investigate::Investigator>(tokens, ledger, attribution, clock);
  inv->SetCredentialAccessLevels(std::move(credential_levels));
  auto reader = AuthRequirement::AnyOf({"admin", "reader"});
  identity::TokenService* tok = &tokens;
  ledger::Ledger* led = &ledger;
  attribution::AttributionService* attr = &attribution;
  const Clock* clk = &clock;

  RETURN_IF_ERROR(router.Add({"GET", "/v1/trace/{event_id}",
                              [inv](Request& req, Responder respond) {
                                Answer(respond, req, inv->Trace(req.params["event_id"]),
                                       &investigate::RenderTrace);
                              },
                              reader, ""}));
  RETURN_IF_ERROR(router.Add({"GET", "/v1/sessions/{sid}/events",
                              [inv](Request& req, Responder respond) {
                                Answer(respond, req, inv->SessionEvents(req.params["sid"]),
                                       &investigate::RenderSessionEvents);
                              },
                              reader, ""}));
  RETURN_IF_ERROR(router.Add({"GET", "/v1/blast-radius",
                              [inv](Request& req, Responder respond) {
                                auto kind = req.QueryParam("kind");
                                auto id = req.QueryParam("id");
                                if (!kind || !id) {
                                  return Reply(respond, req,
                                               InvalidArgumentError("kind and id are required"));
                                }
                                Answer(respond, req, inv->BlastRadius(*kind, *id));
                              },
                              reader, ""}));
  RETURN_IF_ERROR(router.Add({"GET", "/v1/review/{agent}",
                              [inv, clk](Request& req, Responder respond) {
                                auto since = investigate::ParseSince(
                                    req.QueryParam("since").value_or(""), UnixMillis(clk->Now()));
                                if (!since.ok()) return Reply(respond, req, since.status());
                                Answer(respond, req, inv->Review(req.params["agent"], *since));
                              },
                              reader, ""}));
  RETURN_IF_ERROR(router.Add({"GET", "/v1/graph",
                              [inv](Request& req, Responder respond) {
                                auto format = req.QueryParam("format").value_or("json");
                                auto g = inv->Graph(format);
                                if (!g.ok()) return Reply(respond, req, g.status());
                                if (format == "dot") {
                                  return respond(Response::Text(
                                      200, std::move(*g), "text/vnd.graphviz; charset=utf-8"));
                                }
                                respond(Response::Json(200, std::move(*g)));
                              },
                              reader, ""}));
  RETURN_IF_ERROR(router.Add(
      {"GET", "/v1/evidence/{sid}",
       [tok, led, attr](Request& req, Responder respond) {
         auto b = investigate::BuildEvidence(*tok, *led, attr->store(), req.params["sid"]);
         if (!b.ok()) return Reply(respond, req, b.status());
         Response r = Response::Json(200, std::move(*b));
         r.headers.Set("content-disposition", "attachment; filename=\"evidence.json\"");
         respond(std::move(r));
       },
       reader, ""}));
  return OkStatus();
}

}  // namespace custody::api
