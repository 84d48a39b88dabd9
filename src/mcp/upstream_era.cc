#include "mcp/upstream_era.h"

#include <boost/json.hpp>

#include "common/encoding.h"

namespace custody::mcp {

namespace json = boost::json;

namespace {

constexpr std::string_view kVersionKey = "io.modelcontextprotocol/protocolVersion";
constexpr std::string_view kCapabilitiesKey = "io.modelcontextprotocol/clientCapabilities";
constexpr std::string_view kClientInfoKey = "io.modelcontextprotocol/clientInfo";
constexpr std::string_view kLogLevelKey = "io.modelcontextprotocol/logLevel";
constexpr std::string_view kSubscriptionKey = "io.modelcontextprotocol/subscriptionId";

// As at initialize: the capabilities the gateway relays (`options`) and its clientInfo.
json::object ClientMeta(const UpstreamOptions& options) {
  return json::object{{kVersionKey, kModernProtocol},
                      {kCapabilitiesKey, GatewayClientCapabilities(options)},
                      {kClientInfoKey, GatewayClientInfo()}};
}

json::object& ParamsOf(json::object& request) {
  json::value& p = request["params"];
  if (!p.is_object()) p = json::object{};
  return p.get_object();
}

std::string StringAt(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  return v && v->is_string() ? std::string(v->get_string()) : std::string();
}

json::object Error(int code, std::string message) {
  return json::object{{"error", json::object{{"code", code}, {"message", std::move(message)}}}};
}

// What a client must have declared to answer `method` (the revision's requiredCapabilities).
json::object RequiredCapability(std::string_view method, const json::object& params) {
  if (method == "sampling/createMessage") return json::object{{"sampling", json::object{}}};
  if (method == "roots/list") return json::object{{"roots", json::object{}}};
  if (StringAt(params, "mode") == "url") {
    return json::object{{"elicitation", json::object{{"url", json::object{}}}}};
  }
  return json::object{{"elicitation", json::object{}}};
}

bool PlainAscii(std::string_view s) {
  if (s.empty() || s.front() == ' ' || s.back() == ' ' || s.starts_with("=?")) return false;
  for (unsigned char c : s) {
    if (c < 0x20 || c >= 0x7f) return false;
  }
  return true;
}

}  // namespace

std::string DiscoverRequest(int64_t id) {
  return json::serialize(
      json::object{{"jsonrpc", "2.0"},
                   {"id", id},
                   {"method", "server/discover"},
                   {"params", json::object{{"_meta", ClientMeta(UpstreamOptions{})}}}});
}

std::optional<std::set<std::string, std::less<>>> ModernCapabilities(const json::object& answer) {
  const json::value* r = answer.if_contains("result");
  const json::object* result = r ? r->if_object() : nullptr;
  if (!result) return std::nullopt;
  const json::value* v = result->if_contains("supportedVersions");
  if (!v || !v->is_array()) return std::nullopt;
  for (const json::value& e : v->get_array()) {
    if (e.is_string() && e.get_string() == kModernProtocol) return CapabilityNames(*result);
  }
  return std::nullopt;
}

std::optional<std::string> McpNameHeader(const json::object& request) {
  std::string method = StringAt(request, "method");
  const char* field = method == "tools/call" || method == "prompts/get" ? "name"
                      : method == "resources/read"                      ? "uri"
                                                                        : nullptr;
  const json::value* p = request.if_contains("params");
  if (!field || !p || !p->is_object()) return std::nullopt;
  const json::value* v = p->get_object().if_contains(field);
  if (!v || !v->is_string()) return std::nullopt;
  std::string_view s = v->get_string();
  if (PlainAscii(s)) return std::string(s);
  return "=?base64?" + Base64Encode(s) + "?=";
}

ModernEra::ModernEra(const UpstreamOptions& options) : meta_(ClientMeta(options)) {}

std::optional<json::object> ModernEra::Local(const json::object& request, bool* listen_changed) {
  *listen_changed = false;
  std::string method = StringAt(request, "method");
  if (method == "ping") return json::object{{"result", json::object{}}};
  if (method != "logging/setLevel" && method != "resources/subscribe" &&
      method != "resources/unsubscribe") {
    return std::nullopt;
  }
  const json::value* p = request.if_contains("params");
  const json::object* params = p ? p->if_object() : nullptr;
  std::string arg = params ? StringAt(*params, method == "logging/setLevel" ? "level" : "uri") : "";
  if (arg.empty()) {
    return Error(-32602, method == "logging/setLevel" ? "params.level must be a string"
                                                      : "params.uri must be a string");
  }
  MutexLock lock(mu_);
  if (method == "logging/setLevel") {
    log_level_ = arg;
  } else if (method == "resources/subscribe") {
    resource_subscriptions_.insert(arg);
    *listen_changed = true;
  } else if (auto it = resource_subscriptions_.find(arg); it != resource_subscriptions_.end()) {
    resource_subscriptions_.erase(it);
    *listen_changed = !resource_subscriptions_.contains(arg);
  }
  return json::object{{"result", json::object{}}};
}

void ModernEra::Shape(json::object& request) const {
  json::object& params = ParamsOf(request);
  json::value& m = params["_meta"];
  if (!m.is_object()) m = json::object{};
  json::object& meta = m.get_object();
  for (const auto& kv : meta_) {
    if (!meta.contains(kv.key())) meta[kv.key()] = kv.value();
  }
  MutexLock lock(mu_);
  if (!log_level_.empty()) meta[kLogLevelKey] = log_level_;
}

std::optional<json::object> ModernEra::ListenRequest(
    int64_t id, const std::set<std::string, std::less<>>& capabilities) const {
  json::object filter;
  if (capabilities.contains("tools.listChanged")) filter["toolsListChanged"] = true;
  if (capabilities.contains("prompts.listChanged")) filter["promptsListChanged"] = true;
  if (capabilities.contains("resources.listChanged")) filter["resourcesListChanged"] = true;
  {
    MutexLock lock(mu_);
    if (capabilities.contains("resources.subscribe") && !resource_subscriptions_.empty()) {
      json::array uris;
      std::string last;
      for (const std::string& u : resource_subscriptions_) {
        if (u != last) uris.emplace_back(u);
        last = u;
      }
      filter["resourceSubscriptions"] = std::move(uris);
    }
  }
  if (filter.empty()) return std::nullopt;
  json::object request{{"jsonrpc", "2.0"},
                       {"id", id},
                       {"method", "subscriptions/listen"},
                       {"params", json::object{{"notifications", std::move(filter)}}}};
  Shape(request);
  return request;
}

bool ModernEra::Inbound(json::object& message) {
  std::string method = StringAt(message, "method");
  if (method == "notifications/subscriptions/acknowledged") return false;
  json::value* p = message.if_contains("params");
  json::value* m = p && p->is_object() ? p->get_object().if_contains("_meta") : nullptr;
  if (m && m->is_object()) {
    m->get_object().erase(kSubscriptionKey);
    if (m->get_object().empty()) p->get_object().erase("_meta");
  }
  return true;
}

ModernEra::Step ModernEra::OnAnswer(int64_t id, const json::object& request, json::object answer) {
  Step step;
  step.call = id;
  const json::value* r = answer.if_contains("result");
  const json::object* result = r ? r->if_object() : nullptr;
  if (!result || StringAt(*result, "resultType") != "input_required") {
    Forget(id);
    step.kind = Step::kFinal;
    step.answer = std::move(answer);
    return step;
  }
  const json::value* q = result->if_contains("inputRequests");
  const json::object* requests = q ? q->if_object() : nullptr;
  MutexLock lock(mu_);
  Round& round = rounds_[id];
  auto fail = [&](json::object error) REQUIRES(mu_) {
    for (const auto& [ask, key] : round.asks) asks_.erase(ask);
    rounds_.erase(id);
    step.kind = Step::kFinal;
    step.answer = std::move(error);
    step.asks.clear();
    return step;
  };
  if (!requests || requests->empty()) {
    return fail(Error(-32603, "the MCP server asked for input without saying what it needs"));
  }
  if (++round.rounds > kMaxInputRounds) {
    return fail(Error(-32603, "the MCP server asked for input more than " +
                                  std::to_string(kMaxInputRounds) + " times in one request"));
  }
  for (const auto& [ask, key] : round.asks) asks_.erase(ask);
  round.asks.clear();
  round.methods.clear();
  round.responses.clear();
  round.request = request;
  const json::value* state = result->if_contains("requestState");
  round.state = state ? *state : json::value();
  step.kind = Step::kAsk;
  for (const auto& [key, v] : *requests) {
    const json::object* ir = v.if_object();
    std::string method = ir ? StringAt(*ir, "method") : "";
    if (method.empty()) {
      return fail(Error(-32603, "the MCP server asked for input in a request without a method"));
    }
    std::string ask = "custody-input-" + std::to_string(next_ask_++);
    asks_[ask] = id;
    round.asks[ask] = std::string(key);
    round.methods[ask] = method;
    json::object out{{"jsonrpc", "2.0"}, {"id", ask}, {"method", method}, {"inputKey", key}};
    if (const json::value* params = ir->if_contains("params")) out["params"] = *params;
    step.asks.push_back(std::move(out));
  }
  return step;
}

std::optional<ModernEra::Step> ModernEra::OnRespond(const json::value& id, json::object answer) {
  if (!id.is_string()) return std::nullopt;
  MutexLock lock(mu_);
  auto a = asks_.find(std::string(id.get_string()));
  if (a == asks_.end()) return std::nullopt;
  Step step;
  step.call = a->second;
  asks_.erase(a);
  auto rit = rounds_.find(step.call);
  if (rit == rounds_.end()) return step;  // kWait: the request ended meanwhile
  Round& round = rit->second;
  std::string ask(id.get_string());
  std::string key = round.asks[ask];
  std::string method = round.methods[ask];
  round.asks.erase(ask);
  if (const json::value* e = answer.if_contains("error")) {
    // The client could not answer: the request fails, as the revision's server would fail it.
    const json::object* err = e->if_object();
    int64_t code = err && err->contains("code") && err->at("code").is_int64()
                       ? err->at("code").get_int64()
                       : -32603;
    std::string message = err ? StringAt(*err, "message") : "";
    for (const auto& [other, k] : round.asks) asks_.erase(other);
    json::object params;
    if (const json::value* p = round.request.if_contains("params"); p && p->is_object()) {
      params = p->get_object();
    }
    rounds_.erase(rit);
    step.kind = Step::kFinal;
    if (code == -32601) {
      json::object error{
          {"code", -32021},
          {"message", "the client cannot answer the MCP server's " + method +
                          (message.empty() ? "" : ": " + message)},
          {"data", json::object{{"requiredCapabilities", RequiredCapability(method, params)}}}};
      step.answer = json::object{{"error", std::move(error)}};
    } else {
      step.answer = Error(static_cast<int>(code), "the client answered the MCP server's " + method +
                                                      " with an error" +
                                                      (message.empty() ? "" : ": " + message));
    }
    return step;
  }
  if (const json::value* res = answer.if_contains("result")) round.responses[key] = *res;
  if (!round.asks.empty()) return step;  // kWait
  step.kind = Step::kRetry;
  step.request = round.request;
  json::object& params = ParamsOf(step.request);
  params["inputResponses"] = std::move(round.responses);
  round.responses = json::object{};
  if (round.state.is_null()) {
    params.erase("requestState");
  } else {
    params["requestState"] = round.state;
  }
  return step;
}

ModernEra::Step ModernEra::Deliver(Step step, const UpstreamOptions& options) {
  if (step.kind != Step::kAsk) return step;
  if (!options.on_request) {
    step.kind = Step::kFinal;
    step.answer = Error(-32603, "the MCP server asked for input the gateway cannot relay");
    return step;
  }
  for (const json::object& ask : step.asks) options.on_request(ask, step.call);
  if (options.on_requests_end) options.on_requests_end(step.call);
  step.kind = Step::kWait;
  return step;
}

void ModernEra::Forget(int64_t id) {
  MutexLock lock(mu_);
  auto it = rounds_.find(id);
  if (it == rounds_.end()) return;
  for (const auto& [ask, key] : it->second.asks) asks_.erase(ask);
  rounds_.erase(it);
}

size_t ModernEra::open_rounds() const {
  MutexLock lock(mu_);
  return rounds_.size();
}

}  // namespace custody::mcp
