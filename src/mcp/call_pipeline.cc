// The tools/call pipeline: the tool's pinned definition checked, the call authorized (the
// decision is durable before anything is forwarded), forwarded with a traceparent and its own
// progress token, its outcome recorded, and the upstream's answer returned with the receipt.
#include <boost/json.hpp>

#include "common/encoding.h"
#include "common/jcs_value.h"
#include "common/json_array.h"
#include "crypto/sha256.h"
#include "identity/txn_token.h"
#include "mcp/gateway.h"
#include "mcp/gateway_internal.h"

namespace custody::mcp {

using attribution::AuthorizeRequest;
using attribution::AuthorizeResult;
using attribution::CompleteRequest;
using attribution::CompleteResult;
using http::Responder;
using http::Response;
using SteadyClock = std::chrono::steady_clock;

namespace {

// At most `max` bytes of `s`, cut at a UTF-8 character boundary and marked with "...".
std::string Clip(std::string s, size_t max) {
  if (s.size() <= max) return s;
  size_t n = max - 3;
  while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
  s.resize(n);
  return s + "...";
}

constexpr std::string_view kReasonChanged = "custody:tool_definition_changed";

std::string Join(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : ", ") + s;
  return out;
}

// The Transaction Token of one allowed call (docs/MCP.md, "Identity for upstreams"): the
// session's initiator and actor chain, the call's scope, the decision as the transaction.
identity::TxnTokenRequest TxnTokenFor(const std::string& server, const std::string& audience,
                                      const std::string& gateway_audience,
                                      const std::string& action, const std::string& scope,
                                      const attribution::AuthorizeResult& decision,
                                      const identity::VerifiedAccess& access) {
  const identity::Session& s = access.session;
  identity::TxnTokenRequest r;
  r.audience = audience;
  r.txn = decision.action_id;
  r.subject = s.initiator;
  r.act_json = access.act_json;
  r.scope = scope;
  r.requesting_workload = gateway_audience;
  r.tctx = {{"action", action}, {"action_id", decision.action_id}, {"sid", s.sid}};
  if (!s.objective_digest.empty()) r.tctx["purpose"] = "sha256:" + s.objective_digest;
  if (!s.txn.empty()) r.tctx["session_txn"] = s.txn;
  r.rctx = {
      {"via", "mcp"},
      {"mcp_server", server},
      {"initiator_verification",
       s.verification == identity::InitiatorVerification::kVerified ? "verified" : "asserted"}};
  if (!decision.traceparent.empty()) r.rctx["traceparent"] = decision.traceparent;
  return r;
}

}  // namespace

std::string JsonDigest(const json::value& v) {
  auto canonical = CanonicalizeJsonValue(v);
  std::string bytes = canonical.ok() ? *canonical : json::serialize(v);
  return "sha256:" + HexEncode(crypto::Sha256(bytes));
}

AuthorizeRequest CallRequest(const std::string& action, attribution::Target target,
                             const json::object& params, const std::string& token,
                             const std::string& caller_context) {
  AuthorizeRequest a;
  a.token = token;
  a.action = action;
  a.target = std::move(target);
  if (auto args = params.find("arguments"); args != params.end() && args->value().is_object()) {
    a.arguments_json = json::serialize(args->value());
  }
  if (auto m = params.find("_meta"); m != params.end() && m->value().is_object()) {
    if (auto tp = m->value().get_object().find("traceparent");
        tp != m->value().get_object().end() && tp->value().is_string()) {
      a.traceparent = std::string(tp->value().get_string());
    }
  }
  a.caller_context_json = caller_context;
  a.via = "mcp";
  return a;
}

AuthorizeRequest ToolCallRequest(const std::string& server, const std::string& tool,
                                 const json::object& params, const std::string& token,
                                 const std::string& caller_context,
                                 const std::string& definition_hash) {
  attribution::Target target;
  target.server = server;
  target.tool = tool;
  AuthorizeRequest a = CallRequest("call_tool", std::move(target), params, token, caller_context);
  if (!definition_hash.empty()) a.resource_attrs["definition_hash"] = definition_hash;
  return a;
}

