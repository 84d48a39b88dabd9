#include "mcp/jsonrpc.h"

#include <cmath>

#include "common/json_parse.h"

namespace custody::mcp {

int JsonRpcCodeFor(StatusCode code) {
  switch (code) {
    case StatusCode::kInvalidArgument:
      return kInvalidParams;
    case StatusCode::kNotFound:
      return kMethodNotFound;
    case StatusCode::kPermissionDenied:
    case StatusCode::kUnauthenticated:
    case StatusCode::kFailedPrecondition:
      return kDenied;
    case StatusCode::kUnavailable:
      return kUnavailable;
    default:
      return kInternalError;
  }
}

const json::object& Message::params() const {
  static const json::object kEmpty;
  auto it = obj.find("params");
  if (it == obj.end() || !it->value().is_object()) return kEmpty;
  return it->value().get_object();
}

namespace {

bool ValidId(const json::value& v) { return v.is_string() || v.is_int64() || v.is_uint64(); }

// Boost.JSON reads a number beyond the double range as infinity (and would write it back as
// "Infinity", which is not JSON). The walk is bounded by the parser's depth limit.
bool AllFinite(const json::value& v) {
  switch (v.kind()) {
    case json::kind::double_:
      return std::isfinite(v.get_double());
    case json::kind::array:
      for (const auto& e : v.get_array()) {
        if (!AllFinite(e)) return false;
      }
      return true;
    case json::kind::object:
      for (const auto& m : v.get_object()) {
        if (!AllFinite(m.value())) return false;
      }
      return true;
    default:
      return true;
  }
}

bool Fail(RpcError* error, int code, std::string message) {
  error->code = code;
  error->message = std::move(message);
  return false;
}

}  // namespace

bool ParseMessage(std::string_view text, Message* out, RpcError* error, json::value* id) {
  *id = nullptr;
  boost::system::error_code ec;
  json::value v = ParseJson(text, ec);
  if (ec) return Fail(error, kParseError, "parse error: " + ec.message());
  if (v.is_array()) {
    return Fail(error, kInvalidRequest,
                "batches are not supported (removed from MCP in 2025-06-18); send one message");
  }
  if (!v.is_object()) return Fail(error, kInvalidRequest, "a JSON-RPC message must be an object");
  json::object& o = v.get_object();
  auto idit = o.find("id");
  if (idit != o.end() && ValidId(idit->value())) *id = idit->value();
  if (!AllFinite(v)) return Fail(error, kParseError, "parse error: a number is out of range");
  auto ver = o.find("jsonrpc");
  if (ver == o.end() || !ver->value().is_string() || ver->value().get_string() != "2.0") {
    return Fail(error, kInvalidRequest, "jsonrpc must be \"2.0\"");
  }
  auto m = o.find("method");
  bool has_id = idit != o.end();
  if (has_id && !ValidId(idit->value())) {
    return Fail(error, kInvalidRequest, "id must be a string or an integer");
  }
  if (m != o.end()) {
    if (!m->value().is_string() || m->value().get_string().empty()) {
      return Fail(error, kInvalidRequest, "method must be a non-empty string");
    }
    auto p = o.find("params");
    if (p != o.end() && !p->value().is_object()) {
      return Fail(error, kInvalidRequest, "params must be an object");
    }
    out->kind = has_id ? MessageKind::kRequest : MessageKind::kNotification;
    out->method = std::string(m->value().get_string());
  } else {
    bool has_result = o.contains("result");
    bool has_error = o.contains("error");
    if (!has_id || has_result == has_error) {
      return Fail(error, kInvalidRequest,
                  "not a request, notification or response (missing method, or id with exactly "
                  "one of result and error)");
    }
    out->kind = MessageKind::kResponse;
  }
  out->id = has_id ? idit->value() : json::value(nullptr);
  out->obj = std::move(o);
  return true;
}

std::string ResultText(const json::value& id, json::value result) {
  json::object o{{"jsonrpc", "2.0"}, {"id", id}, {"result", std::move(result)}};
  return json::serialize(o);
}

json::object ErrorObject(const json::value& id, int code, std::string_view message,
                         const json::value& data) {
  json::object err{{"code", code}, {"message", message}};
  if (!data.is_null()) {
    err["data"] = data;
  } else if (code == kUnavailable) {
    // The gateway's own -32002, told apart from a server's (2025-06-18's resource not found).
    err["data"] = json::object{{"reason", kUnavailableReason}};
  }
  return json::object{{"jsonrpc", "2.0"}, {"id", id}, {"error", std::move(err)}};
}

std::string ErrorText(const json::value& id, int code, std::string_view message,
                      const json::value& data) {
  return json::serialize(ErrorObject(id, code, message, data));
}

}  // namespace custody::mcp
