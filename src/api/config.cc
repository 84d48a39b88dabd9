#include "api/config.h"

#include <toml++/toml.h>

#include <cctype>
#include <charconv>
#include <functional>
#include <variant>

extern char** environ;

namespace custody::api {
namespace {

using Setting = std::variant<std::string*, int64_t*, bool*>;

struct KeyDef {
  const char* name;
  std::function<Setting(Config&)> get;
};

const std::vector<KeyDef>& Keys() {
  static const std::vector<KeyDef> keys = {
      {"listen", [](Config& c) -> Setting { return &c.listen; }},
      {"data_dir", [](Config& c) -> Setting { return &c.data_dir; }},
      {"trust_domain", [](Config& c) -> Setting { return &c.trust_domain; }},
      {"worker_threads", [](Config& c) -> Setting { return &c.worker_threads; }},
      {"ledger.origin", [](Config& c) -> Setting { return &c.ledger.origin; }},
      {"ledger.batch_size", [](Config& c) -> Setting { return &c.ledger.batch_size; }},
      {"ledger.batch_delay_us", [](Config& c) -> Setting { return &c.ledger.batch_delay_us; }},
      {"ledger.max_events_per_request",
       [](Config& c) -> Setting { return &c.ledger.max_events_per_request; }},
      {"admin.token_db", [](Config& c) -> Setting { return &c.admin.token_db; }},
      {"admin.protect_reads", [](Config& c) -> Setting { return &c.admin.protect_reads; }},
      {"identity.issuer", [](Config& c) -> Setting { return &c.identity.issuer; }},
      {"identity.svid_lifetime_s",
       [](Config& c) -> Setting { return &c.identity.svid_lifetime_s; }},
      {"identity.trusted_issuers_file",
       [](Config& c) -> Setting { return &c.identity.trusted_issuers_file; }},
      {"attribution.audience", [](Config& c) -> Setting { return &c.attribution.audience; }},
      {"attribution.arguments", [](Config& c) -> Setting { return &c.attribution.arguments; }},
      {"attribution.redact_fields",
       [](Config& c) -> Setting { return &c.attribution.redact_fields; }},
      {"log.level", [](Config& c) -> Setting { return &c.log.level; }},
      {"log.format", [](Config& c) -> Setting { return &c.log.format; }},
      {"tls.cert", [](Config& c) -> Setting { return &c.tls.cert; }},
      {"tls.key", [](Config& c) -> Setting { return &c.tls.key; }},
      {"limits.max_body_bytes", [](Config& c) -> Setting { return &c.limits.max_body_bytes; }},
      {"limits.max_header_bytes", [](Config& c) -> Setting { return &c.limits.max_header_bytes; }},
      {"limits.header_timeout_ms",
       [](Config& c) -> Setting { return &c.limits.header_timeout_ms; }},
      {"limits.body_timeout_ms", [](Config& c) -> Setting { return &c.limits.body_timeout_ms; }},
      {"limits.write_timeout_ms", [](Config& c) -> Setting { return &c.limits.write_timeout_ms; }},
      {"limits.shutdown_timeout_ms",
       [](Config& c) -> Setting { return &c.limits.shutdown_timeout_ms; }},
      {"mcp.audience", [](Config& c) -> Setting { return &c.mcp.audience; }},
      {"mcp.allowed_origins", [](Config& c) -> Setting { return &c.mcp.allowed_origins; }},
      {"mcp.max_message_bytes", [](Config& c) -> Setting { return &c.mcp.max_message_bytes; }},
      {"mcp.request_timeout_ms", [](Config& c) -> Setting { return &c.mcp.request_timeout_ms; }},
      {"mcp.await_outcome", [](Config& c) -> Setting { return &c.mcp.await_outcome; }},
      {"mcp.session_idle_timeout_ms",
       [](Config& c) -> Setting { return &c.mcp.session_idle_timeout_ms; }},
      {"mcp.max_sessions_per_custody_session",
       [](Config& c) -> Setting { return &c.mcp.max_sessions_per_custody_session; }},
  };
  return keys;
}

const KeyDef* FindKey(std::string_view name) {
  for (const KeyDef& k : Keys()) {
    if (name == k.name) return &k;
  }
  return nullptr;
}

std::string EnvName(std::string_view key) {
  std::string out = "CUSTODY_";
  for (char c : key)
    out += c == '.' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

// Sets a key from text (environment variables and flags).
Status SetFromString(Config& c, const KeyDef& def, std::string_view value, std::string_view where) {
  Setting s = def.get(c);
  if (auto* str = std::get_if<std::string*>(&s)) {
    **str = std::string(value);
    return OkStatus();
  }
  if (auto* b = std::get_if<bool*>(&s)) {
    if (value == "true" || value == "1") {
      **b = true;
    } else if (value == "false" || value == "0") {
      **b = false;
    } else {
      return InvalidArgumentError(std::string(where) + ": " + def.name + " must be true or false");
    }
    return OkStatus();
  }
  int64_t v = 0;
  auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), v);
  if (ec != std::errc() || p != value.data() + value.size()) {
    return InvalidArgumentError(std::string(where) + ": " + def.name + " must be an integer");
  }
  *std::get<int64_t*>(s) = v;
  return OkStatus();
}

std::string Where(std::string_view name, const toml::source_region& src) {
  return std::string(name) + ":" + std::to_string(src.begin.line) + ":" +
         std::to_string(src.begin.column);
}

// [mcp.servers.NAME]: either command (string) with args (array of strings) and env (table of
// strings), or url (http/https) with headers (table of strings) and ca_file. Unknown keys are
// errors, as everywhere else.
Status ApplyMcpServers(Config& c, const toml::table& servers, std::string_view name) {
  for (const auto& [k, node] : servers) {
    std::string server(k.str());
    const toml::table* t = node.as_table();
    if (!t) {
      return InvalidArgumentError(Where(name, node.source()) + ": mcp.servers." + server +
                                  " must be a table");
    }
    bool name_ok = !server.empty() && server.size() <= 64;
    for (char ch : server) {
      if (!std::isalnum(static_cast<unsigned char>(ch)) && ch != '-' && ch != '_' && ch != '.') {
        name_ok = false;
      }
    }
    if (!name_ok) {
      return InvalidArgumentError(Where(name, node.source()) + ": MCP server name \"" + server +
                                  "\" must be 1-64 of [A-Za-z0-9._-]");
    }
    Config::McpServer s;
    for (const auto& [mk, mv] : *t) {
      std::string key = "mcp.servers." + server + "." + std::string(mk.str());
      if (mk.str() == "command") {
        if (!mv.is_string()) {
          return InvalidArgumentError(Where(name, mv.source()) + ": " + key + " must be a string");
        }
        s.command = *mv.value<std::string>();
      } else if (mk.str() == "args") {
        const toml::array* a = mv.as_array();
        if (!a) {
          return InvalidArgumentError(Where(name, mv.source()) + ": " + key +
                                      " must be an array of strings");
        }
        for (const auto& e : *a) {
          if (!e.is_string()) {
            return InvalidArgumentError(Where(name, e.source()) + ": " + key +
                                        " must be an array of strings");
          }
          s.args.push_back(*e.value<std::string>());
        }
      } else if (mk.str() == "env" || mk.str() == "headers") {
        const toml::table* e = mv.as_table();
        if (!e) {
          return InvalidArgumentError(Where(name, mv.source()) + ": " + key +
                                      " must be a table of strings");
        }
        auto& out = mk.str() == "env" ? s.env : s.headers;
        for (const auto& [ek, ev] : *e) {
          if (!ev.is_string()) {
            return InvalidArgumentError(Where(name, ev.source()) + ": " + key + "." +
                                        std::string(ek.str()) + " must be a string");
          }
          out[std::string(ek.str())] = *ev.value<std::string>();
        }
      } else if (mk.str() == "url" || mk.str() == "ca_file") {
        if (!mv.is_string()) {
          return InvalidArgumentError(Where(name, mv.source()) + ": " + key + " must be a string");
        }
        (mk.str() == "url" ? s.url : s.ca_file) = *mv.value<std::string>();
      } else {
        return InvalidArgumentError(Where(name, mv.source()) + ": unknown key " + key);
      }
    }
    if (s.command.empty() == s.url.empty()) {
      return InvalidArgumentError(Where(name, node.source()) + ": mcp.servers." + server +
                                  " needs exactly one of command (a stdio server) and url (a "
                                  "Streamable HTTP server)");
    }
    if (!s.url.empty() && !s.url.starts_with("http://") && !s.url.starts_with("https://")) {
      return InvalidArgumentError(Where(name, node.source()) + ": mcp.servers." + server +
                                  ".url must start with http:// or https://");
    }
    if (s.url.empty() && (!s.headers.empty() || !s.ca_file.empty())) {
      return InvalidArgumentError(Where(name, node.source()) + ": mcp.servers." + server +
                                  ": headers and ca_file apply to url servers only");
    }
    if (!s.url.empty() && (!s.args.empty() || !s.env.empty())) {
      return InvalidArgumentError(Where(name, node.source()) + ": mcp.servers." + server +
                                  ": args and env apply to command servers only");
    }
    c.mcp.servers[server] = std::move(s);
  }
  return OkStatus();
}

Status ApplyTable(Config& c, const toml::table& table, const std::string& prefix,
                  std::string_view name) {
  for (const auto& [k, node] : table) {
    std::string key = prefix.empty() ? std::string(k.str()) : prefix + "." + std::string(k.str());
    if (key == "mcp.servers") {
      const toml::table* sub = node.as_table();
      if (!sub)
        return InvalidArgumentError(Where(name, node.source()) + ": mcp.servers must be a table");
      RETURN_IF_ERROR(ApplyMcpServers(c, *sub, name));
      continue;
    }
    if (const toml::table* sub = node.as_table()) {
      bool is_section = false;
      for (const KeyDef& d : Keys()) {
        if (std::string_view(d.name).starts_with(key + ".")) is_section = true;
      }
      if (!is_section) {
        return InvalidArgumentError(Where(name, node.source()) + ": unknown section [" + key + "]");
      }
      RETURN_IF_ERROR(ApplyTable(c, *sub, key, name));
      continue;
    }
    const KeyDef* def = FindKey(key);
    if (!def) return InvalidArgumentError(Where(name, node.source()) + ": unknown key " + key);
    Setting s = def->get(c);
    if (auto* str = std::get_if<std::string*>(&s)) {
      auto v = node.value<std::string>();
      if (!node.is_string() || !v) {
        return InvalidArgumentError(Where(name, node.source()) + ": " + key + " must be a string");
      }
      **str = *v;
    } else if (auto* b = std::get_if<bool*>(&s)) {
      if (!node.is_boolean()) {
        return InvalidArgumentError(Where(name, node.source()) + ": " + key + " must be a boolean");
      }
      **b = *node.value<bool>();
    } else {
      if (!node.is_integer()) {
        return InvalidArgumentError(Where(name, node.source()) + ": " + key +
                                    " must be an integer");
      }
      *std::get<int64_t*>(s) = *node.value<int64_t>();
    }
  }
  return OkStatus();
}

Status Range(std::string_view key, int64_t v, int64_t lo, int64_t hi) {
  if (v < lo || v > hi) {
    return InvalidArgumentError(std::string(key) + " must be in [" + std::to_string(lo) + ", " +
                                std::to_string(hi) + "], got " + std::to_string(v));
  }
  return OkStatus();
}

Status Validate(const Config& c) {
  RETURN_IF_ERROR(ParseListen(c.listen).status().WithContext("listen"));
  if (c.data_dir.empty()) return InvalidArgumentError("data_dir must not be empty");
  if (c.ledger.origin.empty()) return InvalidArgumentError("ledger.origin must not be empty");
  if (c.trust_domain.empty()) return InvalidArgumentError("trust_domain must not be empty");
  RETURN_IF_ERROR(Range("worker_threads", c.worker_threads, 0, 256));
  RETURN_IF_ERROR(Range("ledger.batch_size", c.ledger.batch_size, 1, 1 << 20));
  RETURN_IF_ERROR(Range("ledger.batch_delay_us", c.ledger.batch_delay_us, 0, 10'000'000));
  RETURN_IF_ERROR(
      Range("ledger.max_events_per_request", c.ledger.max_events_per_request, 1, 100'000));
  RETURN_IF_ERROR(Range("limits.max_body_bytes", c.limits.max_body_bytes, 1, 1LL << 30));
  RETURN_IF_ERROR(Range("limits.max_header_bytes", c.limits.max_header_bytes, 512, 1 << 20));
  for (auto [k, v] :
       {std::pair<const char*, int64_t>{"limits.header_timeout_ms", c.limits.header_timeout_ms},
        {"limits.body_timeout_ms", c.limits.body_timeout_ms},
        {"limits.write_timeout_ms", c.limits.write_timeout_ms},
        {"limits.shutdown_timeout_ms", c.limits.shutdown_timeout_ms}}) {
    RETURN_IF_ERROR(Range(k, v, 1, 3'600'000));
  }
  if (c.log.level != "debug" && c.log.level != "info" && c.log.level != "warn" &&
      c.log.level != "error") {
    return InvalidArgumentError("log.level must be debug, info, warn or error");
  }
  if (c.log.format != "json" && c.log.format != "text") {
    return InvalidArgumentError("log.format must be json or text");
  }
  if (c.attribution.arguments != "digest" && c.attribution.arguments != "redacted") {
    return InvalidArgumentError("attribution.arguments must be digest or redacted");
  }
  RETURN_IF_ERROR(Range("mcp.max_message_bytes", c.mcp.max_message_bytes, 1, 1LL << 30));
  RETURN_IF_ERROR(Range("mcp.request_timeout_ms", c.mcp.request_timeout_ms, 1, 3'600'000));
  RETURN_IF_ERROR(
      Range("mcp.session_idle_timeout_ms", c.mcp.session_idle_timeout_ms, 100, 30LL * 86'400'000));
  RETURN_IF_ERROR(Range("mcp.max_sessions_per_custody_session",
                        c.mcp.max_sessions_per_custody_session, 1, 100'000));
  if (c.tls.cert.empty() != c.tls.key.empty()) {
    return InvalidArgumentError("tls.cert and tls.key must be set together");
  }
  return OkStatus();
}

}  // namespace

std::string Config::TokenDbPath() const {
  return admin.token_db.empty() ? data_dir + "/custody.db" : admin.token_db;
}

Result<HostPort> ParseListen(std::string_view text) {
  HostPort hp;
  std::string_view port;
  if (text.starts_with("[")) {
    size_t close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return InvalidArgumentError("expected [IPv6]:PORT");
    }
    hp.host = std::string(text.substr(1, close - 1));
    port = text.substr(close + 2);
  } else {
    size_t colon = text.rfind(':');
    if (colon == std::string_view::npos || text.find(':') != colon) {
      return InvalidArgumentError("expected ADDR:PORT, e.g. 127.0.0.1:8750");
    }
    hp.host = std::string(text.substr(0, colon));
    port = text.substr(colon + 1);
  }
  if (hp.host == "localhost") hp.host = "127.0.0.1";
  if (hp.host.empty()) return InvalidArgumentError("missing address before the port");
  unsigned v = 0;
  auto [p, ec] = std::from_chars(port.data(), port.data() + port.size(), v);
  if (port.empty() || ec != std::errc() || p != port.data() + port.size() || v > 65535) {
    return InvalidArgumentError("port must be 0..65535");
  }
  hp.port = static_cast<uint16_t>(v);
  return hp;
}

Result<Config> ParseConfigToml(std::string_view text, std::string_view name, Config base) {
  toml::table table;
  try {
    table = toml::parse(text, name);
  } catch (const toml::parse_error& e) {
    return InvalidArgumentError(Where(name, e.source()) + ": " + std::string(e.description()));
  }
  RETURN_IF_ERROR(ApplyTable(base, table, "", name));
  return base;
}

Result<Config> LoadConfig(const ConfigSources& sources) {
  Config c;
  if (sources.file) {
    toml::table table;
    try {
      table = toml::parse_file(*sources.file);
    } catch (const toml::parse_error& e) {
      // A missing file is reported by toml++ as a parse error without a position.
      if (e.source().begin.line == 0) {
        return InvalidArgumentError("config file " + *sources.file + ": " +
                                    std::string(e.description()));
      }
      return InvalidArgumentError(Where(*sources.file, e.source()) + ": " +
                                  std::string(e.description()));
    }
    RETURN_IF_ERROR(ApplyTable(c, table, "", *sources.file));
  }
  for (const KeyDef& def : Keys()) {
    std::string env = EnvName(def.name);
    if (auto it = sources.env.find(env); it != sources.env.end()) {
      RETURN_IF_ERROR(SetFromString(c, def, it->second, "environment variable " + env));
    }
  }
  for (const auto& [key, value] : sources.overrides) {
    const KeyDef* def = FindKey(key);
    if (!def) return InvalidArgumentError("unknown config key " + key);
    RETURN_IF_ERROR(SetFromString(c, *def, value, "flag for " + key));
  }
  RETURN_IF_ERROR(Validate(c));
  return c;
}

std::map<std::string, std::string> ProcessEnvironment() {
  std::map<std::string, std::string> out;
  for (char** e = environ; e && *e; ++e) {
    std::string_view kv(*e);
    size_t eq = kv.find('=');
    if (eq == std::string_view::npos) continue;
    if (!kv.starts_with("CUSTODY_")) continue;
    out.emplace(std::string(kv.substr(0, eq)), std::string(kv.substr(eq + 1)));
  }
  return out;
}

}  // namespace custody::api
