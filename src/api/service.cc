#include "api/service.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <thread>

#include "api/approval_routes.h"
#include "api/attribution_routes.h"
#include "api/console_routes.h"
#include "api/credential_routes.h"
#include "api/identity_routes.h"
#include "api/ingest_routes.h"
#include "api/investigation_routes.h"
#include "api/ledger_stream.h"
#include "api/metrics.h"
#include "api/oauth_routes.h"
#include "api/routes.h"
#include "attribution/approval_webhook.h"
#include "attribution/attribution_service.h"
#include "common/words.h"
#include "credentials/credential_service.h"
#include "crypto/key_file.h"
#include "crypto/key_wrap.h"
#include "events/recorder.h"
#include "export/sink.h"
#include "http/server.h"
#include "identity/authorization_server.h"
#include "identity/client_metadata.h"
#include "identity/login.h"
#include "identity/oauth_clients.h"
#include "identity/token_service.h"
#include "ingest/ingest_service.h"
#include "investigate/evidence.h"
#include "ledger/ledger.h"
#include "mcp/gateway.h"
#include "store/postgres/pg_change_feed.h"
#include "store/stores.h"

namespace custody::api {

struct Service::Impl {
  Config config;
  const Clock* clock = nullptr;
  Logger* log = nullptr;
  Random* random = nullptr;
  std::unique_ptr<ErrorReporter> errors;
  Metrics metrics;
  std::unique_ptr<store::AdminTokenStore> tokens;
  std::unique_ptr<TokenAuthenticator> authenticator;
  std::unique_ptr<ledger::Ledger> ledger;
  std::unique_ptr<events::Recorder> recorder;            // every event's one way into the ledger
  std::unique_ptr<store::IdentityStore> identity_store;  // after ledger: sink uses it
  std::unique_ptr<identity::TokenService> identity;
  // The authorization code flow ([login], [oauth]): after identity, which it issues through.
  std::unique_ptr<identity::OidcLogin> login;
  std::unique_ptr<identity::StaticClientDirectory> oauth_clients;
  std::unique_ptr<identity::ClientMetadataFetcher> client_metadata;  // CIMD, when on
  std::unique_ptr<identity::MetadataDocumentClientDirectory> document_clients;
  std::unique_ptr<identity::DynamicClientRegistry> registered_clients;  // RFC 7591, when on
  std::unique_ptr<identity::FirstFoundClientDirectory> all_clients;
  std::unique_ptr<identity::AuthorizationServer> authorization;
  std::unique_ptr<store::AttributionStore> attribution_store;
  // The approvers' webhook ([approval.webhook]): before attribution, which queues to it.
  std::unique_ptr<attribution::WebhookSender> approval_webhook;
  std::unique_ptr<attribution::AttributionService> attribution;
  std::unique_ptr<store::ToolPinStore> mcp_pins;
  // Just-in-time database credentials ([credentials.postgres.*]): after attribution, which
  // decides each issue. Stopped before the ledger closes (it records revocations).
  std::unique_ptr<store::CredentialStore> credential_store;
  std::unique_ptr<credentials::CredentialService> credentials;
  std::unique_ptr<mcp::Gateway> mcp;  // after attribution: it calls it
  // OTLP ingest: after attribution, which it reads.
  std::unique_ptr<ingest::IngestService> ingest;
  // Several nodes on one database: tells the others what changed here, and reloads what they
  // changed (store/change_feed.h). After everything it calls into; stopped first.
  std::unique_ptr<store::ChangeFeed> feed;
  int feed_listener = -1;  // the revocation listener that announces revocations
  std::unique_ptr<LedgerStreamer> ledger_stream;  // GET /v1/ledger/stream; stopped before ledger
  std::unique_ptr<ocsf::OcsfSink> ocsf_export;    // [export.ocsf]; stopped before the ledger closes
  std::unique_ptr<ConsoleSessions> console_sessions;   // [console] enabled
  std::unique_ptr<ConsoleAuthenticator> console_auth;  // bearer tokens, or a console session
  http::Router router;
  std::unique_ptr<http::Server> server;
  std::optional<IssuedToken> bootstrap;
  // Holds the port chosen for "port 0" until the server has bound it (see ReservePort).
  int reserved_port_fd = -1;
  bool shut_down = false;