json::object DecisionData(const AuthorizeResult& r) {
  json::object data{{"action_id", r.action_id},     {"reasons", StringArray(r.reasons)},
                    {"receipt", r.receipt},         {"ledger_index", r.ledger_index},
                    {"policy_hash", r.policy_hash}, {"traceparent", r.traceparent}};
  if (!r.contained.empty()) data["contained"] = r.contained;
  return data;
}

attribution::Target ServerItem(const std::string& server, std::string_view type, std::string id) {
  attribution::Target t;
  t.server = server;
  t.type = std::string(type);
  t.id = std::move(id);
  return t;
}

bool TidyArguments(json::object& params) {
  auto a = params.find("arguments");
  if (a == params.end() || a->value().is_object()) return true;
  if (!a->value().is_null()) return false;
  params.erase(a);  // null: no arguments (not passed on for the server to trip over)
  return true;
}

std::string Gateway::CallerContext(const Caller& caller) {
  if (!caller.modern) return json::serialize(json::object{{"mcp_session", caller.session_id}});
  json::object c{{"mcp_protocol", caller.modern->version}};
  if (!caller.modern->client_info.is_null()) c["mcp_client"] = caller.modern->client_info;
  return json::serialize(c);
}

std::shared_ptr<Gateway::Call> Gateway::NewCall(Server& server, const Caller& caller,
                                                json::value id, std::string method,
                                                json::object params, Responder respond) {
  auto call = std::make_shared<Call>();
  call->server = &server;
  call->caller = caller;
  call->id = std::move(id);
  call->method = std::move(method);
  call->params = std::move(params);
  call->respond = std::move(respond);
  return call;
}

void Gateway::HandleToolsCall(Server& server, const Caller& caller, json::value id,
                              json::object params, Responder respond) {
  std::string name = StringField(params, "name");
  if (name.empty()) {
    respond(RpcResponse(200, ErrorText(id, kInvalidParams, "params.name must be a tool name")));
    return;
  }
  if (!TidyArguments(params)) {
    respond(RpcResponse(200, ErrorText(id, kInvalidParams, "params.arguments must be an object")));
    return;
  }
  auto call =
      NewCall(server, caller, std::move(id), "tools/call", std::move(params), std::move(respond));
  call->tool = std::move(name);

  if (std::optional<ToolCatalog::Tool> tool = catalog_.Find(server.name, call->tool)) {
    AuthorizeCall(call, tool);
    return;
  }
  // Not listed yet through the gateway: learn (and pin) the definitions first.
  server.upstream->Call("tools/list", json::object{}, [this, call](Result<json::object> r) {
    if (!r.ok()) {
      call->respond(RpcResponse(200, ErrorText(call->id, kUnavailable, r.status().message())));
      return;
    }
    auto res = r->find("result");
    if (res != r->end() && res->value().is_object()) {
      auto t = res->value().get_object().find("tools");
      if (t != res->value().get_object().end() && t->value().is_array()) {
        catalog_.Pin(call->server->name, t->value().get_array());
      }
    }
    AuthorizeCall(call, catalog_.Find(call->server->name, call->tool));
  });
}

void Gateway::AuthorizeCall(std::shared_ptr<Call> call, std::optional<ToolCatalog::Tool> tool) {
  Server& s = *call->server;
  if (!tool) {
    call->respond(
        RpcResponse(200, ErrorText(call->id, kInvalidParams, "unknown tool: " + call->tool)));
    return;
  }
  call->hash = tool->hash;
  if (!tool->approved) {
    json::object data{{"reason", kReasonChanged}, {"definition_hash", tool->hash}};
    call->respond(RpcResponse(
        200, ErrorText(call->id, kDenied,
                       "refused: the definition of tool " + s.name + "/" + call->tool +
                           " changed since it was approved (" + std::string(kReasonChanged) +
                           "); an operator must approve it: custody tool approve " + s.name + " " +
                           call->tool + " " + tool->hash,
                       data)));
    return;
  }
  DecideAndForward(call, ToolCallRequest(s.name, call->tool, call->params, call->caller.token,
                                         CallerContext(call->caller), tool->hash));
}

