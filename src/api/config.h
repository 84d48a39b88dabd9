// Config: the service's settings, from a TOML file, then CUSTODY_* environment variables, then
// command-line flags (each overrides the one before). Unknown keys are errors, reported with the
// file, line and column that toml++ gives; every value is validated before the service starts.
//
// Keys (TOML dotted name -> environment variable, e.g. ledger.batch_size ->
// CUSTODY_LEDGER_BATCH_SIZE); defaults in parentheses:
//   listen ("127.0.0.1:8750")   data_dir ("./custody-data")   trust_domain ("custody.local")
//   worker_threads (0 = one per hardware thread)
//   ledger.origin ("custody.local/ledger")  ledger.batch_size (4096)  ledger.batch_delay_us (0)
//   ledger.max_events_per_request (1000)
//   admin.token_db ("<data_dir>/custody.db")  admin.protect_reads (false: GETs are public)
//   attribution.audience ("": any)  attribution.arguments ("digest": digest|redacted)
//   attribution.redact_fields ("": comma-separated field names)
//   log.level ("info": debug|info|warn|error)  log.format ("json": json|text)
//   tls.cert, tls.key (PEM files; both or neither)
//   limits.max_body_bytes (1 MiB)  limits.max_header_bytes (16 KiB)
//   limits.header_timeout_ms (10000)  limits.body_timeout_ms (30000)
//   limits.write_timeout_ms (30000)  limits.shutdown_timeout_ms (30000)
//   mcp.audience ("<identity.issuer>/mcp": the audience session tokens must carry at the gateway)
//   mcp.allowed_origins ("": comma-separated Origins accepted besides loopback ones)
//   mcp.max_message_bytes (1 MiB)  mcp.request_timeout_ms (60000)
//   [mcp.servers.NAME] command = "…", args = ["…"], env = {K = "V"}: stdio MCP servers that
//   the gateway spawns and serves at /mcp/NAME (file only; no environment variable or flag)
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/status.h"

namespace custody::api {

struct Config {
  std::string listen = "127.0.0.1:8750";
  std::string data_dir = "./custody-data";
  std::string trust_domain = "custody.local";
  int64_t worker_threads = 0;
  struct Ledger {
    std::string origin = "custody.local/ledger";
    int64_t batch_size = 4096;
    int64_t batch_delay_us = 0;
    int64_t max_events_per_request = 1000;
  } ledger;
  struct Admin {
    std::string token_db;  // empty: <data_dir>/custody.db
    bool protect_reads = false;
  } admin;
  struct Identity {
    std::string issuer = "https://custody.local";  // iss of Custody's tokens
    int64_t svid_lifetime_s = 300;
    // A JSON file: [{"issuer": …, "audience": …, "jwks": {"keys": […]}}, …] of OIDC providers
    // whose ID tokens prove a human initiator. Empty: none trusted.
    std::string trusted_issuers_file;
  } identity;
  struct Attribution {
    std::string audience;              // when set, session tokens must carry this audience
    std::string arguments = "digest";  // digest | redacted: how action arguments are recorded
    std::string redact_fields;         // comma-separated field names (redacted mode)
  } attribution;
  struct Log {
    std::string level = "info";
    std::string format = "json";
  } log;
  struct Tls {
    std::string cert;
    std::string key;
  } tls;
  struct Limits {
    int64_t max_body_bytes = 1024 * 1024;
    int64_t max_header_bytes = 16 * 1024;
    int64_t header_timeout_ms = 10000;
    int64_t body_timeout_ms = 30000;
    int64_t write_timeout_ms = 30000;
    int64_t shutdown_timeout_ms = 30000;
  } limits;
  struct McpServer {
    std::string command;  // stdio upstream
    std::vector<std::string> args;
    std::map<std::string, std::string> env;
    std::string url;                             // or a remote Streamable HTTP upstream
    std::map<std::string, std::string> headers;  // sent to it; "${VAR}" reads the environment
    std::string ca_file;                         // https trust anchors (default: system store)
  };
  struct Mcp {
    std::string audience;         // empty: identity.issuer + "/mcp"
    std::string allowed_origins;  // comma-separated
    int64_t max_message_bytes = 1024 * 1024;
    int64_t request_timeout_ms = 60000;
    bool await_outcome = false;  // answer tools/call once its outcome is durable too
    int64_t session_idle_timeout_ms = 3'600'000;  // an unused MCP session ends after this
    int64_t max_sessions_per_custody_session = 64;
    std::map<std::string, McpServer> servers;
  } mcp;

  std::string TokenDbPath() const;
  std::string LedgerDbPath() const { return data_dir + "/ledger.db"; }
  std::string LedgerKeyPath() const { return data_dir + "/ledger.key"; }
  std::string IdentityDbPath() const { return data_dir + "/identity.db"; }
  std::string AttributionDbPath() const { return data_dir + "/attribution.db"; }
  std::string McpDbPath() const { return data_dir + "/mcp.db"; }
  std::string McpAudience() const {
    return mcp.audience.empty() ? identity.issuer + "/mcp" : mcp.audience;
  }
};

struct HostPort {
  std::string host;  // IP literal, without brackets
  uint16_t port = 0;
};
// "127.0.0.1:8750", "[::1]:0", "0.0.0.0:80". "localhost" is accepted as 127.0.0.1.
Result<HostPort> ParseListen(std::string_view text);

struct ConfigSources {
  std::optional<std::string> file;         // TOML file path
  std::map<std::string, std::string> env;  // the process environment (injected for tests)
  std::vector<std::pair<std::string, std::string>> overrides;  // dotted key -> value, from flags
};

// InvalidArgument naming the source (file:line:col, the variable, or the flag) of a bad value.
Result<Config> LoadConfig(const ConfigSources& sources);
// Parses TOML text (for tests); `name` is used in messages.
Result<Config> ParseConfigToml(std::string_view toml, std::string_view name, Config base = {});
// The environment as a map, for ConfigSources::env.
std::map<std::string, std::string> ProcessEnvironment();

}  // namespace custody::api