  ~Impl() { ReleasePort(); }
  void ReleasePort() {
    if (reserved_port_fd >= 0) ::close(reserved_port_fd);
    reserved_port_fd = -1;
  }
};

namespace {

// The default issuer names the port Custody listens on, and it must be known before anything
// can mint a token, i.e. before http::Server::Start binds. For port 0 we let the kernel pick a
// port for a socket of our own, bound with SO_REUSEADDR but never listening, and hand that port
// to the server: on Linux a second SO_REUSEADDR socket may bind and listen on it while ours
// only holds it, and nobody else can bind it meanwhile. Ours is closed once the server listens.
Result<uint16_t> ReservePort(const std::string& host, int* fd_out) {
  sockaddr_storage ss{};
  socklen_t len = 0;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&ss);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&ss);
  if (::inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    len = sizeof(sockaddr_in);
  } else if (::inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    len = sizeof(sockaddr_in6);
  } else {
    return InvalidArgumentError("listen host must be an IP address: " + host);
  }
  int fd = ::socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return UnavailableError("cannot create a socket to choose a port");
  int one = 1;
  if (::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
      ::bind(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) {
    ::close(fd);
    return UnavailableError("cannot choose a port on " + host);
  }
  *fd_out = fd;
  return ntohs(ss.ss_family == AF_INET ? v4->sin_port : v6->sin6_port);
}

// The key-encryption key of a PostgreSQL deployment: from storage.key_encryption_key_file or
// CUSTODY_STORAGE_KEY_ENCRYPTION_KEY (LoadConfig refuses both at once).
Result<std::shared_ptr<const crypto::KeyEncryptionKey>> LoadKeyEncryptionKey(const Config& c) {
  if (!c.storage.key_encryption_key_file.empty()) {
    ASSIGN_OR_RETURN(crypto::KeyEncryptionKey k,
                     crypto::KeyEncryptionKey::FromFile(c.storage.key_encryption_key_file));
    return std::make_shared<const crypto::KeyEncryptionKey>(std::move(k));
  }
  if (!c.storage.key_encryption_key.empty()) {
    auto k = crypto::KeyEncryptionKey::Parse(c.storage.key_encryption_key);
    if (!k.ok()) return k.status().WithContext("CUSTODY_STORAGE_KEY_ENCRYPTION_KEY");
    return std::make_shared<const crypto::KeyEncryptionKey>(std::move(*k));
  }
  return InvalidArgumentError(
      "storage.backend = postgres needs a key encryption key, the same on every node: set "
      "storage.key_encryption_key_file (a file of mode 0600 holding 32 random bytes as hex or "
      "base64, e.g. from `openssl rand -base64 32`) or CUSTODY_STORAGE_KEY_ENCRYPTION_KEY");
}

constexpr const char* kWrappedLedgerKey = "wrapped_signing_key";

// The ledger's signing key on PostgreSQL: one key for every node, kept wrapped in ledger_meta.
// The first node creates it (under a deployment lock, so two first nodes do not both create
// one); the others unwrap it. A ledger written before keys were kept there adopts the node's
// ledger.key file, if it has one; a ledger with entries and no key anywhere is refused rather
// than signed with a new key its checkpoints would not verify under.
Result<crypto::Ed25519PrivateKey> LoadOrCreateSharedLedgerKey(const store::StorageOptions& storage,
                                                              store::LedgerStore& ledger,
                                                              const crypto::KeyEncryptionKey& kek,
                                                              Random& random,
                                                              const std::string& local_key_path) {
  std::optional<crypto::Ed25519PrivateKey> key;
  RETURN_IF_ERROR(store::WithDeploymentLock(storage, "ledger-key", [&]() -> Status {
    ASSIGN_OR_RETURN(std::optional<std::string> wrapped, ledger.GetMeta(kWrappedLedgerKey));
    if (wrapped) {
      auto pem = kek.Unwrap(*wrapped, crypto::kLedgerKeySlot);
      if (!pem.ok()) {
        return FailedPreconditionError(
            "the key encryption key does not open the stored ledger key: wrong key?");
      }
      ASSIGN_OR_RETURN(key, crypto::Ed25519PrivateKey::FromPkcs8Pem(*pem));
      return OkStatus();
    }
    if (std::filesystem::exists(local_key_path)) {
      ASSIGN_OR_RETURN(key, crypto::LoadOrCreateEd25519Key(local_key_path));
    } else {
      ASSIGN_OR_RETURN(uint64_t leaves, ledger.LeafCount());
      if (leaves > 0) {
        return FailedPreconditionError(
            "the ledger in PostgreSQL has entries but no stored ledger key, and this node has no "
            "ledger.key in its data directory: start the node that created it once, so it stores "
            "its key");
      }
      ASSIGN_OR_RETURN(key, crypto::Ed25519PrivateKey::Generate());
    }
    ASSIGN_OR_RETURN(std::string pem, key->ToPkcs8Pem());
    return ledger.PutMeta(kWrappedLedgerKey, kek.Wrap(pem, crypto::kLedgerKeySlot, random));
  }));
  return std::move(*key);
}

}  // namespace

Status EnsurePrivateDir(const std::string& dir, bool create) {
  struct stat st;
  if (::stat(dir.c_str(), &st) != 0) {
    if (!create) {
      return NotFoundError("data directory " + dir +
                           " does not exist (create it, or run `custody serve --quickstart`)");
    }
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec) return UnavailableError("cannot create data directory " + dir + ": " + ec.message());
    if (::chmod(dir.c_str(), 0700) != 0) {
      return UnavailableError("cannot set mode 0700 on " + dir);
    }
    return OkStatus();
  }
  if (!S_ISDIR(st.st_mode)) return InvalidArgumentError(dir + " is not a directory");
  if (st.st_mode & 0077) {
    return FailedPreconditionError("data directory " + dir +
                                   " is accessible to group or others; chmod 700 it");
  }
  return OkStatus();
}

