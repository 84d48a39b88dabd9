#include "api/config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <toml++/toml.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <variant>

#include "credentials/grant_template.h"
#include "credentials/role_manager.h"
#include "store/stores.h"

extern char** environ;

namespace custody::api {
namespace {

// Where a key's value lives: a field of Config, or of one [mcp.servers.NAME] table.
using Field = std::variant<std::string*, int64_t*, bool*>;
using ServerField =
    std::variant<std::string*, std::vector<std::string>*, std::map<std::string, std::string>*>;

using ClientField = std::variant<std::string*, std::vector<std::string>*>;

struct KeyDef {
  ConfigKey key;
  Field (*field)(Config&) = nullptr;                            // a key of Config
  ServerField (*server_field)(Config::McpServer&) = nullptr;    // a key of [mcp.servers.NAME]
  ClientField (*client_field)(Config::OAuthClient&) = nullptr;  // of [oauth.clients."ID"]
};

using enum ConfigType;
constexpr int64_t kMiB = 1 << 20;
constexpr int64_t kGiB = 1LL << 30;
constexpr int64_t kHourMs = 3'600'000;

// The one table of keys. The parser accepts exactly these, reads exactly these environment
// variables, and checks exactly these ranges and choices; `custody config keys` prints it.
constexpr KeyDef kKeys[] = {
    {.key = {.name = "listen",
             .env = "CUSTODY_LISTEN",
             .default_text = "127.0.0.1:8750",
             .description = "Address to listen on: ADDR:PORT or [IPv6]:PORT (port 0: any free "
                            "port; localhost means 127.0.0.1)"},
     .field = [](Config& c) -> Field { return &c.listen; }},
    {.key = {.name = "data_dir",
             .env = "CUSTODY_DATA_DIR",
             .default_text = "./custody-data",
             .description = "Directory of the ledger, its key and the databases (refused if "
                            "group or others can read it)",
             .non_empty = true},
     .field = [](Config& c) -> Field { return &c.data_dir; }},
    {.key = {.name = "trust_domain",
             .env = "CUSTODY_TRUST_DOMAIN",
             .default_text = "custody.local",
             .description = "SPIFFE trust domain of agent identities (spiffe://TRUST_DOMAIN/...)",
             .non_empty = true},
     .field = [](Config& c) -> Field { return &c.trust_domain; }},
    {.key = {.name = "worker_threads",
             .env = "CUSTODY_WORKER_THREADS",
             .type = kInteger,
             .default_text = "0",
             .description = "HTTP worker threads; 0: one per hardware thread (four with "
                            "storage.backend = postgres, "
                            "whose requests wait for database round trips)",
             .min = 0,
             .max = 256},
     .field = [](Config& c) -> Field { return &c.worker_threads; }},
    {.key = {.name = "ledger.origin",
             .env = "CUSTODY_LEDGER_ORIGIN",
             .default_text = "custody.local/ledger",
             .description = "Origin (checkpoint name) of a new ledger; an existing ledger keeps "
                            "its own, and a different non-default value is refused",
             .non_empty = true},
     .field = [](Config& c) -> Field { return &c.ledger.origin; }},
    {.key = {.name = "ledger.batch_size",
             .env = "CUSTODY_LEDGER_BATCH_SIZE",
             .type = kInteger,
             .default_text = "4096",
             .description = "The sequencer commits a batch once it has this many events (or "
                            "after ledger.batch_delay_us)",
             .min = 1,
             .max = kMiB},
     .field = [](Config& c) -> Field { return &c.ledger.batch_size; }},
    {.key = {.name = "ledger.batch_delay_us",
             .env = "CUSTODY_LEDGER_BATCH_DELAY_US",
             .type = kInteger,
             .default_text = "0",
             .description = "Microseconds a batch may wait for more events after its first; 0: "
                            "committed as soon as the previous commit has finished",
             .min = 0,
             .max = 10'000'000},
     .field = [](Config& c) -> Field { return &c.ledger.batch_delay_us; }},
    {.key = {.name = "ledger.max_events_per_request",
             .env = "CUSTODY_LEDGER_MAX_EVENTS_PER_REQUEST",
             .type = kInteger,
             .default_text = "1000",
             .description = "Most events one POST /v1/ledger/entries may append",
             .min = 1,
             .max = 100'000},
     .field = [](Config& c) -> Field { return &c.ledger.max_events_per_request; }},
    {.key = {.name = "admin.token_db",
             .env = "CUSTODY_ADMIN_TOKEN_DB",
             .default_text = "",
             .description = "SQLite file of the admin tokens; empty: <data_dir>/custody.db"},
     .field = [](Config& c) -> Field { return &c.admin.token_db; }},
    {.key = {.name = "storage.backend",
             .env = "CUSTODY_STORAGE_BACKEND",
             .default_text = "sqlite",
             .description = "Where the stores live: sqlite (files in data_dir) or postgres (one "
                            "database at storage.postgres_url)",
             .choices = "sqlite|postgres"},
     .field = [](Config& c) -> Field { return &c.storage.backend; }},
    {.key = {.name = "storage.postgres_url",
             .env = "CUSTODY_STORAGE_POSTGRES_URL",
             .default_text = "",
             .description = "postgresql://USER[:PASSWORD]@HOST[:PORT]/DATABASE[?PARAMS] with "
                            "storage.backend = postgres; prefer the environment variable, as the "
                            "password is a secret (it never appears in logs or errors)"},
     .field = [](Config& c) -> Field { return &c.storage.postgres_url; }},
    {.key = {.name = "storage.postgres_pool_size",
             .env = "CUSTODY_STORAGE_POSTGRES_POOL_SIZE",
             .type = kInteger,
             .default_text = "8",
             .description = "PostgreSQL connections each store may hold",
             .min = 1,
             .max = 256},
     .field = [](Config& c) -> Field { return &c.storage.postgres_pool_size; }},
    {.key = {.name = "storage.postgres_prepared_statements",
             .env = "CUSTODY_STORAGE_POSTGRES_PREPARED_STATEMENTS",
             .type = kBoolean,
             .default_text = "true",
             .description = "Each connection prepares the statements it runs (parsed and planned "
                            "once); false behind a pooler that does not keep one server session "
                            "per client (PgBouncer in transaction mode before 1.21)"},
     .field = [](Config& c) -> Field { return &c.storage.postgres_prepared_statements; }},
    {.key = {.name = "storage.key_encryption_key_file",
             .env = "CUSTODY_STORAGE_KEY_ENCRYPTION_KEY_FILE",
             .default_text = "",
             .description = "With storage.backend = postgres: a file (mode 0600 or stricter) "
                            "holding the 32-byte key that wraps the private keys stored in the "
                            "database, as 64 hex digits or base64; the same on every node"},
     .field = [](Config& c) -> Field { return &c.storage.key_encryption_key_file; }},
    {.key = {.name = "storage.key_encryption_key",
             .env = "CUSTODY_STORAGE_KEY_ENCRYPTION_KEY",
             .default_text = "",
             .description = "The key of storage.key_encryption_key_file itself (hex or base64); "
                            "use the environment variable, never the config file"},
     .field = [](Config& c) -> Field { return &c.storage.key_encryption_key; }},
    {.key = {.name = "storage.max_clock_skew_ms",
             .env = "CUSTODY_STORAGE_MAX_CLOCK_SKEW_MS",
             .type = kInteger,
             .default_text = "2000",
             .description = "With storage.backend = postgres: a node whose clock differs from the "
                            "database server's by more than this refuses to start",
             .min = 100,
             .max = 600000},
     .field = [](Config& c) -> Field { return &c.storage.max_clock_skew_ms; }},
    {.key = {.name = "admin.protect_reads",
             .env = "CUSTODY_ADMIN_PROTECT_READS",
             .type = kBoolean,
             .default_text = "false",
             .description = "Reads (GET routes) need a reader or admin token; false: they are "
                            "public"},
     .field = [](Config& c) -> Field { return &c.admin.protect_reads; }},
    {.key = {.name = "console.enabled",
             .env = "CUSTODY_CONSOLE_ENABLED",
             .type = kBoolean,
             .default_text = "true",
             .description = "Serve the web console at /console/ and its sign-in routes "
                            "(/v1/console/session); false: those routes are not registered"},
     .field = [](Config& c) -> Field { return &c.console.enabled; }},
    // [console.idp_roles] (ApplyConsoleIdpRoles): listed here for `custody config keys` and the
    // docs; the file only, read by ApplyTable itself.
    {.key = {.name = "console.idp_roles.admin_groups",
             .type = kStringArray,
             .default_text = "[]",
             .description = "IdP groups (the ID token's groups claim) whose members sign in to "
                            "the console as admin; empty with reader_groups: IdP sign-in to the "
                            "console is refused"}},
    {.key = {.name = "console.idp_roles.reader_groups",
             .type = kStringArray,
             .default_text = "[]",
             .description = "IdP groups whose members sign in to the console as reader (when in "
                            "no admin group); a group may not be in both lists"}},
    {.key = {.name = "identity.issuer",
             .env = "CUSTODY_IDENTITY_ISSUER",
             .default_text = "",
             .description = "Issuer (iss) of Custody's tokens, also its published base URL; "
                            "empty: the URL it listens on (a warning at start: set it in "
                            "production)"},
     .field = [](Config& c) -> Field { return &c.identity.issuer; }},
    {.key = {.name = "identity.svid_lifetime_s",
             .env = "CUSTODY_IDENTITY_SVID_LIFETIME_S",
             .type = kInteger,
             .default_text = "300",
             .description = "Lifetime of the JWT-SVIDs Custody issues, in seconds"},
     .field = [](Config& c) -> Field { return &c.identity.svid_lifetime_s; }},
    {.key = {.name = "identity.trusted_issuers_file",
             .env = "CUSTODY_IDENTITY_TRUSTED_ISSUERS_FILE",
             .default_text = "",
             .description = "JSON file of OIDC providers whose ID tokens prove a human "
                            "initiator: [{\"issuer\", \"audience\", \"jwks\"}, ...]; empty: none"},
     .field = [](Config& c) -> Field { return &c.identity.trusted_issuers_file; }},
    {.key = {.name = "login.issuer",
             .env = "CUSTODY_LOGIN_ISSUER",
             .default_text = "",
             .description = "The company's OpenID Connect provider, where people sign in for "
                            "/oauth2/authorize (https; http only on a loopback host); empty: off"},
     .field = [](Config& c) -> Field { return &c.login.issuer; }},
    {.key = {.name = "login.client_id",
             .env = "CUSTODY_LOGIN_CLIENT_ID",
             .default_text = "",
             .description = "Custody's client_id at the login provider (required with "
                            "login.issuer)"},
     .field = [](Config& c) -> Field { return &c.login.client_id; }},
    {.key = {.name = "login.client_secret",
             .env = "CUSTODY_LOGIN_CLIENT_SECRET",
             .default_text = "",
             .description = "Custody's client secret at the login provider (client_secret_basic); "
                            "prefer the environment variable to the file"},
     .field = [](Config& c) -> Field { return &c.login.client_secret; }},
    {.key = {.name = "login.private_key_file",
             .env = "CUSTODY_LOGIN_PRIVATE_KEY_FILE",
             .default_text = "",
             .description = "PEM EC P-256 (ES256) or RSA (RS256) private key (mode 0600) "
                            "Custody authenticates with at the login provider (private_key_jwt) "
                            "instead of a client secret"},
     .field = [](Config& c) -> Field { return &c.login.private_key_file; }},
    {.key = {.name = "login.private_key_kid",
             .env = "CUSTODY_LOGIN_PRIVATE_KEY_KID",
             .default_text = "",
             .description = "The kid of login.private_key_file at the login provider; empty: the "
                            "key's RFC 7638 thumbprint"},
     .field = [](Config& c) -> Field { return &c.login.private_key_kid; }},
    {.key = {.name = "login.scopes",
             .env = "CUSTODY_LOGIN_SCOPES",
             .default_text = "openid email profile",
             .description = "Scopes asked of the login provider (must include openid)"},
     .field = [](Config& c) -> Field { return &c.login.scopes; }},
    {.key = {.name = "login.ca_file",
             .env = "CUSTODY_LOGIN_CA_FILE",
             .default_text = "",
             .description = "PEM trust anchors for the login provider; empty: the system store"},
     .field = [](Config& c) -> Field { return &c.login.ca_file; }},
    {.key = {.name = "oauth.dev_unknown_clients",
             .env = "CUSTODY_OAUTH_DEV_UNKNOWN_CLIENTS",
             .type = kBoolean,
             .default_text = "false",
             .description = "Development: let unregistered OAuth clients in (loopback redirect "
                            "URIs only), each as a dev agent owned by the person signing in"},
     .field = [](Config& c) -> Field { return &c.oauth.dev_unknown_clients; }},
    {.key = {.name = "oauth.dev_grants",
             .env = "CUSTODY_OAUTH_DEV_GRANTS",
             .default_text = "",
             .description = "Space-separated scopes granted to the dev agents of unregistered "
                            "clients"},
     .field = [](Config& c) -> Field { return &c.oauth.dev_grants; }},
    {.key = {.name = "oauth.code_lifetime_s",
             .env = "CUSTODY_OAUTH_CODE_LIFETIME_S",
             .type = kInteger,
             .default_text = "60",
             .description = "Lifetime of an authorization code, in seconds",
             .min = 1,
             .max = 60},
     .field = [](Config& c) -> Field { return &c.oauth.code_lifetime_s; }},
    {.key = {.name = "oauth.refresh_token_lifetime_s",
             .env = "CUSTODY_OAUTH_REFRESH_TOKEN_LIFETIME_S",
             .type = kInteger,
             .default_text = "2592000",
             .description = "Lifetime of a refresh token family (rotation does not extend it), "
                            "in seconds",
             .min = 60,
             .max = 31'536'000},
     .field = [](Config& c) -> Field { return &c.oauth.refresh_token_lifetime_s; }},
    {.key = {.name = "oauth.client_metadata_documents",
             .env = "CUSTODY_OAUTH_CLIENT_METADATA_DOCUMENTS",
             .type = kBoolean,
             .default_text = "false",
             .description = "Fetch Client ID Metadata Documents: an https client_id's redirect "
                            "URIs and name come from its document (its agent from "
                            "[oauth.clients.\"<url>\"], else dev only)"},
     .field = [](Config& c) -> Field { return &c.oauth.client_metadata_documents; }},
    {.key = {.name = "oauth.client_metadata_allow_loopback",
             .env = "CUSTODY_OAUTH_CLIENT_METADATA_ALLOW_LOOPBACK",
             .type = kBoolean,
             .default_text = "false",
             .description = "Development: accept http://127.0.0.1 (loopback) client ID URLs and "
                            "fetch documents from loopback addresses"},
     .field = [](Config& c) -> Field { return &c.oauth.client_metadata_allow_loopback; }},
    {.key = {.name = "oauth.dynamic_client_registration",
             .env = "CUSTODY_OAUTH_DYNAMIC_CLIENT_REGISTRATION",
             .type = kBoolean,
             .default_text = "false",
             .description = "Development: RFC 7591 registration of public clients at "
                            "/oauth2/register (needs oauth.dev_unknown_clients: they have no "
                            "agent)"},
     .field = [](Config& c) -> Field { return &c.oauth.dynamic_client_registration; }},
    {.key = {.name = "oauth.max_sign_ins_in_flight",
             .env = "CUSTODY_OAUTH_MAX_SIGN_INS_IN_FLIGHT",
             .type = kInteger,
             .default_text = "10000",
             .description = "Browser sign-ins and consents in progress that this node started "
                            "(clients, approvers and the console); past it a new one is refused",
             .min = 1,
             .max = 100'000},
     .field = [](Config& c) -> Field { return &c.oauth.max_sign_ins_in_flight; }},
    {.key = {.name = "oauth.max_sign_ins_per_address",
             .env = "CUSTODY_OAUTH_MAX_SIGN_INS_PER_ADDRESS",
             .type = kInteger,
             .default_text = "64",
             .description = "Of those, how many one source address (the TCP peer, no "
                            "X-Forwarded-For) may have in progress; 0: no bound per address",
             .min = 0,
             .max = 100'000},
     .field = [](Config& c) -> Field { return &c.oauth.max_sign_ins_per_address; }},
    {.key = {.name = "oauth.max_waiting_browser_steps",
             .env = "CUSTODY_OAUTH_MAX_WAITING_BROWSER_STEPS",
             .type = kInteger,
             .default_text = "1024",
             .description = "Browser sign-in steps waiting for the authorization server's "
                            "threads (a slow IdP or metadata host); past it: 503",
             .min = 1,
             .max = 100'000},
     .field = [](Config& c) -> Field { return &c.oauth.max_waiting_browser_steps; }},
    {.key = {.name = "oauth.refusal_events_per_minute",
             .env = "CUSTODY_OAUTH_REFUSAL_EVENTS_PER_MINUTE",
             .type = kInteger,
             .default_text = "600",
             .description = "Refused authorization_code/refresh_token requests recorded one by "
                            "one per minute (token.refuse); the rest are counted in the next one",
             .min = 1,
             .max = 1'000'000},
     .field = [](Config& c) -> Field { return &c.oauth.refusal_events_per_minute; }},
    // [oauth.clients."ID"]: file only; ID is the client_id.
    {.key = {.name = "oauth.clients.ID.redirect_uris",
             .type = kStringArray,
             .default_text = "[]",
             .description = "The client's redirect URIs, matched exactly (https, loopback http, "
                            "or a private-use scheme)"},
     .client_field = [](Config::OAuthClient& c) -> ClientField { return &c.redirect_uris; }},
    {.key = {.name = "oauth.clients.ID.agent",
             .default_text = "",
             .description = "The registered agent the client acts as (required)"},
     .client_field = [](Config::OAuthClient& c) -> ClientField { return &c.agent; }},
    {.key = {.name = "oauth.clients.ID.name",
             .default_text = "",
             .description = "The client's name on the consent page; empty: the client_id"},
     .client_field = [](Config::OAuthClient& c) -> ClientField { return &c.name; }},
    {.key = {.name = "attribution.audience",
             .env = "CUSTODY_ATTRIBUTION_AUDIENCE",
             .default_text = "",
             .description = "Audience session tokens must carry (at the MCP gateway too); "
                            "empty: any"},
     .field = [](Config& c) -> Field { return &c.attribution.audience; }},
    {.key = {.name = "attribution.arguments",
             .env = "CUSTODY_ATTRIBUTION_ARGUMENTS",
             .default_text = "digest",
             .description = "How action arguments are recorded: the SHA-256 of their canonical "
                            "JSON, or the JSON with attribution.redact_fields redacted",
             .choices = "digest|redacted"},
     .field = [](Config& c) -> Field { return &c.attribution.arguments; }},
    {.key = {.name = "attribution.redact_fields",
             .env = "CUSTODY_ATTRIBUTION_REDACT_FIELDS",
             .default_text = "",
             .description = "Comma-separated argument field names (at any depth) recorded as "
                            "\"[redacted]\" when arguments = redacted"},
     .field = [](Config& c) -> Field { return &c.attribution.redact_fields; }},
    {.key = {.name = "approval.ttl_ms",
             .env = "CUSTODY_APPROVAL_TTL_MS",
             .type = kInteger,
             .default_text = "900000",
             .description = "How long an approved approval stays usable (the agent's retry must "
                            "come within it), in milliseconds",
             .min = 1000,
             .max = 7 * 24 * kHourMs},
     .field = [](Config& c) -> Field { return &c.approval.ttl_ms; }},
    {.key = {.name = "approval.request_ttl_ms",
             .env = "CUSTODY_APPROVAL_REQUEST_TTL_MS",
             .type = kInteger,
             .default_text = "3600000",
             .description = "How long a pending approval can be approved before it expires, in "
                            "milliseconds",
             .min = 1000,
             .max = 30 * 24 * kHourMs},
     .field = [](Config& c) -> Field { return &c.approval.request_ttl_ms; }},
    {.key = {.name = "approval.single_use",
             .env = "CUSTODY_APPROVAL_SINGLE_USE",
             .type = kBoolean,
             .default_text = "true",
             .description = "An approval allows one action; false: every identical action within "
                            "approval.ttl_ms"},
     .field = [](Config& c) -> Field { return &c.approval.single_use; }},
    {.key = {.name = "approval.allow_self_approval",
             .env = "CUSTODY_APPROVAL_ALLOW_SELF_APPROVAL",
             .type = kBoolean,
             .default_text = "false",
             .description = "Whether the person who started a session may approve its actions "
                            "(false: separation of duties)"},
     .field = [](Config& c) -> Field { return &c.approval.allow_self_approval; }},
    {.key = {.name = "approval.hold_ms",
             .env = "CUSTODY_APPROVAL_HOLD_MS",
             .type = kInteger,
             .default_text = "0",
             .description = "How long the MCP gateway holds a tools/call that needs approval, "
                            "waiting for it; 0: it answers at once",
             .min = 0,
             .max = 300'000},
     .field = [](Config& c) -> Field { return &c.approval.hold_ms; }},
    {.key = {.name = "approval.person_type",
             .env = "CUSTODY_APPROVAL_PERSON_TYPE",
             .default_text = "User",
             .description = "Cedar entity type of approvers (Name or Namespace::Name)",
             .non_empty = true},
     .field = [](Config& c) -> Field { return &c.approval.person_type; }},
    {.key = {.name = "approval.base_url",
             .env = "CUSTODY_APPROVAL_BASE_URL",
             .default_text = "",
             .description = "http(s) base URL of the approval links; empty: identity.issuer"},
     .field = [](Config& c) -> Field { return &c.approval.base_url; }},
    {.key = {.name = "approval.session_ttl_s",
             .env = "CUSTODY_APPROVAL_SESSION_TTL_S",
             .type = kInteger,
             .default_text = "900",
             .description = "How long an approver signed in at the company IdP on the approval "
                            "pages stays signed in, in seconds",
             .min = 60,
             .max = 24 * 3600},
     .field = [](Config& c) -> Field { return &c.approval.session_ttl_s; }},
    {.key = {.name = "approval.max_sessions",
             .env = "CUSTODY_APPROVAL_MAX_SESSIONS",
             .type = kInteger,
             .default_text = "10000",
             .description = "Approvers signed in on the approval pages at once through this node; "
                            "past it a sign-in is refused until one ends",
             .min = 1,
             .max = 100'000},
     .field = [](Config& c) -> Field { return &c.approval.max_sessions; }},
    {.key = {.name = "approval.webhook.url",
             .env = "CUSTODY_APPROVAL_WEBHOOK_URL",
             .default_text = "",
             .description = "Where approvers are notified, signed per Standard Webhooks (https; "
                            "http only to a loopback host); empty: no webhook"},
     .field = [](Config& c) -> Field { return &c.approval.webhook.url; }},
    {.key = {.name = "approval.webhook.secret_file",
             .env = "CUSTODY_APPROVAL_WEBHOOK_SECRET_FILE",
             .default_text = "",
             .description = "File (mode 0600 or stricter) holding the webhook's signing secret, "
                            "whsec_<base64>; required with approval.webhook.url"},
     .field = [](Config& c) -> Field { return &c.approval.webhook.secret_file; }},
    {.key = {.name = "approval.webhook.timeout_ms",
             .env = "CUSTODY_APPROVAL_WEBHOOK_TIMEOUT_MS",
             .type = kInteger,
             .default_text = "5000",
             .description = "Time limit of one webhook delivery attempt",
             .min = 1,
             .max = 60'000},
     .field = [](Config& c) -> Field { return &c.approval.webhook.timeout_ms; }},
    {.key = {.name = "approval.webhook.max_attempts",
             .env = "CUSTODY_APPROVAL_WEBHOOK_MAX_ATTEMPTS",
             .type = kInteger,
             .default_text = "5",
             .description = "Attempts per notification (retried on failure or non-2xx, after "
                            "500 ms, then twice as long each time)",
             .min = 1,
             .max = 20},
     .field = [](Config& c) -> Field { return &c.approval.webhook.max_attempts; }},
    {.key = {.name = "log.level",
             .env = "CUSTODY_LOG_LEVEL",
             .default_text = "info",
             .description = "Least severe level logged (to stderr)",
             .choices = "debug|info|warn|error"},
     .field = [](Config& c) -> Field { return &c.log.level; }},
    {.key = {.name = "log.format",
             .env = "CUSTODY_LOG_FORMAT",
             .default_text = "json",
             .description = "Log lines as JSON objects or as text",
             .choices = "json|text"},
     .field = [](Config& c) -> Field { return &c.log.format; }},
    {.key = {.name = "tls.cert",
             .env = "CUSTODY_TLS_CERT",
             .default_text = "",
             .description = "PEM certificate chain; with tls.key (both or neither) the service "
                            "speaks HTTPS"},
     .field = [](Config& c) -> Field { return &c.tls.cert; }},
    {.key = {.name = "tls.key",
             .env = "CUSTODY_TLS_KEY",
             .default_text = "",
             .description = "PEM private key of tls.cert"},
     .field = [](Config& c) -> Field { return &c.tls.key; }},
    {.key = {.name = "limits.max_body_bytes",
             .env = "CUSTODY_LIMITS_MAX_BODY_BYTES",
             .type = kInteger,
             .default_text = "1048576",
             .description = "Largest request body (larger: 413)",
             .min = 1,
             .max = kGiB},
     .field = [](Config& c) -> Field { return &c.limits.max_body_bytes; }},
    {.key = {.name = "limits.max_header_bytes",
             .env = "CUSTODY_LIMITS_MAX_HEADER_BYTES",
             .type = kInteger,
             .default_text = "16384",
             .description = "Largest request header (larger: 431)",
             .min = 512,
             .max = kMiB},
     .field = [](Config& c) -> Field { return &c.limits.max_header_bytes; }},
    {.key = {.name = "limits.header_timeout_ms",
             .env = "CUSTODY_LIMITS_HEADER_TIMEOUT_MS",
             .type = kInteger,
             .default_text = "10000",
             .description = "Time to receive a request's header (then 408 and the connection "
                            "closes)",
             .min = 1,
             .max = kHourMs},
     .field = [](Config& c) -> Field { return &c.limits.header_timeout_ms; }},
    {.key = {.name = "limits.body_timeout_ms",
             .env = "CUSTODY_LIMITS_BODY_TIMEOUT_MS",
             .type = kInteger,
             .default_text = "30000",
             .description = "Time to receive a request's body (then 408 and the connection "
                            "closes)",
             .min = 1,
             .max = kHourMs},
     .field = [](Config& c) -> Field { return &c.limits.body_timeout_ms; }},
    {.key = {.name = "limits.write_timeout_ms",
             .env = "CUSTODY_LIMITS_WRITE_TIMEOUT_MS",
             .type = kInteger,
             .default_text = "30000",
             .description = "Time to write a response",
             .min = 1,
             .max = kHourMs},
     .field = [](Config& c) -> Field { return &c.limits.write_timeout_ms; }},
    {.key = {.name = "limits.shutdown_timeout_ms",
             .env = "CUSTODY_LIMITS_SHUTDOWN_TIMEOUT_MS",
             .type = kInteger,
             .default_text = "30000",
             .description = "On shutdown, how long in-flight requests may take to finish",
             .min = 1,
             .max = kHourMs},
     .field = [](Config& c) -> Field { return &c.limits.shutdown_timeout_ms; }},
    {.key = {.name = "ingest.max_body_bytes",
             .env = "CUSTODY_INGEST_MAX_BODY_BYTES",
             .type = kInteger,
             .default_text = "1048576",
             .description = "Largest POST /v1/traces body as received (larger: 413)",
             .min = 1,
             .max = kGiB},
     .field = [](Config& c) -> Field { return &c.ingest.max_body_bytes; }},
    {.key = {.name = "ingest.max_inflated_bytes",
             .env = "CUSTODY_INGEST_MAX_INFLATED_BYTES",
             .type = kInteger,
             .default_text = "8388608",
             .description = "Largest POST /v1/traces body once gzip is inflated (larger: 413)",
             .min = 1,
             .max = kGiB},
     .field = [](Config& c) -> Field { return &c.ingest.max_inflated_bytes; }},
    {.key = {.name = "ingest.max_spans_per_request",
             .env = "CUSTODY_INGEST_MAX_SPANS_PER_REQUEST",
             .type = kInteger,
             .default_text = "4096",
             .description = "Most spans in one POST /v1/traces (more: 413)",
             .min = 1,
             .max = 1000000},
     .field = [](Config& c) -> Field { return &c.ingest.max_spans_per_request; }},
    {.key = {.name = "ingest.spans_per_second",
             .env = "CUSTODY_INGEST_SPANS_PER_SECOND",
             .type = kInteger,
             .default_text = "5000",
             .description = "Spans per second one credential may send, sustained (over: 429)",
             .min = 1,
             .max = 100000000},
     .field = [](Config& c) -> Field { return &c.ingest.spans_per_second; }},
    {.key = {.name = "ingest.burst_spans",
             .env = "CUSTODY_INGEST_BURST_SPANS",
             .type = kInteger,
             .default_text = "20000",
             .description = "Spans one credential may send at once (raised to "
                            "ingest.max_spans_per_request if lower)",
             .min = 1,
             .max = 1000000000},
     .field = [](Config& c) -> Field { return &c.ingest.burst_spans; }},
    {.key = {.name = "export.ocsf.url",
             .env = "CUSTODY_EXPORT_OCSF_URL",
             .default_text = "",
             .description = "Where every ledger entry is sent as an OCSF record (NDJSON batches "
                            "by POST, http or https, retried); empty: no HTTP export"},
     .field = [](Config& c) -> Field { return &c.export_.ocsf.url; }},
    {.key = {.name = "export.ocsf.file",
             .env = "CUSTODY_EXPORT_OCSF_FILE",
             .default_text = "",
             .description = "Or: the file every ledger entry is appended to as an OCSF record "
                            "(NDJSON, rotated by size); empty: no file export"},
     .field = [](Config& c) -> Field { return &c.export_.ocsf.file; }},
    {.key = {.name = "export.ocsf.cursor_file",
             .env = "CUSTODY_EXPORT_OCSF_CURSOR_FILE",
             .default_text = "",
             .description = "The export's durable cursor (the next ledger index to send); empty: "
                            "<data_dir>/ocsf-export.cursor"},
     .field = [](Config& c) -> Field { return &c.export_.ocsf.cursor_file; }},
    {.key = {.name = "export.ocsf.authorization_file",
             .env = "CUSTODY_EXPORT_OCSF_AUTHORIZATION_FILE",
             .default_text = "",
             .description = "File (mode 0600 or stricter) holding the Authorization header sent "
                            "with each POST (e.g. \"Bearer …\", \"Splunk …\"); empty: none"},
     .field = [](Config& c) -> Field { return &c.export_.ocsf.authorization_file; }},
    {.key = {.name = "export.ocsf.ca_file",
             .env = "CUSTODY_EXPORT_OCSF_CA_FILE",
             .default_text = "",
             .description = "PEM trust anchors for an https export.ocsf.url; empty: the system "
                            "store"},
     .field = [](Config& c) -> Field { return &c.export_.ocsf.ca_file; }},
    {.key = {.name = "export.ocsf.max_file_bytes",
             .env = "CUSTODY_EXPORT_OCSF_MAX_FILE_BYTES",
             .type = kInteger,
             .default_text = "67108864",
             .description = "The export file is rotated (name.1, name.2, …) before it passes "
                            "this size",
             .min = 4096,
             .max = kGiB * 64},
     .field = [](Config& c) -> Field { return &c.export_.ocsf.max_file_bytes; }},
    {.key = {.name = "export.ocsf.keep_files",
             .env = "CUSTODY_EXPORT_OCSF_KEEP_FILES",
             .type = kInteger,
             .default_text = "5",
             .description = "Rotated export files kept",
             .min = 0,
             .max = 1000},
     .field = [](Config& c) -> Field { return &c.export_.ocsf.keep_files; }},
    {.key = {.name = "export.ocsf.batch",
             .env = "CUSTODY_EXPORT_OCSF_BATCH",
             .type = kInteger,
             .default_text = "500",
             .description = "Most records per POST or file write",
             .min = 1,
             .max = 100000},
     .field = [](Config& c) -> Field { return &c.export_.ocsf.batch; }},
    {.key = {.name = "export.ocsf.poll_ms",
             .env = "CUSTODY_EXPORT_OCSF_POLL_MS",
             .type = kInteger,
             .default_text = "500",
             .description = "How often the export reads the ledger's size when it has sent "
                            "everything",
             .min = 10,
             .max = kHourMs},
     .field = [](Config& c) -> Field { return &c.export_.ocsf.poll_ms; }},
    {.key = {.name = "mcp.audience",
             .env = "CUSTODY_MCP_AUDIENCE",
             .default_text = "",
             .description = "Audience session tokens must carry at the MCP gateway; empty: "
                            "<identity.issuer>/mcp"},
     .field = [](Config& c) -> Field { return &c.mcp.audience; }},
    {.key = {.name = "mcp.allowed_origins",
             .env = "CUSTODY_MCP_ALLOWED_ORIGINS",
             .default_text = "",
             .description = "Comma-separated Origins the gateway accepts besides loopback ones "
                            "(others: 403)"},
     .field = [](Config& c) -> Field { return &c.mcp.allowed_origins; }},
    {.key = {.name = "mcp.max_message_bytes",
             .env = "CUSTODY_MCP_MAX_MESSAGE_BYTES",
             .type = kInteger,
             .default_text = "1048576",
             .description = "Largest MCP request body (larger: 413 with a JSON-RPC error)",
             .min = 1,
             .max = kGiB},
     .field = [](Config& c) -> Field { return &c.mcp.max_message_bytes; }},
    {.key = {.name = "mcp.request_timeout_ms",
             .env = "CUSTODY_MCP_REQUEST_TIMEOUT_MS",
             .type = kInteger,
             .default_text = "60000",
             .description = "An upstream request older than this fails (-32002) and is "
                            "cancelled upstream",
             .min = 1,
             .max = kHourMs},
     .field = [](Config& c) -> Field { return &c.mcp.request_timeout_ms; }},
    {.key = {.name = "mcp.await_outcome",
             .env = "CUSTODY_MCP_AWAIT_OUTCOME",
             .type = kBoolean,
             .default_text = "false",
             .description = "Answer a tools/call only once its outcome is durable in the ledger "
                            "too"},
     .field = [](Config& c) -> Field { return &c.mcp.await_outcome; }},
    {.key = {.name = "mcp.session_idle_timeout_ms",
             .env = "CUSTODY_MCP_SESSION_IDLE_TIMEOUT_MS",
             .type = kInteger,
             .default_text = "3600000",
             .description = "An MCP session unused this long ends (404 afterwards)",
             .min = 100,
             .max = 30 * 24 * kHourMs},
     .field = [](Config& c) -> Field { return &c.mcp.session_idle_timeout_ms; }},
    {.key = {.name = "mcp.max_sessions_per_custody_session",
             .env = "CUSTODY_MCP_MAX_SESSIONS_PER_CUSTODY_SESSION",
             .type = kInteger,
             .default_text = "64",
             .description = "Live MCP sessions one Custody session may have (initialize beyond: "
                            "429)",
             .min = 1,
             .max = 100'000},
     .field = [](Config& c) -> Field { return &c.mcp.max_sessions_per_custody_session; }},
    // [mcp.servers.NAME]: file only. A server has exactly one of command and url.
    {.key = {.name = "mcp.servers.NAME.command",
             .default_text = "",
             .description = "Program of a stdio MCP server, spawned by the gateway and served "
                            "at /mcp/NAME"},
     .server_field = [](Config::McpServer& s) -> ServerField { return &s.command; }},
    {.key = {.name = "mcp.servers.NAME.args",
             .type = kStringArray,
             .default_text = "[]",
             .description = "Arguments of command (command servers only)"},
     .server_field = [](Config::McpServer& s) -> ServerField { return &s.args; }},
    {.key = {.name = "mcp.servers.NAME.env",
             .type = kStringTable,
             .default_text = "{}",
             .description = "Environment variables for command, added to Custody's own (command "
                            "servers only)"},
     .server_field = [](Config::McpServer& s) -> ServerField { return &s.env; }},
    {.key = {.name = "mcp.servers.NAME.url",
             .default_text = "",
             .description = "http:// or https:// URL of a remote Streamable HTTP MCP server, "
                            "served at /mcp/NAME"},
     .server_field = [](Config::McpServer& s) -> ServerField { return &s.url; }},
    {.key = {.name = "mcp.servers.NAME.headers",
             .type = kStringTable,
             .default_text = "{}",
             .description = "Headers sent with every request to url; ${VAR} in a value reads "
                            "the environment (url servers only)"},
     .server_field = [](Config::McpServer& s) -> ServerField { return &s.headers; }},
    {.key = {.name = "mcp.servers.NAME.ca_file",
             .default_text = "",
             .description = "PEM trust anchors for an https url, instead of the system store "
                            "(url servers only)"},
     .server_field = [](Config::McpServer& s) -> ServerField { return &s.ca_file; }},
    {.key = {.name = "mcp.servers.NAME.protocol",
             .default_text = "auto",
             .description = "The MCP era the server speaks: auto (ask with server/discover, "
                            "else initialize), 2026-07-28, or 2025 (initialize only)",
             .choices = "auto|2026-07-28|2025"},
     .server_field = [](Config::McpServer& s) -> ServerField { return &s.protocol; }},
    {.key = {.name = "mcp.servers.NAME.identity",
             .default_text = "none",
             .description = "What the server is told of who is behind each enforced call: none, "
                            "or txn-token (a Transaction Token per call: Txn-Token header, or "
                            "_meta dev.custody/txn-token on stdio)",
             .choices = "none|txn-token"},
     .server_field = [](Config::McpServer& s) -> ServerField { return &s.identity; }},
    {.key = {.name = "mcp.servers.NAME.txn_audience",
             .default_text = "",
             .description = "aud of the server's Transaction Tokens (default: its url, or "
                            "urn:custody:mcp:NAME for a command server)"},
     .server_field = [](Config::McpServer& s) -> ServerField { return &s.txn_audience; }},
};

constexpr std::string_view kServersSection = "mcp.servers";
constexpr std::string_view kServerKeyPrefix = "mcp.servers.NAME.";

constexpr auto kPublicKeys = [] {
  std::array<ConfigKey, std::size(kKeys)> out{};
  for (size_t i = 0; i < out.size(); ++i) out[i] = kKeys[i].key;
  return out;
}();

// A key of Config (not of a server), as a TOML dotted name or a --set key.
const KeyDef* FindKey(std::string_view name) {
  for (const KeyDef& k : kKeys) {
    if (k.field != nullptr && name == k.key.name) return &k;
  }
  return nullptr;
}

// A key of [mcp.servers.NAME], e.g. "command".
const KeyDef* FindServerKey(std::string_view key) {
  for (const KeyDef& k : kKeys) {
    if (k.server_field != nullptr && k.key.name.substr(kServerKeyPrefix.size()) == key) return &k;
  }
  return nullptr;
}

// "a string", "an integer", …: what a value of `type` must be, for messages.
std::string MustBe(ConfigType type) {
  std::string_view name = ConfigTypeName(type);
  return std::string(name.front() == 'a' || name.front() == 'i' ? "an " : "a ") + std::string(name);
}

// Sets a key from text (environment variables and flags).
Status SetFromString(Config& c, const KeyDef& def, std::string_view value, std::string_view where) {
  std::string name(def.key.name);
  Field f = def.field(c);
  if (auto* str = std::get_if<std::string*>(&f)) {
    **str = std::string(value);
    return OkStatus();
  }
  if (auto* b = std::get_if<bool*>(&f)) {
    if (value == "true" || value == "1") {
      **b = true;
    } else if (value == "false" || value == "0") {
      **b = false;
    } else {
      return InvalidArgumentError(std::string(where) + ": " + name + " must be true or false");
    }
    return OkStatus();
  }
  int64_t v = 0;
  auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), v);
  if (ec != std::errc() || p != value.data() + value.size()) {
    return InvalidArgumentError(std::string(where) + ": " + name + " must be an integer");
  }
  *std::get<int64_t*>(f) = v;
  return OkStatus();
}

std::string Where(std::string_view name, const toml::source_region& src) {
  return std::string(name) + ":" + std::to_string(src.begin.line) + ":" +
         std::to_string(src.begin.column);
}

constexpr std::string_view kClientsSection = "oauth.clients";
constexpr std::string_view kClientKeyPrefix = "oauth.clients.ID.";

// [oauth.clients."ID"]: redirect_uris (array of strings), agent, name. What the values must be
// (URIs, an agent) is checked when the service starts (identity::StaticClientDirectory).
Status ApplyOAuthClients(Config& c, const toml::table& clients, std::string_view name) {
  for (const auto& [k, node] : clients) {
    std::string id(k.str());
    const toml::table* t = node.as_table();
    if (!t) {
      return InvalidArgumentError(Where(name, node.source()) + ": oauth.clients.\"" + id +
                                  "\" must be a table");
    }
    Config::OAuthClient client;
    for (const auto& [ck, cv] : *t) {
      std::string key = "oauth.clients.\"" + id + "\"." + std::string(ck.str());
      const KeyDef* def = nullptr;
      for (const KeyDef& d : kKeys) {
        if (d.client_field != nullptr && d.key.name.substr(kClientKeyPrefix.size()) == ck.str()) {
          def = &d;
        }
      }
      if (!def) return InvalidArgumentError(Where(name, cv.source()) + ": unknown key " + key);
      ClientField f = def->client_field(client);
      if (auto* str = std::get_if<std::string*>(&f)) {
        if (!cv.is_string()) {
          return InvalidArgumentError(Where(name, cv.source()) + ": " + key + " must be a string");
        }
        **str = *cv.value<std::string>();
      } else {
        const toml::array* a = cv.as_array();
        if (!a) {
          return InvalidArgumentError(Where(name, cv.source()) + ": " + key +
                                      " must be an array of strings");
        }
        for (const auto& e : *a) {
          if (!e.is_string()) {
            return InvalidArgumentError(Where(name, e.source()) + ": " + key +
                                        " must be an array of strings");
          }
          std::get<std::vector<std::string>*>(f)->push_back(*e.value<std::string>());
        }
      }
    }
    // A client_id that is a URL may leave its redirect URIs to its metadata document.
    const bool url = id.starts_with("https://") || id.starts_with("http://");
    if ((client.redirect_uris.empty() && !url) || client.agent.empty()) {
      return InvalidArgumentError(Where(name, node.source()) + ": oauth.clients.\"" + id +
                                  "\" needs redirect_uris and agent");
    }
    c.oauth.clients[id] = std::move(client);
  }
  return OkStatus();
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
      const KeyDef* def = FindServerKey(mk.str());
      if (!def) return InvalidArgumentError(Where(name, mv.source()) + ": unknown key " + key);
      std::string must_be = " must be " + MustBe(def->key.type);
      ServerField f = def->server_field(s);
      if (auto* str = std::get_if<std::string*>(&f)) {
        if (!mv.is_string()) {
          return InvalidArgumentError(Where(name, mv.source()) + ": " + key + must_be);
        }
        **str = *mv.value<std::string>();
      } else if (auto* list = std::get_if<std::vector<std::string>*>(&f)) {
        const toml::array* a = mv.as_array();
        if (!a) return InvalidArgumentError(Where(name, mv.source()) + ": " + key + must_be);
        for (const auto& e : *a) {
          if (!e.is_string()) {
            return InvalidArgumentError(Where(name, e.source()) + ": " + key + must_be);
          }
          (*list)->push_back(*e.value<std::string>());
        }
      } else {
        std::map<std::string, std::string>& out = *std::get<std::map<std::string, std::string>*>(f);
        const toml::table* e = mv.as_table();
        if (!e) return InvalidArgumentError(Where(name, mv.source()) + ": " + key + must_be);
        for (const auto& [ek, ev] : *e) {
          if (!ev.is_string()) {
            return InvalidArgumentError(Where(name, ev.source()) + ": " + key + "." +
                                        std::string(ek.str()) + " must be a string");
          }
          out[std::string(ek.str())] = *ev.value<std::string>();
        }
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
    if (s.protocol != "auto" && s.protocol != "2026-07-28" && s.protocol != "2025") {
      return InvalidArgumentError(Where(name, node.source()) + ": mcp.servers." + server +
                                  ".protocol must be \"auto\", \"2026-07-28\" or \"2025\"");
    }
    if (s.identity != "none" && s.identity != "txn-token") {
      return InvalidArgumentError(Where(name, node.source()) + ": mcp.servers." + server +
                                  ".identity must be \"none\" or \"txn-token\"");
    }
    if (!s.url.empty() && (!s.args.empty() || !s.env.empty())) {
      return InvalidArgumentError(Where(name, node.source()) + ": mcp.servers." + server +
                                  ": args and env apply to command servers only");
    }
    c.mcp.servers[server] = std::move(s);
  }
  return OkStatus();
}

// A name of [credentials.postgres.NAME] or of an access level: 1-64 of [A-Za-z0-9_-].
bool IsCredentialName(std::string_view n) {
  if (n.empty() || n.size() > 64) return false;
  for (char ch : n) {
    if (!std::isalnum(static_cast<unsigned char>(ch)) && ch != '-' && ch != '_') return false;
  }
  return true;
}

// [credentials.postgres.NAME] and its [credentials.postgres.NAME.access.LEVEL] tables, each key
// checked here: the URL (no password in it), one source of the password at most, the ranges, and
// every grant template (credentials/grant_template.h). Unknown keys are errors.
Status ApplyCredentials(Config& c, const toml::table& credentials, std::string_view name) {
  for (const auto& [kind, kind_node] : credentials) {
    const toml::table* dbs = kind_node.as_table();
    if (kind.str() != "postgres" || !dbs) {
      return InvalidArgumentError(Where(name, kind_node.source()) +
                                  ": unknown section [credentials." + std::string(kind.str()) +
                                  "] (only [credentials.postgres.NAME])");
    }
    for (const auto& [k, node] : *dbs) {
      const std::string db(k.str());
      const std::string prefix = "credentials.postgres." + db;
      const toml::table* t = node.as_table();
      if (!t)
        return InvalidArgumentError(Where(name, node.source()) + ": " + prefix +
                                    " must be a table");
      if (!IsCredentialName(db)) {
        return InvalidArgumentError(Where(name, node.source()) + ": database name \"" + db +
                                    "\" must be 1-64 of [A-Za-z0-9_-]");
      }
      Config::CredentialDatabase d;
      for (const auto& [mk, mv] : *t) {
        const std::string key = prefix + "." + std::string(mk.str());
        const std::string where = Where(name, mv.source()) + ": " + key;
        if (mk.str() == "access") {
          const toml::table* levels = mv.as_table();
          if (!levels) return InvalidArgumentError(where + " must be a table of access levels");
          for (const auto& [lk, lv] : *levels) {
            const std::string level(lk.str());
            const std::string lkey = key + "." + level;
            const toml::table* lt = lv.as_table();
            if (!lt || !IsCredentialName(level)) {
              return InvalidArgumentError(Where(name, lv.source()) + ": " + lkey +
                                          " must be a table named 1-64 of [A-Za-z0-9_-]");
            }
            Config::CredentialAccess a;
            for (const auto& [ak, av] : *lt) {
              const std::string akey = lkey + "." + std::string(ak.str());
              if (ak.str() == "grant" && av.is_string()) {
                a.grant = *av.value<std::string>();
              } else if (ak.str() == "max_ttl_s" && av.is_integer()) {
                a.max_ttl_s = *av.value<int64_t>();
              } else if (ak.str() == "grant" || ak.str() == "max_ttl_s") {
                return InvalidArgumentError(Where(name, av.source()) + ": " + akey + " must be " +
                                            (ak.str() == "grant" ? "a string" : "an integer"));
              } else {
                return InvalidArgumentError(Where(name, av.source()) + ": unknown key " + akey);
              }
            }
            RETURN_IF_ERROR(credentials::ValidateGrantTemplate(a.grant, lkey + ".grant"));
            d.access[level] = std::move(a);
          }
          continue;
        }
        std::string* str = mk.str() == "admin_url"             ? &d.admin_url
                           : mk.str() == "admin_password_env"  ? &d.admin_password_env
                           : mk.str() == "admin_password_file" ? &d.admin_password_file
                                                               : nullptr;
        int64_t* num = mk.str() == "max_ttl_s"          ? &d.max_ttl_s
                       : mk.str() == "connection_limit" ? &d.connection_limit
                                                        : nullptr;
        if (str) {
          if (!mv.is_string()) return InvalidArgumentError(where + " must be a string");
          *str = *mv.value<std::string>();
        } else if (num) {
          if (!mv.is_integer()) return InvalidArgumentError(where + " must be an integer");
          *num = *mv.value<int64_t>();
        } else {
          return InvalidArgumentError(Where(name, mv.source()) + ": unknown key " + key);
        }
      }
      const std::string where = Where(name, node.source()) + ": " + prefix;
      if (d.admin_url.empty()) return InvalidArgumentError(where + ".admin_url is required");
      if (auto info = credentials::ParseAdminUrl(d.admin_url, prefix + ".admin_url"); !info.ok()) {
        return InvalidArgumentError(Where(name, node.source()) + ": " + info.status().message());
      }
      if (!d.admin_password_env.empty() && !d.admin_password_file.empty()) {
        return InvalidArgumentError(
            where + ": admin_password_env and admin_password_file exclude each other");
      }
      if (d.max_ttl_s < 1 || d.max_ttl_s > 7 * 24 * 3600) {
        return InvalidArgumentError(where + ".max_ttl_s must be in [1, 604800]");
      }
      if (d.connection_limit < 1 || d.connection_limit > 10'000) {
        return InvalidArgumentError(where + ".connection_limit must be in [1, 10000]");
      }
      if (d.access.empty()) {
        return InvalidArgumentError(where + " needs at least one [" + prefix + ".access.LEVEL]");
      }
      for (const auto& [level, a] : d.access) {
        if (a.max_ttl_s < 0 || a.max_ttl_s > d.max_ttl_s) {
          return InvalidArgumentError(where + ".access." + level + ".max_ttl_s must be in [0, " +
                                      std::to_string(d.max_ttl_s) + "] (0: max_ttl_s)");
        }
      }
      c.credentials.postgres[db] = std::move(d);
    }
  }
  return OkStatus();
}

// [console.idp_roles]: admin_groups and reader_groups, arrays of IdP group names.
Status ApplyConsoleIdpRoles(Config& c, const toml::table& roles, std::string_view name) {
  for (const auto& [k, node] : roles) {
    const std::string key = "console.idp_roles." + std::string(k.str());
    std::vector<std::string>* list = k.str() == "admin_groups" ? &c.console.idp_roles.admin_groups
                                     : k.str() == "reader_groups"
                                         ? &c.console.idp_roles.reader_groups
                                         : nullptr;
    if (!list) {
      return InvalidArgumentError(Where(name, node.source()) + ": unknown key " + key +
                                  " (admin_groups or reader_groups)");
    }
    const toml::array* a = node.as_array();
    if (!a) {
      return InvalidArgumentError(Where(name, node.source()) + ": " + key +
                                  " must be an array of strings");
    }
    list->clear();
    for (const toml::node& e : *a) {
      auto v = e.value<std::string>();
      if (!e.is_string() || !v) {
        return InvalidArgumentError(Where(name, e.source()) + ": " + key +
                                    " must be an array of strings");
      }
      list->push_back(*v);
    }
  }
  return OkStatus();
}

// The IdP groups of [console.idp_roles]: names as an IdP sends them, each in one list only.
Status ValidateConsoleIdpRoles(const Config::Console::IdpRoles& r) {
  for (const auto* list : {&r.admin_groups, &r.reader_groups}) {
    const char* key = list == &r.admin_groups ? "admin_groups" : "reader_groups";
    for (const std::string& g : *list) {
      if (g.empty() || g.size() > 256) {
        return InvalidArgumentError(std::string("console.idp_roles.") + key +
                                    ": a group name must be 1-256 bytes");
      }
    }
  }
  for (const std::string& g : r.admin_groups) {
    if (std::find(r.reader_groups.begin(), r.reader_groups.end(), g) != r.reader_groups.end()) {
      return InvalidArgumentError("console.idp_roles: group \"" + g +
                                  "\" is in both admin_groups and reader_groups");
    }
  }
  return OkStatus();
}

Status ApplyTable(Config& c, const toml::table& table, const std::string& prefix,
                  std::string_view name) {
  for (const auto& [k, node] : table) {
    std::string key = prefix.empty() ? std::string(k.str()) : prefix + "." + std::string(k.str());
    if (key == kClientsSection) {
      const toml::table* sub = node.as_table();
      if (!sub) {
        return InvalidArgumentError(Where(name, node.source()) + ": oauth.clients must be a table");
      }
      RETURN_IF_ERROR(ApplyOAuthClients(c, *sub, name));
      continue;
    }
    if (key == "credentials") {
      const toml::table* sub = node.as_table();
      if (!sub)
        return InvalidArgumentError(Where(name, node.source()) + ": credentials must be a table");
      RETURN_IF_ERROR(ApplyCredentials(c, *sub, name));
      continue;
    }
    if (key == "console.idp_roles") {
      const toml::table* sub = node.as_table();
      if (!sub) {
        return InvalidArgumentError(Where(name, node.source()) +
                                    ": console.idp_roles must be a table");
      }
      RETURN_IF_ERROR(ApplyConsoleIdpRoles(c, *sub, name));
      continue;
    }
    if (key == kServersSection) {
      const toml::table* sub = node.as_table();
      if (!sub)
        return InvalidArgumentError(Where(name, node.source()) + ": mcp.servers must be a table");
      RETURN_IF_ERROR(ApplyMcpServers(c, *sub, name));
      continue;
    }
    if (const toml::table* sub = node.as_table()) {
      bool is_section = false;
      for (const KeyDef& d : kKeys) {
        if (d.key.name.starts_with(key + ".")) is_section = true;
      }
      if (!is_section) {
        return InvalidArgumentError(Where(name, node.source()) + ": unknown section [" + key + "]");
      }
      RETURN_IF_ERROR(ApplyTable(c, *sub, key, name));
      continue;
    }
    const KeyDef* def = FindKey(key);
    if (!def) return InvalidArgumentError(Where(name, node.source()) + ": unknown key " + key);
    std::string must_be = " must be " + MustBe(def->key.type);
    Field f = def->field(c);
    if (auto* str = std::get_if<std::string*>(&f)) {
      auto v = node.value<std::string>();
      if (!node.is_string() || !v) {
        return InvalidArgumentError(Where(name, node.source()) + ": " + key + must_be);
      }
      **str = *v;
    } else if (auto* b = std::get_if<bool*>(&f)) {
      if (!node.is_boolean()) {
        return InvalidArgumentError(Where(name, node.source()) + ": " + key + must_be);
      }
      **b = *node.value<bool>();
    } else {
      if (!node.is_integer()) {
        return InvalidArgumentError(Where(name, node.source()) + ": " + key + must_be);
      }
      *std::get<int64_t*>(f) = *node.value<int64_t>();
    }
  }
  return OkStatus();
}

// The checks of one key that its table row describes: range, choices, non-empty.
Status CheckValue(const ConfigKey& key, const Field& f) {
  std::string name(key.name);
  if (const int64_t* const* v = std::get_if<int64_t*>(&f)) {
    if (**v < key.min || **v > key.max) {
      return InvalidArgumentError(name + " must be in [" + std::to_string(key.min) + ", " +
                                  std::to_string(key.max) + "], got " + std::to_string(**v));
    }
    return OkStatus();
  }
  const std::string* const* str = std::get_if<std::string*>(&f);
  if (str == nullptr) return OkStatus();
  if (key.non_empty && (*str)->empty()) return InvalidArgumentError(name + " must not be empty");
  if (key.choices.empty()) return OkStatus();
  // "a|b|c": accepted if one of them; the message lists them as "a, b or c".
  std::string list;
  for (size_t pos = 0; pos <= key.choices.size();) {
    size_t bar = std::min(key.choices.find('|', pos), key.choices.size());
    std::string_view choice = key.choices.substr(pos, bar - pos);
    if (**str == choice) return OkStatus();
    if (!list.empty()) list += bar == key.choices.size() ? " or " : ", ";
    list += choice;
    pos = bar + 1;
  }
  return InvalidArgumentError(name + " must be " + list);
}

// The host of an http(s) URL ("" if it has none, or user info: a password there would be
// logged with the URL), without brackets or port.
std::string UrlHost(std::string_view url) {
  size_t scheme_end = url.find("://");
  if (scheme_end == std::string_view::npos) return "";
  std::string_view authority = url.substr(scheme_end + 3);
  authority = authority.substr(0, authority.find_first_of("/?#"));
  if (authority.find('@') != std::string_view::npos) return "";
  if (authority.starts_with("[")) {
    size_t close = authority.find(']');
    return close == std::string_view::npos ? "" : std::string(authority.substr(1, close - 1));
  }
  return std::string(authority.substr(0, authority.find(':')));
}

// localhost, 127.0.0.0/8 or ::1: where plain http is allowed for development.
bool IsLoopbackHost(std::string_view host) {
  std::string h(host);
  std::transform(h.begin(), h.end(), h.begin(),
                 [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
  if (h == "localhost") return true;
  in_addr v4{};
  if (::inet_pton(AF_INET, h.c_str(), &v4) == 1) return (ntohl(v4.s_addr) >> 24) == 127;
  in6_addr v6{};
  return ::inet_pton(AF_INET6, h.c_str(), &v6) == 1 && IN6_IS_ADDR_LOOPBACK(&v6);
}

// A Cedar entity type: identifiers joined by "::" ("User", "Acme::Person").
bool IsCedarEntityType(std::string_view type) {
  for (size_t pos = 0;;) {
    size_t sep = type.find("::", pos);
    std::string_view id = type.substr(pos, sep == std::string_view::npos ? sep : sep - pos);
    if (id.empty() || std::isdigit(static_cast<unsigned char>(id.front()))) return false;
    for (char ch : id) {
      if (!std::isalnum(static_cast<unsigned char>(ch)) && ch != '_') return false;
    }
    if (sep == std::string_view::npos) return true;
    pos = sep + 2;
  }
}

Status ValidateApproval(const Config::Approval& a) {
  if (!IsCedarEntityType(a.person_type)) {
    return InvalidArgumentError(
        "approval.person_type must be a Cedar entity type such as User or Acme::Person");
  }
  if (!a.base_url.empty() &&
      ((!a.base_url.starts_with("https://") && !a.base_url.starts_with("http://")) ||
       UrlHost(a.base_url).empty())) {
    return InvalidArgumentError("approval.base_url must be an http:// or https:// URL with a host");
  }
  const Config::Approval::Webhook& w = a.webhook;
  if (w.url.empty()) {
    if (!w.secret_file.empty()) {
      return InvalidArgumentError("approval.webhook.secret_file needs approval.webhook.url");
    }
    return OkStatus();
  }
  std::string host = UrlHost(w.url);
  bool https = w.url.starts_with("https://");
  if (host.empty() || (!https && !(w.url.starts_with("http://") && IsLoopbackHost(host)))) {
    return InvalidArgumentError(
        "approval.webhook.url must be an https:// URL with a host and no user info (http:// only "
        "to a loopback host)");
  }
  if (w.secret_file.empty()) {
    return InvalidArgumentError(
        "approval.webhook.url needs approval.webhook.secret_file (notifications are signed)");
  }
  return OkStatus();
}

// `c` is not changed; it is not const only because the table's accessors take a Config&.
Status Validate(Config& c) {
  RETURN_IF_ERROR(ParseListen(c.listen).status().WithContext("listen"));
  for (const KeyDef& d : kKeys) {
    if (d.field != nullptr) RETURN_IF_ERROR(CheckValue(d.key, d.field(c)));
  }
  if (c.tls.cert.empty() != c.tls.key.empty()) {
    return InvalidArgumentError("tls.cert and tls.key must be set together");
  }
  if (!c.login.issuer.empty() && c.login.client_id.empty()) {
    return InvalidArgumentError("login.client_id must be set with login.issuer");
  }
  if (!c.login.issuer.empty() &&
      c.login.client_secret.empty() == c.login.private_key_file.empty()) {
    return InvalidArgumentError(
        "[login] needs exactly one of login.client_secret (or CUSTODY_LOGIN_CLIENT_SECRET) and "
        "login.private_key_file (private_key_jwt)");
  }
  if (!c.login.private_key_kid.empty() && c.login.private_key_file.empty()) {
    return InvalidArgumentError("login.private_key_kid needs login.private_key_file");
  }
  if (c.oauth.dynamic_client_registration && !c.oauth.dev_unknown_clients) {
    return InvalidArgumentError(
        "oauth.dynamic_client_registration needs oauth.dev_unknown_clients (registered clients "
        "have no agent)");
  }
  if (c.storage.backend == "postgres" && c.storage.postgres_url.empty()) {
    return InvalidArgumentError(
        "storage.backend = postgres needs storage.postgres_url (or CUSTODY_STORAGE_POSTGRES_URL)");
  }
  if (c.storage.backend != "postgres" && !c.storage.postgres_url.empty()) {
    return InvalidArgumentError("storage.postgres_url is set but storage.backend is " +
                                c.storage.backend + " (set storage.backend = \"postgres\")");
  }
  if (!c.storage.key_encryption_key_file.empty() && !c.storage.key_encryption_key.empty()) {
    return InvalidArgumentError(
        "set storage.key_encryption_key_file or CUSTODY_STORAGE_KEY_ENCRYPTION_KEY, not both");
  }
  RETURN_IF_ERROR(ValidateApproval(c.approval));
  RETURN_IF_ERROR(ValidateConsoleIdpRoles(c.console.idp_roles));
  if (!c.export_.ocsf.url.empty() && !c.export_.ocsf.file.empty()) {
    return InvalidArgumentError("set export.ocsf.url or export.ocsf.file, not both");
  }
  if (!c.export_.ocsf.url.empty() && !c.export_.ocsf.url.starts_with("http://") &&
      !c.export_.ocsf.url.starts_with("https://")) {
    return InvalidArgumentError("export.ocsf.url must be an http:// or https:// URL");
  }
  if (c.login.issuer.empty() && (!c.login.client_id.empty() || !c.login.client_secret.empty() ||
                                 !c.login.private_key_file.empty())) {
    return InvalidArgumentError(
        "login.client_id, login.client_secret and login.private_key_file need login.issuer");
  }
  return OkStatus();
}

}  // namespace

std::string_view ConfigTypeName(ConfigType type) {
  switch (type) {
    case ConfigType::kString:
      return "string";
    case ConfigType::kInteger:
      return "integer";
    case ConfigType::kBoolean:
      return "boolean";
    case ConfigType::kStringArray:
      return "array of strings";
    case ConfigType::kStringTable:
      return "table of strings";
  }
  return "unknown";
}

std::span<const ConfigKey> ConfigKeys() { return kPublicKeys; }

Status SetConfigValue(Config& config, std::string_view key, std::string_view value) {
  const KeyDef* def = FindKey(key);
  if (!def) return InvalidArgumentError("unknown config key " + std::string(key));
  return SetFromString(config, *def, value, "flag for " + std::string(key));
}

std::string Config::TokenDbPath() const {
  return admin.token_db.empty() ? data_dir + "/custody.db" : admin.token_db;
}

store::StorageOptions Config::Storage() const {
  store::StorageOptions o;
  o.ledger_path = LedgerDbPath();
  o.identity_path = IdentityDbPath();
  o.attribution_path = AttributionDbPath();
  o.admin_token_path = TokenDbPath();
  o.tool_pin_path = McpDbPath();
  o.credential_path = data_dir + "/credentials.db";
  if (storage.backend == "postgres") {
    o.backend = store::Backend::kPostgres;
    o.postgres_url = storage.postgres_url;
    o.postgres_pool_size = static_cast<size_t>(storage.postgres_pool_size);
    o.postgres_prepared_statements = storage.postgres_prepared_statements;
  }
  return o;
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

std::string ListenUrl(const HostPort& bound, bool tls) {
  std::string host =
      bound.host.find(':') != std::string::npos ? "[" + bound.host + "]" : bound.host;
  return (tls ? "https://" : "http://") + host + ":" + std::to_string(bound.port);
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
  for (const KeyDef& def : kKeys) {
    if (def.field == nullptr || def.key.env.empty()) continue;  // file only
    std::string env(def.key.env);
    if (auto it = sources.env.find(env); it != sources.env.end()) {
      RETURN_IF_ERROR(SetFromString(c, def, it->second, "environment variable " + env));
    }
  }
  for (const auto& [key, value] : sources.overrides) {
    RETURN_IF_ERROR(SetConfigValue(c, key, value));
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

Result<Config> LoadLocalConfig(const std::string& config_file, const std::string& data_dir) {
  ConfigSources sources;
  sources.env = ProcessEnvironment();
  if (!config_file.empty()) {
    sources.file = config_file;
  } else if (auto it = sources.env.find("CUSTODY_CONFIG"); it != sources.env.end()) {
    sources.file = it->second;
  }
  if (!data_dir.empty()) sources.overrides.emplace_back("data_dir", data_dir);
  auto c = LoadConfig(sources);
  if (!c.ok()) return c.status().WithContext("configuration");
  return c;
}

}  // namespace custody::api
