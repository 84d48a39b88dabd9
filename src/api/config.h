// Config: the service's settings, from a TOML file, then CUSTODY_* environment variables, then
// command-line flags (each overrides the one before). Unknown keys are errors, reported with the
// file, line and column that toml++ gives; every value is validated before the service starts.
//
// Every key, with its environment variable, type, default, accepted values and meaning, is one
// row of ConfigKeys(); the parser takes its keys, variables and checks from that table, so the
// list cannot drift from what is accepted. `custody config keys` prints it, and docs/CONFIG.md is
// its Markdown form.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"

namespace custody::store {
struct StorageOptions;
}  // namespace custody::store

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
    bool operator==(const Ledger&) const = default;
  } ledger;
  struct Admin {
    std::string token_db;  // empty: <data_dir>/custody.db
    bool protect_reads = false;
    bool operator==(const Admin&) const = default;
  } admin;
  // [console]: the web console at /console/ and its session routes (docs/CONSOLE.md).
  struct Console {
    bool enabled = true;
    // [console.idp_roles]: the console role of a person signed in at the company IdP ([login]),
    // from the ID token's `groups`: admin if any is in admin_groups, else reader if any is in
    // reader_groups, else refused. Both empty (the default): IdP sign-in is refused.
    struct IdpRoles {
      std::vector<std::string> admin_groups;
      std::vector<std::string> reader_groups;
      bool operator==(const IdpRoles&) const = default;
    } idp_roles;
    bool operator==(const Console&) const = default;
  } console;
  // Where the stores live: SQLite files in data_dir (the default, nothing else to run) or one
  // PostgreSQL database that several nodes share (store/postgres/, docs/DEPLOYMENT.md).
  struct StorageSettings {
    std::string backend = "sqlite";            // "sqlite" | "postgres"
    std::string postgres_url;                  // postgresql://…; never logged (PgDb::Redact)
    int64_t postgres_pool_size = 8;            // connections per store
    bool postgres_prepared_statements = true;  // off behind PgBouncer in transaction mode
    // The key-encryption key that wraps the private keys kept in PostgreSQL (the ledger key, the
    // token signing keys): a file of mode 0600 or stricter, or the key itself (the environment
    // variable CUSTODY_STORAGE_KEY_ENCRYPTION_KEY); 32 bytes as hex or base64. One of them is
    // required with backend = postgres (api::Service), neither is read on SQLite.
    std::string key_encryption_key_file;
    std::string key_encryption_key;  // a secret: never logged
    // Several nodes share one database: a node whose clock is further than this from the
    // database server's refuses to start (its tokens and events would carry times the other
    // nodes disagree with).
    int64_t max_clock_skew_ms = 2000;
    bool operator==(const StorageSettings&) const = default;
  } storage;
  struct Identity {
    // iss of Custody's tokens and its published base URL. Empty: the URL `custody serve`
    // actually listens on (Service::Open resolves it, port 0 included, and warns).
    std::string issuer;
    int64_t svid_lifetime_s = 300;
    // A JSON file: [{"issuer": …, "audience": …, "jwks": {"keys": […]}}, …] of OIDC providers
    // whose ID tokens prove a human initiator. Empty: none trusted.
    std::string trusted_issuers_file;
    bool operator==(const Identity&) const = default;
  } identity;
  // [login]: the company's OpenID Connect provider, where people sign in during Custody's
  // authorization code flow (docs/IDENTITY.md, "Authorization code flow"). Off while issuer is
  // empty.
  struct Login {
    std::string issuer;  // https://…; http:// only on a loopback host (development)
    std::string client_id;
    std::string client_secret;  // also CUSTODY_LOGIN_CLIENT_SECRET
    // Or private_key_jwt: a PEM EC P-256 key (mode 0600) and the kid the provider knows it by
    // (empty: its RFC 7638 thumbprint). Exactly one of client_secret and private_key_file.
    std::string private_key_file;
    std::string private_key_kid;
    std::string scopes = "openid email profile";
    std::string ca_file;  // PEM trust anchors for the provider; empty: the system store
    bool operator==(const Login&) const = default;
  } login;
  // [oauth.clients."<client_id>"]: an OAuth client an operator registers (a public client).
  struct OAuthClient {
    std::vector<std::string> redirect_uris;  // matched exactly
    std::string agent;                       // the registered agent it acts as
    std::string name;                        // shown on the consent page
    bool operator==(const OAuthClient&) const = default;
  };
  struct OAuth {
    // Development: unknown client_ids are let in (loopback redirect URIs only), each acting as
    // a dev agent registered on first sign-in with the person as owner and dev_grants as grants.
    bool dev_unknown_clients = false;
    std::string dev_grants;  // space-separated scopes
    int64_t code_lifetime_s = 60;
    int64_t refresh_token_lifetime_s = 2'592'000;  // 30 days
    // Client ID Metadata Documents: a client_id that is an https URL is fetched for its
    // redirect URIs and name (identity/client_metadata.h); allow_loopback: development only,
    // http://127.0.0.1… client IDs and loopback addresses.
    bool client_metadata_documents = false;
    bool client_metadata_allow_loopback = false;
    // RFC 7591 Dynamic Client Registration at /oauth2/register; its clients have no agent, so it
    // needs dev_unknown_clients.
    bool dynamic_client_registration = false;
    // Flood bounds of the browser sign-ins (identity::AuthorizationServerOptions): sign-ins and
    // consents held in memory, in all and per source address (0: no bound per address), browser
    // steps waiting for the authorization server's threads, and token.refuse events recorded one
    // by one per minute.
    int64_t max_sign_ins_in_flight = 10000;
    int64_t max_sign_ins_per_address = 64;
    int64_t max_waiting_browser_steps = 1024;
    int64_t refusal_events_per_minute = 600;
    std::map<std::string, OAuthClient> clients;  // by client_id
    bool operator==(const OAuth&) const = default;
  } oauth;
  struct Attribution {
    std::string audience;              // when set, session tokens must carry this audience
    std::string arguments = "digest";  // digest | redacted: how action arguments are recorded
    std::string redact_fields;         // comma-separated field names (redacted mode)
    bool operator==(const Attribution&) const = default;
  } attribution;
  // [approval]: a person in the loop for the actions an `@approval` forbid holds (issue #20).
  // Durations are milliseconds, like every other duration key.
  struct Approval {
    int64_t ttl_ms = 15 * 60'000;          // how long an approved approval stays usable
    int64_t request_ttl_ms = 60 * 60'000;  // how long a pending one can be approved
    bool single_use = true;
    bool allow_self_approval = false;  // false: separation of duties (not the initiator)
    int64_t hold_ms = 0;               // the MCP gateway holds a tools/call this long for it
    std::string person_type = "User";  // Cedar entity type of approvers
    std::string base_url;              // of the approval links; empty: identity.issuer
    // How long an approver signed in at the IdP on the approval pages stays signed in, in
    // seconds (as the other sign-in lifetimes, oauth.*_lifetime_s).
    int64_t session_ttl_s = 900;
    int64_t max_sessions = 10000;  // approver sessions held in memory
    // [approval.webhook]: approvers notified per Standard Webhooks
    // (attribution/approval_webhook.h).
    struct Webhook {
      std::string url;          // https; http only to a loopback host. Empty: no webhook
      std::string secret_file;  // "whsec_<base64>", mode 0600 or stricter; read at start
      int64_t timeout_ms = 5000;
      int64_t max_attempts = 5;
      bool operator==(const Webhook&) const = default;
    } webhook;
    bool operator==(const Approval&) const = default;
  } approval;
  struct Log {
    std::string level = "info";
    std::string format = "json";
    bool operator==(const Log&) const = default;
  } log;
  struct Tls {
    std::string cert;
    std::string key;
    bool operator==(const Tls&) const = default;
  } tls;
  struct Limits {
    int64_t max_body_bytes = 1024 * 1024;
    int64_t max_header_bytes = 16 * 1024;
    int64_t header_timeout_ms = 10000;
    int64_t body_timeout_ms = 30000;
    int64_t write_timeout_ms = 30000;
    int64_t shutdown_timeout_ms = 30000;
    bool operator==(const Limits&) const = default;
  } limits;
  // OTLP ingest, POST /v1/traces (docs/OTLP.md).
  struct Ingest {
    int64_t max_body_bytes = 1024 * 1024;          // as received (at most limits.max_body_bytes)
    int64_t max_inflated_bytes = 8 * 1024 * 1024;  // a gzip body inflated
    int64_t max_spans_per_request = 4096;
    int64_t spans_per_second = 5000;  // per credential, sustained
    int64_t burst_spans = 20000;      // per credential, at once (at least max_spans_per_request)
    bool operator==(const Ingest&) const = default;
  } ingest;
  // [export.ocsf]: every ledger entry streamed as an OCSF record (docs/OCSF.md, export/sink.h).
  struct Export {
    struct Ocsf {
      std::string url;                 // POST NDJSON batches here (http or https), or
      std::string file;                // append to this file, rotated by size
      std::string cursor_file;         // the durable cursor; empty: <data_dir>/ocsf-export.cursor
      std::string authorization_file;  // url: the Authorization header's value, read at start
      std::string ca_file;             // https trust anchors (default: system store)
      int64_t max_file_bytes = 64 * 1024 * 1024;
      int64_t keep_files = 5;
      int64_t batch = 500;
      int64_t poll_ms = 500;
      bool operator==(const Ocsf&) const = default;
    } ocsf;
    bool operator==(const Export&) const = default;
  } export_;
  struct McpServer {
    std::string command;  // stdio upstream
    std::vector<std::string> args;
    std::map<std::string, std::string> env;
    std::string url;                             // or a remote Streamable HTTP upstream
    std::map<std::string, std::string> headers;  // sent to it; "${VAR}" reads the environment
    std::string ca_file;                         // https trust anchors (default: system store)
    std::string protocol = "auto";               // "auto", "2026-07-28" or "2025"
    std::string identity = "none";               // "none" or "txn-token" (docs/MCP.md)
    std::string txn_audience;  // aud of its Transaction Tokens; empty: url or urn:custody:mcp:NAME
    bool operator==(const McpServer&) const = default;
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
    bool operator==(const Mcp&) const = default;
  } mcp;
  // [credentials.postgres.NAME]: just-in-time PostgreSQL credentials bound to a session
  // (credentials/, docs/CREDENTIALS.md). File only; the administrative password comes from the
  // environment or a file, never from the URL.
  struct CredentialAccess {
    std::string grant;      // SQL whose one parameter is {{role}} (credentials/grant_template.h)
    int64_t max_ttl_s = 0;  // 0: the database's max_ttl_s
    bool operator==(const CredentialAccess&) const = default;
  };
  struct CredentialDatabase {
    std::string admin_url;            // postgresql://USER@HOST[:PORT]/DATABASE, without a password
    std::string admin_password_env;   // the variable that holds the administrative password
    std::string admin_password_file;  // or a file of mode 0600 or stricter that holds it
    int64_t max_ttl_s = 3600;
    int64_t connection_limit = 5;
    std::map<std::string, CredentialAccess> access;  // by access level
    bool operator==(const CredentialDatabase&) const = default;
  };
  struct Credentials {
    std::map<std::string, CredentialDatabase> postgres;  // by NAME (Database::"NAME")
    bool operator==(const Credentials&) const = default;
  } credentials;

  std::string TokenDbPath() const;
  // Where the stores live (store/stores.h): the files below, SQLite.
  store::StorageOptions Storage() const;
  std::string LedgerDbPath() const { return data_dir + "/ledger.db"; }
  std::string LedgerKeyPath() const { return data_dir + "/ledger.key"; }
  std::string IdentityDbPath() const { return data_dir + "/identity.db"; }
  std::string AttributionDbPath() const { return data_dir + "/attribution.db"; }
  std::string McpDbPath() const { return data_dir + "/mcp.db"; }
  // On a Config whose identity.issuer is resolved (Service::issuer()); an empty issuer here
  // would give "/mcp".
  std::string McpAudience() const {
    return mcp.audience.empty() ? identity.issuer + "/mcp" : mcp.audience;
  }
  // TLS is on when both files are set (LoadConfig refuses one without the other).
  bool TlsEnabled() const { return !tls.cert.empty() && !tls.key.empty(); }

  // Field by field (the tests compare with Config{}).
  bool operator==(const Config&) const = default;
};