Service::Service(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Service::~Service() { Shutdown(); }

Result<std::unique_ptr<Service>> Service::Open(const Config& config, const ServiceOptions& options,
                                               const Clock& clock, Random& random, Logger& log) {
  auto impl = std::make_unique<Impl>();
  impl->config = config;
  impl->clock = &clock;
  impl->log = &log;
  impl->random = &random;
  impl->errors = std::make_unique<ErrorReporter>(log);
  impl->metrics.ReportErrorsOf(*impl->errors);
  RETURN_IF_ERROR(EnsurePrivateDir(config.data_dir, options.quickstart));

  // The issuer is decided here, before any token can be minted: tokens, the gateway's audience
  // and the discovery documents all read impl->config, never `config`.
  ASSIGN_OR_RETURN(HostPort hp, ParseListen(config.listen));
  if (impl->config.identity.issuer.empty()) {
    if (hp.port == 0) {
      ASSIGN_OR_RETURN(hp.port, ReservePort(hp.host, &impl->reserved_port_fd));
    }
    impl->config.identity.issuer = ListenUrl(hp, config.TlsEnabled());
    log.Log(LogLevel::kWarn,
            "identity.issuer is not set: using " + impl->config.identity.issuer +
                "; set it in production",
            {{"issuer", std::string_view(impl->config.identity.issuer)}});
  }
  const Config& resolved = impl->config;

  // Every store, through the one factory (store/stores.h). On PostgreSQL the private keys are
  // wrapped with the key-encryption key, and the ledger key comes from the database: a wrong
  // key stops the start here, before anything is written.
  store::StorageOptions storage = config.Storage();
  std::shared_ptr<const crypto::KeyEncryptionKey> kek;
  if (storage.backend == store::Backend::kPostgres) {
    ASSIGN_OR_RETURN(kek, LoadKeyEncryptionKey(config));
    {
      // Before anything is written: a node with a skewed clock would date its tokens and
      // events differently from the others.
      store::PgOptions po;
      po.pool_size = 1;
      po.what = "database";
      ASSIGN_OR_RETURN(std::unique_ptr<store::PgDb> db,
                       store::PgDb::Open(storage.postgres_url, po));
      RETURN_IF_ERROR(
          db->CheckClockSkew(clock, std::chrono::milliseconds(config.storage.max_clock_skew_ms)));
    }
    storage.key_encryption_key = kek;
    storage.random = &random;
    storage.migrate = options.migrate;
  }
  ASSIGN_OR_RETURN(store::Stores stores, store::OpenStores(storage));
  std::optional<crypto::Ed25519PrivateKey> ledger_key;
  if (kek) {
    ASSIGN_OR_RETURN(ledger_key, LoadOrCreateSharedLedgerKey(storage, *stores.ledger, *kek, random,
                                                             config.LedgerKeyPath()));
  } else {
    ASSIGN_OR_RETURN(ledger_key, crypto::LoadOrCreateEd25519Key(config.LedgerKeyPath()));
  }
  impl->tokens = std::move(stores.admin_tokens);
  impl->authenticator = std::make_unique<TokenAuthenticator>(*impl->tokens);
  if (options.quickstart) {
    ASSIGN_OR_RETURN(auto records, impl->tokens->List());
    bool have_admin = false;
    for (const auto& r : records) {
      if (r.role == kRoleAdmin && !r.revoked_unix_ms) have_admin = true;
    }
    if (!have_admin) {
      ASSIGN_OR_RETURN(IssuedToken t,
                       IssueAdminToken(*impl->tokens, kRoleAdmin, "quickstart", clock, random));
      impl->bootstrap = std::move(t);
    }
  }

  ledger::LedgerOptions lo;
  ASSIGN_OR_RETURN(std::optional<std::string> stored_origin, stores.ledger->GetMeta("origin"));
  // An existing ledger keeps its origin; the configured one names a new ledger.
  lo.origin = stored_origin ? *stored_origin : config.ledger.origin;
  if (stored_origin && *stored_origin != config.ledger.origin &&
      config.ledger.origin != Config{}.ledger.origin) {
    return FailedPreconditionError("ledger.origin is \"" + config.ledger.origin +
                                   "\" but the ledger in " + config.data_dir + " has origin \"" +
                                   *stored_origin + "\"");
  }
  lo.max_batch = static_cast<size_t>(config.ledger.batch_size);
  lo.max_delay = std::chrono::microseconds(config.ledger.batch_delay_us);
  Metrics* metrics = &impl->metrics;
  lo.on_batch_committed = [metrics](size_t events, std::chrono::microseconds commit) {
    metrics->ObserveBatch(events, static_cast<double>(commit.count()) / 1e6);
  };
  // Every failed commit (a full disk, say) is counted (custody_errors_total{site="ledger.commit"})
  // and logged with the store's own words; /readyz fails with the reason until a write succeeds.
  lo.on_commit_failed = [errors = impl->errors.get()](const Status& failure) {
    errors->Report("ledger.commit", failure);
  };
  ASSIGN_OR_RETURN(impl->ledger,
                   ledger::Ledger::Open(std::move(stores.ledger), std::move(*ledger_key), lo));
  ledger::Ledger* led = impl->ledger.get();
  impl->recorder = std::make_unique<events::Recorder>(*led);
  impl->metrics.AddGauge("custody_ledger_size", "Leaves in the latest signed checkpoint.",
                         [led] { return static_cast<double>(led->Size()); });

  RouteOptions ro;
  if (config.admin.protect_reads) {
    ro.read_auth =
        http::AuthRequirement::AnyOf({std::string(kRoleAdmin), std::string(kRoleReader)});
  }
  ro.max_events_per_request = static_cast<size_t>(config.ledger.max_events_per_request);
  RETURN_IF_ERROR(AddLedgerRoutes(impl->router, *impl->ledger, ro));
  // [export.ocsf]: committed entries streamed as OCSF records on the sink's own thread
  // (docs/OCSF.md); it reads the ledger's store, never the append path.
  if (const Config::Export::Ocsf& x = config.export_.ocsf; !x.url.empty() || !x.file.empty()) {
    ocsf::SinkOptions so;
    so.url = x.url;
    so.file = x.file;
    so.cursor_file = x.cursor_file.empty()
                         ? (std::filesystem::path(config.data_dir) / "ocsf-export.cursor").string()
                         : x.cursor_file;
    so.ca_file = x.ca_file;
    if (!x.authorization_file.empty()) {
      ASSIGN_OR_RETURN(std::string auth,
                       crypto::ReadSecretFile(x.authorization_file,
                                              "export.ocsf.authorization_file", 16 * 1024));
      while (!auth.empty() && (auth.back() == '\n' || auth.back() == '\r')) auth.pop_back();
      so.authorization = std::move(auth);
    }
    so.max_file_bytes = static_cast<uint64_t>(x.max_file_bytes);
    so.keep_files = static_cast<int>(x.keep_files);
    so.batch = static_cast<size_t>(x.batch);
    so.poll = std::chrono::milliseconds(x.poll_ms);
    so.ocsf.origin = led->origin();
    ASSIGN_OR_RETURN(impl->ocsf_export,
                     ocsf::OcsfSink::Create(
                         std::move(so), led->store(), [led] { return led->Size(); },
                         [errors = impl->errors.get()](const Status& st) {
                           errors->Report("export.ocsf", st);
                         }));
  }
  impl->ledger_stream = std::make_unique<LedgerStreamer>(*impl->ledger);
  RETURN_IF_ERROR(impl->ledger_stream->AddRoute(impl->router, ro.read_auth));
  impl->metrics.AddGauge("custody_ledger_streams", "Open GET /v1/ledger/stream connections.",
                         [streams = impl->ledger_stream.get()] {
                           return static_cast<double>(streams->open_streams());
                         });

  // Identity: every registration, issuance, exchange and revocation is a ledger event, durable
  // before the caller gets its answer. The token endpoint's events go to the ledger's group
  // commit and /oauth2/token answers from the commit (no server thread waits on fsync); a
  // refused token request is answered at once (see TokenServiceOptions::async_sink).
  impl->identity_store = std::move(stores.identity);
  identity::TokenServiceOptions io;
  io.trust_domain = config.trust_domain;
  io.issuer = resolved.identity.issuer;
  io.svid_lifetime_s = config.identity.svid_lifetime_s;
  Impl* self = impl.get();
  // Tells the deployment's other nodes that `topic` changed (no feed: a single node, nothing to
  // do). A notification that cannot be sent is reported; the others' poll still finds the change.
  auto announce = [self](const char* topic, const std::string& payload = "") {
    if (!self->feed) return;
    if (Status st = self->feed->Publish(topic, payload); !st.ok()) {
      self->errors->Report("cluster.announce", st);
    }
  };
  io.shared_store = storage.backend == store::Backend::kPostgres;
  io.on_keys_rotated = [announce] { announce("keys"); };
  io.async_sink = [rec = impl->recorder.get()](const std::string& event,
                                               std::function<void(Status)> done) {
    rec->RecordTextAsync(
        event, [done = std::move(done)](Result<ledger::AppendResult> r) { done(r.status()); });
  };
  if (!config.identity.trusted_issuers_file.empty()) {
    ASSIGN_OR_RETURN(io.trusted_issuers, LoadTrustedIssuers(config.identity.trusted_issuers_file));
  }
  // Nodes starting together on a new database create one signing key between them, not one each.
  RETURN_IF_ERROR(store::WithDeploymentLock(storage, "token-signing-key", [&]() -> Status {
    ASSIGN_OR_RETURN(impl->identity, identity::TokenService::Create(
                                         *impl->identity_store, clock, random, *impl->errors,
                                         [rec = impl->recorder.get()](const std::string& event) {
                                           return rec->RecordText(event).status();
                                         },
                                         std::move(io)));
    return OkStatus();
  }));
  // The authorization code flow of MCP clients: on when [login] names the company IdP
  // (docs/IDENTITY.md, "Authorization code flow").
  {
    std::vector<identity::OAuthClient> clients;
    for (const auto& [id, c] : config.oauth.clients) {
      clients.push_back(identity::OAuthClient{id, c.name, c.redirect_uris, c.agent});
    }
    ASSIGN_OR_RETURN(identity::StaticClientDirectory directory,
                     identity::StaticClientDirectory::Create(std::move(clients)));
    impl->oauth_clients = std::make_unique<identity::StaticClientDirectory>(std::move(directory));
    auto dev_grants = identity::ParseScopes(config.oauth.dev_grants);
    if (!dev_grants.ok()) return dev_grants.status().WithContext("oauth.dev_grants");
    if (!config.login.issuer.empty()) {
      identity::OidcLoginOptions lo;
      lo.issuer = config.login.issuer;
      lo.client_id = config.login.client_id;
      lo.client_secret = config.login.client_secret;
      if (!config.login.private_key_file.empty()) {
        ASSIGN_OR_RETURN(lo.private_key,
                         identity::LoadLoginPrivateKey(config.login.private_key_file));
        lo.private_key_kid = config.login.private_key_kid;
      }
      lo.scopes = config.login.scopes;
      lo.ca_file = config.login.ca_file;
      lo.redirect_uri = resolved.identity.issuer + "/oauth2/login/callback";
      bool plain_http = false;
      RETURN_IF_ERROR(identity::ValidateOidcLoginOptions(lo, &plain_http));
      if (plain_http) {
        log.Log(LogLevel::kWarn,
                "login.issuer is plain http on a loopback host: for development only",
                {{"issuer", std::string_view(config.login.issuer)}});
      }
      impl->login = std::make_unique<identity::OidcLogin>(std::move(lo), clock);
      // A provider that cannot take Custody's client authentication stops start-up; one not
      // reachable yet is retried at the first sign-in.
      if (Status s = impl->login->CheckProvider(); !s.ok()) {
        if (s.code() == StatusCode::kFailedPrecondition) return s.WithContext("[login]");
        log.Log(LogLevel::kWarn, "login provider not usable at start-up; sign-in will retry",
                {{"error", std::string_view(s.message())}});
      }
      identity::AuthorizationServerOptions ao;
      ao.issuer = resolved.identity.issuer;
      ao.resource = resolved.McpAudience();
      ao.dev_unknown_clients = config.oauth.dev_unknown_clients;
      ao.dev_grants = *dev_grants;
      ao.code_lifetime_s = config.oauth.code_lifetime_s;
      ao.refresh_lifetime_s = config.oauth.refresh_token_lifetime_s;
      ao.approver_session_lifetime_s = config.approval.session_ttl_s;
      ao.max_approver_sessions = static_cast<size_t>(config.approval.max_sessions);
      ao.max_in_flight = static_cast<size_t>(config.oauth.max_sign_ins_in_flight);
      ao.max_in_flight_per_source = static_cast<size_t>(config.oauth.max_sign_ins_per_address);
      ao.max_queued_work = static_cast<size_t>(config.oauth.max_waiting_browser_steps);
      ao.refusal_events_per_minute = config.oauth.refusal_events_per_minute;
      identity::ClientDirectory* directory = impl->oauth_clients.get();
      if (config.oauth.dynamic_client_registration) {
        impl->registered_clients = std::make_unique<identity::DynamicClientRegistry>(random);
        impl->all_clients = std::make_unique<identity::FirstFoundClientDirectory>(
            std::vector<identity::ClientDirectory*>{impl->oauth_clients.get(),
                                                    impl->registered_clients.get()});
        directory = impl->all_clients.get();
      }
      if (config.oauth.client_metadata_documents) {
        identity::ClientMetadataOptions mo;
        mo.clock = &clock;
        mo.logger = &log;
        mo.allow_loopback_http = config.oauth.client_metadata_allow_loopback;
        mo.allow_loopback_addresses = config.oauth.client_metadata_allow_loopback;
        impl->client_metadata = std::make_unique<identity::ClientMetadataFetcher>(mo);
        impl->document_clients = std::make_unique<identity::MetadataDocumentClientDirectory>(
            *directory, *impl->client_metadata);
        directory = impl->document_clients.get();
        ao.client_id_metadata_documents = true;
      }
      impl->authorization = std::make_unique<identity::AuthorizationServer>(
          *impl->identity, *impl->identity_store, *directory, impl->login.get(), clock, random,
          *impl->errors,
          [rec = impl->recorder.get()](const std::string& event) {
            return rec->RecordText(event).status();
          },
          std::move(ao));
      impl->authorization->EnableDynamicRegistration(impl->registered_clients.get());
      impl->authorization->EnableClientLogos(impl->client_metadata.get());
      if (config.oauth.dev_unknown_clients) {
        log.Log(LogLevel::kWarn,
                "oauth.dev_unknown_clients is on: unregistered OAuth clients may sign people in "
                "as dev agents; never in production",
                {});
      }
    } else if (!config.oauth.clients.empty() || config.oauth.dev_unknown_clients) {
      log.Log(LogLevel::kWarn,
              "[oauth] is configured but [login] is not: the authorization endpoint is off", {});
    }
  }
  RETURN_IF_ERROR(AddIdentityRoutes(impl->router, *impl->identity, resolved.identity.issuer,
                                    impl->authorization.get()));
  if (impl->authorization) {
    // Who consented to what is personal: the list needs a reader or admin token always.
    RETURN_IF_ERROR(AddOAuthRoutes(
        impl->router, *impl->authorization,
        http::AuthRequirement::AnyOf({std::string(kRoleAdmin), std::string(kRoleReader)})));
  }

  // Attribution: every decision is durable in the ledger before the caller hears it.
  impl->attribution_store = std::move(stores.attribution);
  impl->mcp_pins = std::move(stores.tool_pins);
  attribution::AttributionOptions ao;
  ao.audience = config.attribution.audience;
  ao.on_policy_published = [announce] { announce("policy"); };
  ao.arguments = config.attribution.arguments == "redacted"
                     ? attribution::ArgumentRecording::kRedacted
                     : attribution::ArgumentRecording::kDigest;
  for (size_t pos = 0; pos < config.attribution.redact_fields.size();) {
    size_t comma = config.attribution.redact_fields.find(',', pos);
    if (comma == std::string::npos) comma = config.attribution.redact_fields.size();
    std::string f = config.attribution.redact_fields.substr(pos, comma - pos);
    while (!f.empty() && f.front() == ' ') f.erase(f.begin());
    while (!f.empty() && f.back() == ' ') f.pop_back();
    if (!f.empty()) ao.redact_fields.push_back(f);
    pos = comma + 1;
  }
  // Approvals (docs/APPROVALS.md): links point at this deployment's public URL.
  ao.approvals.ttl = std::chrono::milliseconds(config.approval.ttl_ms);
  ao.approvals.request_ttl = std::chrono::milliseconds(config.approval.request_ttl_ms);
  ao.approvals.single_use = config.approval.single_use;
  ao.approvals.allow_self_approval = config.approval.allow_self_approval;
  ao.approvals.person_type = config.approval.person_type;
  ao.approvals.base_url =
      config.approval.base_url.empty() ? resolved.identity.issuer : config.approval.base_url;
  while (!ao.approvals.base_url.empty() && ao.approvals.base_url.back() == '/')
    ao.approvals.base_url.pop_back();
  const std::string approval_base = ao.approvals.base_url;
  if (!config.approval.webhook.url.empty()) {
    auto secret = attribution::ReadWebhookSecretFile(config.approval.webhook.secret_file);
    if (!secret.ok()) return secret.status().WithContext("approval.webhook.secret_file");
    attribution::WebhookOptions wo;
    wo.url = config.approval.webhook.url;
    wo.secret = std::move(*secret);
    wo.timeout = std::chrono::milliseconds(config.approval.webhook.timeout_ms);
    wo.max_attempts = static_cast<int>(config.approval.webhook.max_attempts);
    wo.allow_loopback_http = true;  // the configuration allows http only to a loopback host
    ASSIGN_OR_RETURN(impl->approval_webhook,
                     attribution::WebhookSender::Create(std::move(wo), clock, *impl->errors));
    // The message id is the approval's, so a receiver drops a duplicate delivery of one request.
    ao.approvals.on_requested = [hook = impl->approval_webhook.get(), approval_base,
                                 &clock](const store::ApprovalRow& row) {
      hook->Send("approval_" + row.id,
                 ApprovalWebhookBody("approval.requested", row, approval_base, clock.Now()));
    };
  }
  // The gateway holds calls for approvals: it hears of their changes (docs/MCP.md, "Approvals").
  auto approval_changes = std::make_shared<mcp::ApprovalChanges>();
  ao.approvals.on_changed = [approval_changes](const auto& row) { approval_changes->Changed(row); };
  ASSIGN_OR_RETURN(impl->attribution, attribution::AttributionService::Create(
                                          *impl->identity, *impl->ledger, *impl->attribution_store,
                                          clock, random, *impl->errors, std::move(ao)));
  AttributionRouteOptions aro;
  aro.read_auth = ro.read_auth;
  aro.base_url = resolved.identity.issuer;
  RETURN_IF_ERROR(AddAttributionRoutes(impl->router, *impl->attribution, aro));
  RETURN_IF_ERROR(
      AddApprovalRoutes(impl->router, *impl->attribution, *impl->tokens,
                        ApprovalRouteOptions{approval_base, impl->authorization.get()}));

  // The console's authenticator exists before the credential routes, which take its session
  // (cookie + CSRF header) too: the console follows a database role back to the human.
  if (config.console.enabled) {
    impl->console_sessions = std::make_unique<ConsoleSessions>(*impl->tokens, clock, random);
    impl->console_auth =
        std::make_unique<ConsoleAuthenticator>(*impl->authenticator, *impl->console_sessions);
  }
  // Just-in-time database credentials (docs/CREDENTIALS.md).
  if (!config.credentials.postgres.empty()) {
    credentials::CredentialOptions co;
    co.audience = config.attribution.audience;
    for (const auto& [name, d] : config.credentials.postgres) {
      const std::string key = "credentials.postgres." + name;
      std::string password;
      if (!d.admin_password_env.empty()) {
        const char* v = std::getenv(d.admin_password_env.c_str());
        if (v == nullptr) {
          return InvalidArgumentError(key + ".admin_password_env names " + d.admin_password_env +
                                      ", which is not set");
        }
        password = v;
      } else if (!d.admin_password_file.empty()) {
        ASSIGN_OR_RETURN(password, crypto::ReadSecretFile(d.admin_password_file,
                                                          key + ".admin_password_file", 4096));
        while (!password.empty() && (password.back() == '\n' || password.back() == '\r'))
          password.pop_back();
      }
      credentials::Database db;
      db.name = name;
      ASSIGN_OR_RETURN(db.connect, credentials::ParseAdminUrl(d.admin_url, key + ".admin_url"));
      db.max_ttl_s = d.max_ttl_s;
      db.connection_limit = d.connection_limit;
      for (const auto& [level, a] : d.access) db.access[level] = {a.grant, a.max_ttl_s};
      db.roles =
          std::make_shared<credentials::PgRoleManager>(d.admin_url, std::move(password), name);
      co.databases.push_back(std::move(db));
    }
    ASSIGN_OR_RETURN(impl->credential_store, store::OpenCredentialStore(storage));
    ASSIGN_OR_RETURN(impl->credentials,
                     credentials::CredentialService::Create(
                         *impl->identity, *impl->attribution, *impl->credential_store,
                         *impl->recorder, clock, random, *impl->errors, std::move(co)));
    http::Authenticator& cred_auth = impl->console_auth
                                         ? static_cast<http::Authenticator&>(*impl->console_auth)
                                         : static_cast<http::Authenticator&>(*impl->authenticator);
    RETURN_IF_ERROR(AddCredentialRoutes(impl->router, *impl->credentials, cred_auth));
    impl->metrics.AddGauge(
        "custody_credential_revocations_pending",
        "Credential revocations begun and not yet completed (retried).",
        [c = impl->credentials.get()] { return static_cast<double>(c->PendingRevocations()); });
    ro.degraded = [c = impl->credentials.get()]() -> std::vector<std::string> {
      int64_t n = c->PendingRevocations();
      if (n == 0) return {};
      return {std::to_string(n) + " credential revocation(s) pending"};
    };
  }

  // The MCP gateway: /mcp/{server} for the configured stdio servers, every tools/call
  // authorized and recorded by attribution (docs/MCP.md). Upstreams start with the server.
  {
    std::vector<mcp::UpstreamConfig> servers;
    for (const auto& [name, s] : config.mcp.servers) {
      servers.push_back(mcp::UpstreamConfig{name, s.command, s.args, s.env, s.url, s.headers,
                                            s.ca_file, s.protocol, s.identity, s.txn_audience});
    }
    mcp::GatewayOptions go;
    go.audience = resolved.McpAudience();
    go.issuer = resolved.identity.issuer;
    go.tls = !config.tls.cert.empty();
    for (size_t pos = 0; pos < config.mcp.allowed_origins.size();) {
      size_t comma = config.mcp.allowed_origins.find(',', pos);
      if (comma == std::string::npos) comma = config.mcp.allowed_origins.size();
      std::string o = config.mcp.allowed_origins.substr(pos, comma - pos);
      std::erase(o, ' ');
      if (!o.empty()) go.allowed_origins.push_back(o);
      pos = comma + 1;
    }
    go.max_message_bytes = static_cast<size_t>(config.mcp.max_message_bytes);
    go.upstream.request_timeout = std::chrono::milliseconds(config.mcp.request_timeout_ms);
    go.await_outcome = config.mcp.await_outcome;
    go.session_idle_timeout = std::chrono::milliseconds(config.mcp.session_idle_timeout_ms);
    go.max_sessions_per_custody_session =
        static_cast<size_t>(config.mcp.max_sessions_per_custody_session);
    go.upstream.log = &log;
    go.upstream.errors = impl->errors.get();
    go.approval_hold = std::chrono::milliseconds(config.approval.hold_ms);
    go.approval_changes = approval_changes;
    ASSIGN_OR_RETURN(impl->mcp,
                     mcp::Gateway::Create(
                         std::move(servers), *impl->identity, *impl->attribution, *impl->mcp_pins,
                         [rec = impl->recorder.get()](const std::string& event) {
                           return rec->RecordText(event).status();
                         },
                         clock, random, std::move(go)));
    RETURN_IF_ERROR(impl->mcp->AddRoutes(impl->router, ro.read_auth));
  }
  RETURN_IF_ERROR(AddInvestigationRoutes(
      impl->router, *impl->identity, *impl->ledger, *impl->attribution, clock,
      impl->credentials ? impl->credentials->AccessLevels()
                        : std::map<std::string, std::vector<std::string>>{}));
  {
    // OTLP ingest, POST /v1/traces (docs/OTLP.md).
    ingest::IngestOptions io;
    io.max_body_bytes = static_cast<size_t>(config.ingest.max_body_bytes);
    io.limits.max_inflated_bytes = static_cast<size_t>(config.ingest.max_inflated_bytes);
    io.limits.max_spans = static_cast<size_t>(config.ingest.max_spans_per_request);
    io.spans_per_second = static_cast<double>(config.ingest.spans_per_second);
    // A request of the largest size must be able to pass.
    io.burst_spans = static_cast<double>(
        std::max(config.ingest.burst_spans, config.ingest.max_spans_per_request));
    impl->ingest = std::make_unique<ingest::IngestService>(*impl->identity, *impl->attribution,
                                                           *impl->recorder, clock, random, io);
    RETURN_IF_ERROR(AddIngestRoutes(impl->router, *impl->ingest, *impl->identity,
                                    *impl->authenticator, clock,
                                    IngestRouteOptions{config.attribution.audience}));
  }
  // The web console (docs/CONSOLE.md): a reader or admin token becomes a session cookie that
  // counts only with its CSRF header.
  if (config.console.enabled) {
    ConsoleRouteOptions cro{config.TlsEnabled(), config.login.issuer};
    cro.sign_in = impl->authorization.get();  // null without [login]
    cro.admin_groups = config.console.idp_roles.admin_groups;
    cro.reader_groups = config.console.idp_roles.reader_groups;
    RETURN_IF_ERROR(
        AddConsoleRoutes(impl->router, *impl->authenticator, *impl->console_sessions, cro));
    impl->metrics.AddGauge("custody_console_sessions", "Console sessions held by this node.",
                           [sessions = impl->console_sessions.get()] {
                             return static_cast<double>(sessions->size());
                           });
  }

  // Several nodes, one deployment (docs/DEPLOYMENT.md): each node's revocations reach the
  // others' listeners (the MCP sessions, streams and calls they hold) at once, policy sets and
  // signing keys follow within a notification, or the next poll if it was lost. Every request
  // checks revocation in the database itself, so the feed only speeds up what is already true.
  if (storage.backend == store::Backend::kPostgres) {
    ASSIGN_OR_RETURN(auto feed, store::PgChangeFeed::Open(storage.postgres_url, {}));
    impl->feed = std::move(feed);
    impl->feed_listener =
        impl->identity->AddRevocationListener([announce](const std::vector<std::string>& sids) {
          std::string payload;
          for (const std::string& sid : sids) {
            if (payload.size() + sid.size() + 1 > store::ChangeFeed::kMaxPayload) {
              announce("revoked", payload);
              payload.clear();
            }
            payload += (payload.empty() ? "" : " ") + sid;
          }
          if (!payload.empty()) announce("revoked", payload);
        });
    // The other nodes' changes, applied here.
    auto on_change = [self](const std::string& topic, const std::string& payload) {
      if (topic == "revoked") {
        self->identity->RevokedElsewhere(SplitSpaces(payload), self->feed_listener);
      } else if (topic == "policy") {
        if (auto r = self->attribution->ReloadPolicies(); !r.ok()) {
          self->errors->Report("cluster.policy_reload", r.status());
        }
      } else if (topic == "keys") {
        if (Status st = self->identity->RefreshKeys(); !st.ok()) {
          self->errors->Report("cluster.key_refresh", st);
        }
      }
    };
    impl->feed->Start(on_change, [on_change] {
      on_change("policy", "");
      on_change("keys", "");
    });
  }
  Impl* raw = impl.get();
  RETURN_IF_ERROR(AddOpsRoutes(
      impl->router, impl->metrics,
      [raw]() -> Status {
        RETURN_IF_ERROR(raw->ledger->CommitHealth());
        RETURN_IF_ERROR(raw->tokens->CheckWritable().WithContext("token store"));
        RETURN_IF_ERROR(raw->ledger->store().LeafCount().status().WithContext("ledger store"));
        if (::access(raw->config.data_dir.c_str(), W_OK) != 0) {
          return UnavailableError("data directory is not writable");
        }
        if (raw->ledger->VerifierKey().empty()) return UnavailableError("no ledger key loaded");
        RETURN_IF_ERROR(raw->attribution->IndexHealth());
        return OkStatus();
      },
      ro));

  http::ServerOptions so;
  so.host = hp.host;
  so.port = hp.port;
  so.threads = static_cast<int>(config.worker_threads);
  if (so.threads == 0 && storage.backend == store::Backend::kPostgres) {
    // A request waits on its worker for the database's round trips (the session read, the
    // call's count), so by default four workers per hardware thread keep the CPUs busy
    // meanwhile; on SQLite those reads are local and one per hardware thread is enough.
    so.threads = 4 * std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  }
  so.max_body_bytes = static_cast<size_t>(config.limits.max_body_bytes);
  so.max_header_bytes = static_cast<size_t>(config.limits.max_header_bytes);
  so.header_timeout = std::chrono::milliseconds(config.limits.header_timeout_ms);
  so.body_timeout = std::chrono::milliseconds(config.limits.body_timeout_ms);
  so.write_timeout = std::chrono::milliseconds(config.limits.write_timeout_ms);
  so.shutdown_timeout = std::chrono::milliseconds(config.limits.shutdown_timeout_ms);
  so.tls_cert_file = config.tls.cert;
  so.tls_key_file = config.tls.key;
  Logger* logger = &log;
  auto observer = [metrics, logger](const http::RequestRecord& r) {
    double seconds = static_cast<double>(r.latency.count()) / 1e6;
    metrics->ObserveRequest(r.method, r.route, r.status, seconds);
    if (logger->Enabled(LogLevel::kInfo)) {
      logger->Log(LogLevel::kInfo, "request",
                  {{"method", r.method},
                   {"route", r.route},
                   {"status", static_cast<int64_t>(r.status)},
                   {"latency_ms", seconds * 1000},
                   {"request_id", r.request_id},
                   {"remote", r.remote},
                   {"token_id", r.principal},
                   {"bytes_in", static_cast<int64_t>(r.request_bytes)},
                   {"bytes_out", static_cast<int64_t>(r.response_bytes)}});
    }
  };
  http::Authenticator* auth = impl->console_auth
                                  ? static_cast<http::Authenticator*>(impl->console_auth.get())
                                  : impl->authenticator.get();
  impl->server = std::make_unique<http::Server>(so, impl->router, auth, observer, clock, random);
  return std::unique_ptr<Service>(new Service(std::move(impl)));
}

Status Service::Start() {
  // The MCP upstreams first (their handshakes, at most upstream_ready_wait): the port opens
  // once a client's initialize can say what each server has, not tools alone.
  if (impl_->mcp) impl_->mcp->Start();
  if (impl_->ocsf_export) impl_->ocsf_export->Start();
  Status started = impl_->server->Start();
  impl_->ReleasePort();  // the server holds it now (or failed to, and says so)
  return started;
}

void Service::Shutdown() {
  if (!impl_ || impl_->shut_down) return;
  impl_->shut_down = true;
  if (impl_->feed) impl_->feed->Stop();  // no peer change is applied while shutting down
  impl_->ReleasePort();
  impl_->ledger_stream->Stop();  // ends the event streams, so the server's drain is not held up
  impl_->server->Shutdown();
  // Sign-ins still being answered finish (they record events) before the ledger closes.
  if (impl_->authorization) impl_->authorization->Stop();
  if (impl_->mcp) impl_->mcp->Stop();  // before the ledger closes: outcomes are recorded
  if (impl_->ocsf_export) impl_->ocsf_export->Stop();
  impl_->credentials.reset();  // its loop records revocations: before the ledger closes
  impl_->ledger->Close();
  impl_->attribution->FlushIndex();
}

uint16_t Service::port() const { return impl_->server->port(); }
bool Service::tls() const { return impl_->server->tls(); }
const std::string& Service::issuer() const { return impl_->config.identity.issuer; }
int Service::threads() const { return impl_->server->threads(); }
std::string Service::VerifierKey() const { return impl_->ledger->VerifierKey(); }
const std::optional<IssuedToken>& Service::bootstrap_token() const { return impl_->bootstrap; }

}  // namespace custody::api