void Gateway::DecideAndForward(std::shared_ptr<Call> call, AuthorizeRequest request) {
  call->action = request.action;
  call->scope = request.target.Key();
  // A call an approval may hold is authorized again, as it was asked, once approved.
  std::optional<AuthorizeRequest> again;
  if (holds_) again = request;
  // The token was verified when this request was admitted, a moment ago (a store read): the
  // decision uses that rather than reading the session again. Not for `again`, which runs later.
  const identity::VerifiedAccess& access = call->caller.access;
  if (!access.session.sid.empty() && !access.session.revoked) request.verified = &access;
  // The outcomes of calls answered before this decision: queued right after it (into its
  // commit, or the next one while this call is upstream), rather than ahead of it. Taken first,
  // so that one answered meanwhile (even this call, by a fast upstream) waits for the next.
  std::vector<TrailingOutcomes::Record> outcomes;
  if (trailing_) outcomes = trailing_->Take();
  attribution_.Authorize(std::move(request), [this, call, again = std::move(again)](
                                                 Result<AuthorizeResult> r) mutable {
    if (!r.ok()) {
      call->respond(RpcResponse(
          200, ErrorText(call->id, JsonRpcCodeFor(r.status().code()), r.status().message())));
      return;
    }
    if (r->approval_required) {
      OnApprovalRequired(call, std::move(again), std::move(*r), std::nullopt);
      return;
    }
    if (!r->allowed) {
      call->respond(DenialOf(*call, *r));
      return;
    }
    call->decision = std::move(*r);
    ForwardCall(call);
  });
  for (auto& record : outcomes) record();
}

http::Response Gateway::DenialOf(const Call& call, const AuthorizeResult& r) const {
  json::object data = DecisionData(r);
  std::string why = r.reasons.empty() ? r.message : Join(r.reasons);
  http::Response refusal = RpcResponse(
      200, ErrorText(call.id, kDenied,
                     "denied by Custody policy: " + why +
                         (r.message.empty() || r.reasons.empty() ? "" : " (" + r.message + ")"),
                     data));
  // Policy would allow it but the token's scopes do not cover it: a step-up (MCP
  // authorization, "Scope challenge handling"), which a client answers by asking the person
  // for the wider scope. A policy refusal stays a JSON-RPC error in a 200.
  if (r.reasons.size() == 1 && r.reasons[0] == "custody:scope") {
    refusal.status = 403;
    refusal.headers.Set(
        "www-authenticate",
        InsufficientScopeChallenge(StepUpScopes(call.scope, call.caller.access.session.scopes,
                                                call.caller.modern.has_value()),
                                   call.caller.resource_metadata));
  }
  return refusal;
}

