#include "cli/server_client.h"

#include <CLI/CLI.hpp>
#include <boost/json.hpp>
#include <cctype>
#include <cstdlib>
#include <iostream>
#include <optional>

#include "common/json_parse.h"
#include "http/client.h"

namespace custody::cli {
namespace {

namespace json = boost::json;

struct ServerUrl {
  bool tls = false;
  std::string host;
  uint16_t port = 0;
  std::string prefix;  // path prefix without a trailing slash ("" for the root)
};

// http[s]://host[:port][/prefix]; host may be a bracketed IPv6 literal.
bool ParseServerUrl(std::string_view url, ServerUrl* out) {
  if (url.starts_with("https://")) {
    out->tls = true;
    url.remove_prefix(8);
  } else if (url.starts_with("http://")) {
    url.remove_prefix(7);
  } else {
    return false;
  }
  size_t slash = url.find('/');
  std::string_view authority = url.substr(0, slash);
  if (slash != std::string_view::npos) {
    out->prefix = std::string(url.substr(slash));
    while (!out->prefix.empty() && out->prefix.back() == '/') out->prefix.pop_back();
  }
  std::string_view port;
  if (authority.starts_with("[")) {
    size_t close = authority.find(']');
    if (close == std::string_view::npos) return false;
    out->host = std::string(authority.substr(1, close - 1));
    std::string_view rest = authority.substr(close + 1);
    if (!rest.empty()) {
      if (rest[0] != ':') return false;
      port = rest.substr(1);
    }
  } else {
    size_t colon = authority.rfind(':');
    out->host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) port = authority.substr(colon + 1);
  }
  if (out->host.empty()) return false;
  if (port.empty()) {
    out->port = out->tls ? 443 : 80;
    return true;
  }
  unsigned value = 0;
  for (char c : port) {
    if (c < '0' || c > '9') return false;
    value = value * 10 + static_cast<unsigned>(c - '0');
    if (value > 65535) return false;
  }
  out->port = static_cast<uint16_t>(value);
  return value != 0;
}

std::string EffectiveUrl(const ServerFlags& f) {
  if (!f.url.empty()) return f.url;
  if (const char* env = std::getenv("CUSTODY_SERVER"); env != nullptr && *env != '\0') return env;
  return std::string(kDefaultServerUrl);
}

std::string EffectiveToken(const ServerFlags& f) {
  if (!f.token.empty()) return f.token;
  if (const char* env = std::getenv("CUSTODY_TOKEN"); env != nullptr) return env;
  return "";
}

// The server's message for a failed request: our error shape, an OAuth error, or the status.
std::string DescribeError(const http::ClientResponse& r) {
  boost::system::error_code ec;
  json::value v = ParseJson(r.body, ec);
  std::string where = "HTTP " + std::to_string(r.status);
  if (!ec && v.is_object()) {
    const json::object& o = v.as_object();
    auto err = o.find("error");
    if (err != o.end() && err->value().is_object()) {
      const json::object& e = err->value().as_object();
      auto text = [&](std::string_view k) {
        auto it = e.find(k);
        return it != e.end() && it->value().is_string() ? std::string(it->value().as_string())
                                                        : std::string();
      };
      std::string rid = text("request_id");
      if (!rid.empty()) where += ", request " + rid;
      return text("code") + ": " + text("message") + " (" + where + ")";
    }
    if (err != o.end() && err->value().is_string()) {
      std::string out(err->value().as_string());
      if (auto d = o.find("error_description"); d != o.end() && d->value().is_string()) {
        out += ": " + std::string(d->value().as_string());
      }
      return out + " (" + where + ")";
    }
  }
  return where + (r.body.empty() ? "" : ": " + r.body.substr(0, 200));
}

void PrintIndented(const json::value& v, int indent, std::string& out) {
  auto pad = [&](int n) { out.append(static_cast<size_t>(n) * 2, ' '); };
  if (v.is_object() && !v.as_object().empty()) {
    out += "{\n";
    bool first = true;
    for (const auto& kv : v.as_object()) {
      if (!first) out += ",\n";
      first = false;
      pad(indent + 1);
      out += json::serialize(json::string(kv.key()));
      out += ": ";
      PrintIndented(kv.value(), indent + 1, out);
    }
    out += "\n";
    pad(indent);
    out += "}";
  } else if (v.is_array() && !v.as_array().empty()) {
    out += "[\n";
    bool first = true;
    for (const auto& e : v.as_array()) {
      if (!first) out += ",\n";
      first = false;
      pad(indent + 1);
      PrintIndented(e, indent + 1, out);
    }
    out += "\n";
    pad(indent);
    out += "]";
  } else {
    out += json::serialize(v);
  }
}

}  // namespace

