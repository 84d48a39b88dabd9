#include "mcp/modern.h"

#include "common/encoding.h"
#include "common/json_parse.h"
#include "http/http.h"
#include "mcp/admission.h"

namespace custody::mcp {

namespace {

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

const json::object* MetaOf(const Message& msg) {
  const json::value* m = msg.params().if_contains("_meta");
  return m ? m->if_object() : nullptr;
}

Refusal Mismatch(std::string message) {
  return Refusal{400, kHeaderMismatch, "header mismatch: " + std::move(message), nullptr};
}

}  // namespace

std::string NameInBody(const Message& msg) {
  std::string_view member;
  if (msg.method == "tools/call" || msg.method == "prompts/get") member = "name";
  if (msg.method == "resources/read") member = "uri";
  if (member.empty()) return "";
  const json::value* v = msg.params().if_contains(member);
  return v && v->is_string() ? std::string(v->get_string()) : "";
}

bool ClaimsModern(const Message& msg) {
  const json::object* meta = MetaOf(msg);
  return meta && meta->contains(kMetaVersion);
}

std::optional<std::string> HeaderValue(std::string_view raw) {
  std::string_view v = Trim(raw);
  constexpr std::string_view kOpen = "=?base64?", kClose = "?=";
  if (v.size() >= kOpen.size() + kClose.size() && v.starts_with(kOpen) && v.ends_with(kClose)) {
    auto bytes = Base64Decode(v.substr(kOpen.size(), v.size() - kOpen.size() - kClose.size()));
    if (!bytes.ok()) return std::nullopt;
    return std::string(bytes->begin(), bytes->end());
  }
  for (unsigned char c : v) {
    if (c < 0x20 || c >= 0x7F) return std::nullopt;  // not plain ASCII: must be sent encoded
  }
  return std::string(v);
}

std::optional<Refusal> CheckModern(const http::Request& req, const Message& msg,
                                   ModernRequest* out) {
  const json::object& meta = *MetaOf(msg);
  const json::value& version = meta.at(kMetaVersion);
  const json::value* caps = meta.if_contains(kMetaCapabilities);
  const json::value* info = meta.if_contains(kMetaClientInfo);
  const json::value* level = meta.if_contains(kMetaLogLevel);
  if (!version.is_string() || !caps || !caps->is_object() || (info && !info->is_object()) ||
      (level && (!level->is_string() || LogSeverity(level->get_string()) < 0))) {
    return Refusal{400, kInvalidParams,
                   "a 2026-07-28 request's params._meta needs \"" + std::string(kMetaVersion) +
                       "\" (a string) and \"" + std::string(kMetaCapabilities) +
                       "\" (an object); \"" + std::string(kMetaClientInfo) +
                       "\", when sent, is an object and \"" + std::string(kMetaLogLevel) +
                       "\" a log level",
                   nullptr};
  }
  const std::string requested(version.get_string());
  auto version_header = req.headers.Get("mcp-protocol-version");
  auto method_header = req.headers.Get("mcp-method");
  if (version_header && Trim(*version_header) != requested) {
    return Mismatch("MCP-Protocol-Version " + std::string(Trim(*version_header)) +
                    " but params._meta says " + requested);
  }
  if (method_header && HeaderValue(*method_header) != msg.method) {
    return Mismatch("Mcp-Method does not match the body's method " + msg.method);
  }
  if (requested != kModernVersion) {
    return Refusal{400, kUnsupportedVersion, "unsupported protocol version " + requested,
                   json::object{{"supported", SupportedVersions()}, {"requested", requested}}};
  }
  if (!version_header) return Mismatch("the MCP-Protocol-Version header is required");
  if (!method_header) return Mismatch("the Mcp-Method header is required");
  if (std::string name = NameInBody(msg); !name.empty()) {
    auto name_header = req.headers.Get("mcp-name");
    if (!name_header) return Mismatch("the Mcp-Name header is required for " + msg.method);
    if (HeaderValue(*name_header) != name) {
      return Mismatch("Mcp-Name does not match the body's " +
                      std::string(msg.method == "resources/read" ? "params.uri" : "params.name"));
    }
  }
  out->version = requested;
  out->capabilities = caps->get_object();
  out->client_info = info ? *info : json::value(nullptr);
  out->log_level = level ? std::string(level->get_string()) : "";
  return std::nullopt;
}

std::optional<Refusal> CheckLegacyHeader(const http::Request& req) {
  auto v = req.headers.Get("mcp-protocol-version");
  if (!v || Trim(*v) != kModernVersion) return std::nullopt;
  return Refusal{400, kInvalidParams,
                 "MCP-Protocol-Version " + std::string(kModernVersion) + " needs params._meta \"" +
                     std::string(kMetaVersion) + "\" and \"" + std::string(kMetaCapabilities) +
                     "\"",
                 nullptr};
}

json::array SupportedVersions() {
  json::array out{json::string(kModernVersion)};
  for (const char* v : kProtocolVersions) out.emplace_back(v);
  return out;
}

bool RemovedInModern(std::string_view method) {
  return method == "initialize" || method == "ping" || method == "logging/setLevel" ||
         method == "resources/subscribe" || method == "resources/unsubscribe";
}

bool ServedInModern(std::string_view method) {
  return CacheableMethod(method) || method == "tools/call" || method == "prompts/get" ||
         method == "completion/complete" || method == "subscriptions/listen";
}

bool CacheableMethod(std::string_view method) {
  return method == "tools/list" || method == "resources/list" ||
         method == "resources/templates/list" || method == "prompts/list" ||
         method == "resources/read" || method == "server/discover";
}

std::string ModernBody(std::string body, bool cacheable, const json::object& server_info,
                       int* http_status) {
  boost::system::error_code ec;
  json::value v = ParseJson(body, ec);
  if (ec || !v.is_object()) return body;
  json::object& o = v.get_object();
  if (json::value* r = o.if_contains("result"); r && r->is_object()) {
    json::object& result = r->get_object();
    if (!result.contains("resultType")) result["resultType"] = "complete";
    if (cacheable && result["resultType"] == "complete") {
      if (!result.contains("ttlMs")) result["ttlMs"] = 0;
      if (!result.contains("cacheScope")) result["cacheScope"] = "private";
    }
    json::value& meta = result["_meta"];
    if (!meta.is_object()) meta = json::object{};
    meta.get_object()[kMetaServerInfo] = server_info;
  } else if (json::value* e = o.if_contains("error"); e && e->is_object()) {
    // -32002 is retired in 2026-07-28: the gateway's own (upstream unavailable) becomes -32000,
    // a 2025-era server's (resource not found) the revision's -32602.
    json::object& err = e->get_object();
    if (err["code"] == kUnavailable) {
      const json::value* data = err.if_contains("data");
      const json::value* reason =
          data && data->is_object() ? data->get_object().if_contains("reason") : nullptr;
      const bool ours = reason && reason->is_string() && reason->get_string() == kUnavailableReason;
      err["code"] = ours ? -32000 : kInvalidParams;
    }
    if (http_status && err["code"] == -32021) *http_status = 400;
  }
  return json::serialize(v);
}

int LogSeverity(std::string_view level) {
  constexpr std::string_view kLevels[] = {"debug", "info",     "notice", "warning",
                                          "error", "critical", "alert",  "emergency"};
  for (int i = 0; i < 8; ++i) {
    if (level == kLevels[i]) return i;
  }
  return -1;
}

}  // namespace custody::mcp