void Gateway::ForwardCall(std::shared_ptr<Call> call) {
  Server& s = *call->server;
  call->key = {CallScope(call->caller), json::serialize(call->id)};
  RequestExtras extras;
  if (s.txn_tokens) {
    // The first token is minted here, with the decision; the upstream asks the series for one
    // at each send, and a send after a wait (a retry, an input_required round answered minutes
    // later) gets a fresh one with the same claims but iat, exp and jti (TxnTokenSeries).
    auto series = identity::TxnTokenSeries::Start(
        tokens_, clock_,
        TxnTokenFor(s.name, s.txn_audience, options_.audience, call->action, call->scope,
                    call->decision, call->caller.access));
    if (!series.ok()) {
      // Fail closed: a server configured to be told who is behind a call never gets one
      // without. The outcome records why (no token is in the message).
      FinishCall(call, UnavailableError("not forwarded: the transaction token for " + s.name +
                                        " could not be minted: " + series.status().message()));
      return;
    }
    call->txn_tokens = *series;
    // The series, not the call: the upstream may hold this past the call's answer.
    extras.txn_token = [series = std::move(*series)] { return series->ForSend(); };
  }
  // Registered before anything is sent, under the registry's lock that containment takes too:
  // a session contained after its decision but before this point is caught here, and one
  // contained later finds the call among those in flight.
  if (!sessions_->BeginCall(call->key, s.upstream.get(), call->caller.access.session.sid)) {
    // Contained (or ended) between the decision and the forward: nothing goes upstream.
    FinishCall(call, UnavailableError("cancelled before forwarding: the MCP session ended"));
    return;
  }
  json::object fwd = call->params;
  json::object meta;
  if (auto m = fwd.find("_meta"); m != fwd.end() && m->value().is_object()) {
    meta = m->value().get_object();
  }
  meta["traceparent"] = call->decision.traceparent;
  // Progress: the upstream sees a token unique to this call, and the client gets its own back
  // on the call's stream.
  if (auto pt = meta.find("progressToken");
      pt != meta.end() && call->caller.accepts_sse &&
      (pt->value().is_string() || pt->value().is_int64() || pt->value().is_uint64())) {
    MutexLock lock(s.mu);
    call->progress_token = "custody-" + std::to_string(s.next_progress++);
    s.progress[call->progress_token] = Server::Progress{pt->value(), call};
    pt->value() = call->progress_token;
  }
  // A 2026-07-28 upstream asks only what this caller can answer (a 2025 session is shared).
  if (s.upstream->modern()) {
    meta["io.modelcontextprotocol/clientCapabilities"] = RelayedCapabilities(*call);
  }
  fwd["_meta"] = std::move(meta);
  if (call->caller.modern) {
    // 2026-07-28: a client that closes the request's SSE stream cancels the request.
    call->on_stream_gone = [this, key = call->key] {
      const std::string reason = "the client closed the request's stream";
      if (auto cancel = sessions_->CancelCall(key, reason)) {
        cancel->first->Cancel(cancel->second, reason);
      }
    };
  }
  call->relay_call = relay_->Begin(s.name, call->key.first, call);
  call->forwarded = SteadyClock::now();
  int64_t upstream_id = s.upstream->Call(call->method, std::move(fwd), std::move(extras),
                                         [this, call](Result<json::object> r) {
                                           sessions_->EndCall(call->key);
                                           EndRelay(*call);
                                           FinishCall(call, std::move(r));
                                         });
  relay_->Forwarded(call->relay_call, upstream_id);
  std::string cancel = sessions_->Forwarded(call->key, upstream_id);
  if (!cancel.empty()) s.upstream->Cancel(upstream_id, cancel);
}