enum class ConfigType { kString, kInteger, kBoolean, kStringArray, kStringTable };
// "string", "integer", "boolean", "array of strings", "table of strings".
std::string_view ConfigTypeName(ConfigType type);

// One configuration key: a row of the table that the parser, `custody config keys` and
// docs/CONFIG.md all come from.
struct ConfigKey {
  // TOML dotted name. The keys of one MCP server are "mcp.servers.NAME.<key>", NAME standing
  // for the server's name; those of one OAuth client "oauth.clients.ID.<key>".
  std::string_view name = {};
  std::string_view env = {};  // CUSTODY_… variable; empty: the file only (no variable, no --set)
  ConfigType type = ConfigType::kString;
  // Config{}'s value, as an environment variable or --set would give it ("" for an empty
  // string, "[]" and "{}" for an empty array or table).
  std::string_view default_text = {};
  std::string_view description = {};  // one line
  // What LoadConfig checks besides the type: an integer range, a set of strings ("a|b|c"),
  // or any string but the empty one.
  int64_t min = INT64_MIN;
  int64_t max = INT64_MAX;
  std::string_view choices = {};
  bool non_empty = false;
};
// Every key the parser accepts, in the order of Config's fields.
std::span<const ConfigKey> ConfigKeys();

struct HostPort {
  std::string host;  // IP literal, without brackets
  uint16_t port = 0;
};
// "127.0.0.1:8750", "[::1]:0", "0.0.0.0:80". "localhost" is accepted as 127.0.0.1.
Result<HostPort> ParseListen(std::string_view text);
// The URL of a bound address: "http://127.0.0.1:8750", "https://[::1]:8443".
std::string ListenUrl(const HostPort& bound, bool tls);

struct ConfigSources {
  std::optional<std::string> file;         // TOML file path
  std::map<std::string, std::string> env;  // the process environment (injected for tests)
  std::vector<std::pair<std::string, std::string>> overrides;  // dotted key -> value, from flags
};

// InvalidArgument naming the source (file:line:col, the variable, or the flag) of a bad value.
Result<Config> LoadConfig(const ConfigSources& sources);
// Parses TOML text (for tests); `name` is used in messages.
Result<Config> ParseConfigToml(std::string_view toml, std::string_view name, Config base = {});
// Sets one key from text, as `--set key=value` does (LoadConfig uses it for flags), with the same
// messages: unknown keys and values not of the key's type are refused. Nothing else is checked
// here; LoadConfig validates the whole Config once every source has been applied.
Status SetConfigValue(Config& config, std::string_view key, std::string_view value);
// The environment as a map, for ConfigSources::env.
std::map<std::string, std::string> ProcessEnvironment();

// The configuration an offline command (`custody admin`, `custody index`) works on: the file
// given with --config (else $CUSTODY_CONFIG), the CUSTODY_* environment, and --data-dir if given.
Result<Config> LoadLocalConfig(const std::string& config_file, const std::string& data_dir);

}  // namespace custody::api