void AddServerOptions(CLI::App* cmd, ServerFlags& flags) {
  cmd->add_option(
      "--server", flags.url,
      "Custody server URL (or CUSTODY_SERVER; default " + std::string(kDefaultServerUrl) + ")");
  cmd->add_option("--token", flags.token, "Admin API bearer token (or CUSTODY_TOKEN)");
  cmd->add_option("--ca-file", flags.ca_file, "PEM trust anchors for an https:// server");
}

std::string PathSegment(std::string_view s) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

[[noreturn]] void FailWith(const std::string& message, int exit_code) {
  std::cerr << "custody: " << message << "\n";
  throw CLI::RuntimeError(exit_code);
}

namespace {

// One request: `content_type` for a non-empty body; the admin token only when `admin`. With
// `optional`, an answer other than 2xx JSON is nullopt instead of the end of the command.
std::optional<json::value> Call(const ServerFlags& flags, std::string_view method,
                                const std::string& target, const std::string& body,
                                std::string_view content_type, bool admin, bool optional,
                                std::string_view what) {
  std::string url = EffectiveUrl(flags);
  ServerUrl server;
  if (!ParseServerUrl(url, &server)) {
    FailWith("--server must be http://HOST[:PORT] or https://HOST[:PORT], got \"" + url + "\"", 2);
  }
  http::ClientOptions options;
  options.tls = server.tls;
  options.ca_file = flags.ca_file;
  options.timeout = std::chrono::seconds(30);
  http::BlockingHttpClient client(server.host, server.port, options);
  http::ClientRequest req;
  req.method = std::string(method);
  req.target = server.prefix + target;
  req.headers.Set("accept", "application/json");
  std::string token = admin ? EffectiveToken(flags) : "";
  if (!token.empty()) req.headers.Set("authorization", "Bearer " + token);
  if (!body.empty()) {
    req.body = body;
    req.headers.Set("content-type", std::string(content_type));
  }
  auto r = client.Send(std::move(req));
  if (!r.ok()) {
    FailWith(std::string(what) + ": cannot reach the Custody server at " + url + " (" +
             r.status().message() + "). Is `custody serve` running there? Set --server or " +
             "CUSTODY_SERVER.");
  }
  if (optional && (r->status < 200 || r->status >= 300)) return std::nullopt;
  if (r->status < 200 || r->status >= 300) {
    std::string hint;
    if (r->status == 401 && admin && token.empty()) hint = " Pass --token or set CUSTODY_TOKEN.";
    FailWith(std::string(what) + ": " + DescribeError(*r) + hint);
  }
  boost::system::error_code ec;
  json::value v = ParseJson(r->body, ec);
  if (ec && optional) return std::nullopt;
  if (ec) FailWith(std::string(what) + ": the server's answer is not JSON");
  return v;
}

}  // namespace

json::value CallServer(const ServerFlags& flags, std::string_view method, const std::string& target,
                       const std::string& body, std::string_view what) {
  return *Call(flags, method, target, body, "application/json", /*admin=*/true,
               /*optional=*/false, what);
}

json::value PostServerForm(const ServerFlags& flags, const std::string& target,
                           const std::vector<std::pair<std::string, std::string>>& fields,
                           std::string_view what) {
  std::string body;
  for (const auto& [name, value] : fields) {
    if (!body.empty()) body += '&';
    body += PathSegment(name) + "=" + PathSegment(value);
  }
  return *Call(flags, "POST", target, body, "application/x-www-form-urlencoded", /*admin=*/false,
               /*optional=*/false, what);
}

std::optional<json::value> GetOptionalDocument(const ServerFlags& flags, const std::string& target,
                                               std::string_view what) {
  return Call(flags, "GET", target, "", "", /*admin=*/false, /*optional=*/true, what);
}

void PrintJson(const json::value& v) {
  std::string out;
  PrintIndented(v, 0, out);
  out += "\n";
  std::cout << out << std::flush;
}

}  // namespace custody::cli