void Gateway::FinishCall(std::shared_ptr<Call> call, Result<json::object> r) {
  int64_t latency_ms = call->forwarded == SteadyClock::time_point{}
                           ? 0
                           : std::chrono::duration_cast<std::chrono::milliseconds>(
                                 SteadyClock::now() - call->forwarded)
                                 .count();
  CompleteRequest c;
  c.token = call->caller.token;
  c.action_id = call->decision.action_id;
  c.latency_ms = latency_ms;
  c.status = "ok";
  // What goes back to the client: the upstream's result (with receipts) or its error.
  auto out = std::make_shared<json::object>();
  if (!r.ok()) {
    c.status = "error";
    c.error = r.status().message();
    *out = ErrorObject(call->id, kUnavailable, r.status().message());
  } else if (auto e = r->find("error"); e != r->end()) {
    c.status = "error";
    c.error = "upstream error: " + json::serialize(e->value());
    c.output_digest = JsonDigest(e->value());
    *out = json::object{{"jsonrpc", "2.0"}, {"id", call->id}, {"error", e->value()}};
  } else {
    auto res = r->find("result");
    json::value result = res != r->end() ? res->value() : json::value(json::object{});
    if (!result.is_object()) result = json::object{};
    c.output_digest = JsonDigest(result);
    if (auto ie = result.get_object().find("isError");
        ie != result.get_object().end() && ie->value().is_bool() && ie->value().get_bool()) {
      c.status = "error";
      c.error = "the tool reported an error (isError)";
    }
    *out = json::object{{"jsonrpc", "2.0"}, {"id", call->id}, {"result", std::move(result)}};
  }
  // The receipt: the decision's (durable before forwarding), and the outcome's event id; with
  // await_outcome, the outcome's inclusion proof too.
  // Complete refuses a longer error (as it must for callers of its API); the gateway's own
  // outcome is clipped instead, so it is never lost, with or without await_outcome.
  c.error = Clip(std::move(c.error), 4096);
  c.exchanges = call->TakeExchanges();
  // The last token sent names them all in the ledger: each has the decision's action id as txn.
  std::string txn_jti = call->txn_tokens ? call->txn_tokens->last_jti() : "";
  if (!txn_jti.empty()) {
    c.txn_token_jti = txn_jti;
    c.txn_token_aud = call->server->txn_audience;
  }
  auto answer = [this, call, out, txn_jti](json::object outcome) {
    json::object receipt{{"action_id", call->decision.action_id},
                         {"decision", "allow"},
                         {"reasons", StringArray(call->decision.reasons)},
                         {"policy_hash", call->decision.policy_hash},
                         {"ledger_index", call->decision.ledger_index},
                         {"receipt", call->decision.receipt},
                         {"traceparent", call->decision.traceparent},
                         {"outcome", std::move(outcome)}};
    if (!call->hash.empty()) receipt["definition_hash"] = call->hash;
    if (const auto& a = call->decision.approval) {  // it ran under a person's approval
      receipt["approval"] = json::object{
          {"id", a->id}, {"approver", a->approver}, {"ledger_index", a->decided_index}};
    }
    if (!txn_jti.empty()) {
      receipt["txn_token"] = json::object{{"jti", txn_jti}, {"aud", call->server->txn_audience}};
    }
    // Contained while the call ran (OnRevoked ended its MCP session): the outcome is recorded,
    // but the result is withheld. No second token verification: the revocation listener has
    // already told us.
    if (sessions_->CallWithheld(call->key, call->caller.access.session.sid)) {
      Reply(*call, 200,
            ErrorText(call->id, kDenied,
                      "the session was contained while the call ran; the result is withheld",
                      json::object{{kReceiptMetaKey, std::move(receipt)}}));
      return;
    }
    if (auto res = out->find("result"); res != out->end()) {
      json::object& result = res->value().as_object();
      json::object meta;
      if (auto m = result.find("_meta"); m != result.end() && m->value().is_object()) {
        meta = m->value().get_object();
      }
      meta[kReceiptMetaKey] = std::move(receipt);
      result["_meta"] = std::move(meta);
    } else if (auto err = out->find("error"); err != out->end()) {
      // The receipt joins what the error's data says (the gateway's own reason, a server's
      // details); data that is no object is replaced.
      json::value& data = err->value().as_object()["data"];
      if (!data.is_object()) data = json::object{};
      data.get_object()[kReceiptMetaKey] = std::move(receipt);
    }
    Reply(*call, 200, json::serialize(*out));
  };
  if (options_.await_outcome) {
    attribution_.Complete(std::move(c), [answer](Result<CompleteResult> cr) {
      if (cr.ok()) {
        answer(json::object{{"event_id", cr->event_id},
                            {"ledger_index", cr->ledger_index},
                            {"receipt", cr->receipt}});
      } else {
        answer(json::object{{"error", cr.status().ToString()}});
      }
    });
    return;
  }
  // The answer leaves first, naming the outcome's event id; the outcome event is built and
  // queued after it, off the caller's wait. The caller's token was verified at admission, so
  // Complete does not verify it again (a session contained since still gets its outcome).
  c.event_id = attribution_.NewEventId();
  c.verified = &call->caller.access;
  answer(json::object{{"event_id", c.event_id}, {"durable", false}});
  // The callback may run after the gateway is gone (the ledger's sequencer runs it): it holds
  // the reporter, which outlives both, not the gateway. The record holds the call, whose caller
  // c.verified points into.
  auto record = [&attribution = attribution_, upstream = options_.upstream, call,
                 c = std::move(c)]() mutable {
    attribution.Complete(
        std::move(c), [upstream = std::move(upstream),
                       action = call->decision.action_id](Result<CompleteResult> cr) {
          if (!cr.ok()) {
            ReportUpstream(upstream, "mcp.outcome_record",
                           cr.status().WithContext("recording the outcome of " + action));
          }
        });
  };
  if (trailing_) {
    trailing_->Add(std::move(record));  // queued after the next decision (trailing_outcomes.h)
  } else {
    record();
  }
}

void Gateway::Reply(Call& call, int http_status, std::string body) {
  if (!call.progress_token.empty()) {
    MutexLock lock(call.server->mu);
    call.server->progress.erase(call.progress_token);
  }
  call.Answer(http_status, std::move(body));
}

}  // namespace custody::mcp
