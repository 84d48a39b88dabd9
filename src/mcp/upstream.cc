#include "mcp/upstream.h"

#include <boost/json.hpp>

#include "mcp/http_upstream.h"
#include "mcp/stdio_upstream.h"

namespace custody::mcp {

std::string AnswerServerRequest(const boost::json::value& id, std::string_view method) {
  boost::json::object reply{{"jsonrpc", "2.0"}, {"id", id}};
  if (method == "ping") {
    reply["result"] = boost::json::object{};
  } else {
    reply["error"] = boost::json::object{
        {"code", -32601}, {"message", "the Custody gateway offers no client features"}};
  }
  return boost::json::serialize(reply);
}

std::string ResponseText(const boost::json::value& id, boost::json::object answer) {
  boost::json::object reply{{"jsonrpc", "2.0"}, {"id", id}};
  for (auto& kv : answer) reply[kv.key()] = std::move(kv.value());
  return boost::json::serialize(reply);
}

bool HandleServerMessage(const boost::json::object& message, int64_t related,
                         const std::function<void(std::string)>& reply,
                         const UpstreamOptions& options) {
  auto mit = message.find("method");
  if (mit == message.end()) return false;
  if (auto idit = message.find("id"); idit != message.end()) {
    std::string_view method =
        mit->value().is_string() ? std::string_view(mit->value().get_string()) : "";
    if (method == "ping" || !options.on_request || method.empty()) {
      reply(AnswerServerRequest(idit->value(), method));
    } else {
      options.on_request(message, related);
    }
  } else if (options.on_notification) {
    options.on_notification(message, related);
  }
  return true;
}

std::set<std::string, std::less<>> CapabilityNames(const boost::json::object& result) {
  std::set<std::string, std::less<>> out;
  if (auto c = result.find("capabilities"); c != result.end() && c->value().is_object()) {
    for (const auto& kv : c->value().get_object()) {
      out.emplace(kv.key());
      if (const auto* flags = kv.value().if_object()) {
        for (const auto& f : *flags) {
          if (f.value() == true) out.emplace(std::string(kv.key()) + "." + std::string(f.key()));
        }
      }
    }
  }
  return out;
}

boost::json::object GatewayClientCapabilities(const UpstreamOptions& options) {
  boost::json::object capabilities;
  if (options.on_request) {
    capabilities["sampling"] = boost::json::object{};
    capabilities["elicitation"] =
        boost::json::object{{"form", boost::json::object{}}, {"url", boost::json::object{}}};
  }
  return capabilities;
}

boost::json::object GatewayClientInfo() {
  return boost::json::object{{"name", "custody-gateway"}, {"version", "0.1.0"}};
}

std::string InitializeRequest(int64_t id, const UpstreamOptions& options) {
  boost::json::object params{{"protocolVersion", options.protocol_version},
                             {"capabilities", GatewayClientCapabilities(options)},
                             {"clientInfo", GatewayClientInfo()}};
  return boost::json::serialize(boost::json::object{
      {"jsonrpc", "2.0"}, {"id", id}, {"method", "initialize"}, {"params", std::move(params)}});
}

void LogUpstream(const UpstreamOptions& o, LogLevel level, const std::string& server,
                 const std::string& message) {
  if (o.log != nullptr && o.log->Enabled(level)) {
    o.log->Log(level, "mcp_upstream", {{"server", server}, {"message", message}});
  }
}

void ReportUpstream(const UpstreamOptions& o, std::string_view site, const Status& status) {
  if (o.errors != nullptr) o.errors->Report(site, status);
}

int64_t Upstream::Call(const std::string& method, boost::json::value params,
                       UpstreamCallback done) {
  return Call(method, std::move(params), RequestExtras{}, std::move(done));
}

void PlaceTxnTokenMeta(boost::json::value& params, std::string txn_token) {
  if (txn_token.empty()) {
    boost::json::object* p = params.if_object();
    boost::json::value* m = p ? p->if_contains("_meta") : nullptr;
    if (m && m->is_object()) m->get_object().erase(kTxnTokenMetaKey);
    return;
  }
  if (!params.is_object()) params = boost::json::object{};
  boost::json::value& meta = params.get_object()["_meta"];
  if (!meta.is_object()) meta = boost::json::object{};
  meta.get_object()[kTxnTokenMetaKey] = std::move(txn_token);
}

Result<std::string> TxnTokenForSend(const TxnTokenSource& source, const std::string& server) {
  if (!source) return std::string();
  auto token = source();
  if (!token.ok()) {
    return UnavailableError(
        "not sent to " + server +
        ": its transaction token could not be minted: " + token.status().message());
  }
  if (token->empty()) {  // fail closed: a server that is told who is behind a call always is
    return UnavailableError("not sent to " + server + ": its transaction token is empty");
  }
  return token;
}

std::string DefaultTxnAudience(const UpstreamConfig& config) {
  return config.url.empty() ? "urn:custody:mcp:" + config.name : config.url;
}

Result<std::unique_ptr<Upstream>> MakeUpstream(UpstreamConfig config, UpstreamOptions options) {
  if (config.command.empty() == config.url.empty()) {
    return InvalidArgumentError("MCP server \"" + config.name +
                                "\" needs exactly one of command (stdio) and url (HTTP)");
  }
  if (!config.command.empty()) {
    return std::unique_ptr<Upstream>(
        std::make_unique<StdioUpstream>(std::move(config), std::move(options)));
  }
  ASSIGN_OR_RETURN(auto http, HttpUpstream::Create(std::move(config), std::move(options)));
  return std::unique_ptr<Upstream>(std::move(http));
}

}  // namespace custody::mcp
