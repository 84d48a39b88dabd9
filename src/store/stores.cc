#include "store/stores.h"

#include <sqlite3.h>

#include <filesystem>
#include <optional>

#include "store/memory/memory_admin_token_store.h"
#include "store/memory/memory_attribution_store.h"
#include "store/memory/memory_credential_store.h"
#include "store/memory/memory_identity_store.h"
#include "store/memory/memory_ledger_store.h"
#include "store/memory/memory_tool_pin_store.h"
#include "store/postgres/pg_admin_token_store.h"
#include "store/postgres/pg_attribution_store.h"
#include "store/postgres/pg_credential_store.h"
#include "store/postgres/pg_identity_store.h"
#include "store/postgres/pg_ledger_store.h"
#include "store/postgres/pg_schema.h"
#include "store/postgres/pg_tool_pin_store.h"
#include "store/session_read_and_count.h"
#include "store/sqlite/sqlite_admin_token_store.h"
#include "store/sqlite/sqlite_attribution_store.h"
#include "store/sqlite/sqlite_credential_store.h"
#include "store/sqlite/sqlite_identity_store.h"
#include "store/sqlite/sqlite_ledger_store.h"
#include "store/sqlite/sqlite_schema.h"
#include "store/sqlite/sqlite_tool_pin_store.h"

namespace custody::store {
namespace {

PgOptions Pool(const StorageOptions& options) {
  PgOptions o;
  o.pool_size = options.postgres_pool_size;
  o.apply_schema_steps = options.migrate;
  o.prepare_statements = options.postgres_prepared_statements;
  return o;
}

// Connections of its own for a short look at the database (versions, a lock): two, so that a
// look can be taken while the other holds a lock.
Result<std::unique_ptr<PgDb>> OpenPgDb(const StorageOptions& options) {
  PgOptions o;
  o.pool_size = 2;
  return PgDb::Open(options.postgres_url, o);
}

// The SQLite file of each store, by the name its component has in reports.
std::vector<std::pair<std::string, std::string>> SqliteFiles(const StorageOptions& o) {
  return {{"admin_tokens", o.admin_token_path},
          {"ledger", o.ledger_path},
          {"identity", o.identity_path},
          {"attribution", o.attribution_path},
          {"mcp_pins", o.tool_pin_path}};
}

Result<int64_t> SqliteFileVersion(const std::string& component, const std::string& path) {
  if (!std::filesystem::exists(path)) return 0;
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr);
  if (rc != SQLITE_OK) {
    sqlite3_close(db);
    return UnavailableError("cannot open the " + component + " database " +
                            std::filesystem::path(path).filename().string());
  }
  Result<int64_t> v = SchemaVersion(db, component + " database");
  sqlite3_close(db);
  return v;
}

// The PostgreSQL store of each interface, as the interface.
template <typename Interface, typename Pg, typename... Args>
Result<std::unique_ptr<Interface>> OpenPg(const StorageOptions& options, Args&&... args) {
  ASSIGN_OR_RETURN(auto s,
                   Pg::Open(options.postgres_url, std::forward<Args>(args)..., Pool(options)));
  return std::unique_ptr<Interface>(std::move(s));
}

}  // namespace

StorageOptions StorageOptions::InDirectory(const std::string& dir) {
  StorageOptions o;
  o.ledger_path = dir + "/ledger.db";
  o.identity_path = dir + "/identity.db";
  o.attribution_path = dir + "/attribution.db";
  o.admin_token_path = dir + "/custody.db";
  o.tool_pin_path = dir + "/mcp.db";
  o.credential_path = dir + "/credentials.db";
  return o;
}

Result<std::unique_ptr<LedgerStore>> OpenLedgerStore(const StorageOptions& options,
                                                     const LedgerOpenOptions& open) {
  if (options.backend == Backend::kMemory) {
    return std::unique_ptr<LedgerStore>(std::make_unique<MemoryLedgerStore>());
  }
  if (options.backend == Backend::kPostgres) {
    PgLedgerStore::OpenOptions o;
    o.read_only = open.read_only;
    return OpenPg<LedgerStore, PgLedgerStore>(options, o);
  }
  SqliteLedgerStore::Options o;
  o.read_only = open.read_only;
  o.create_if_missing = open.create_if_missing;
  ASSIGN_OR_RETURN(auto s, SqliteLedgerStore::Open(options.ledger_path, o));
  return std::unique_ptr<LedgerStore>(std::move(s));
}

Result<std::unique_ptr<LedgerStore>> OpenLedgerFile(const std::string& path,
                                                    const LedgerOpenOptions& open) {
  StorageOptions o;
  o.ledger_path = path;
  return OpenLedgerStore(o, open);
}

Result<std::unique_ptr<IdentityStore>> OpenIdentityStore(const StorageOptions& options) {
  if (options.backend == Backend::kMemory) {
    return std::unique_ptr<IdentityStore>(std::make_unique<MemoryIdentityStore>());
  }
  if (options.backend == Backend::kPostgres) {
    return OpenPg<IdentityStore, PgIdentityStore>(options, options.key_encryption_key,
                                                  options.random);
  }
  ASSIGN_OR_RETURN(auto s, SqliteIdentityStore::Open(options.identity_path));
  return std::unique_ptr<IdentityStore>(std::move(s));
}

Result<std::unique_ptr<AttributionStore>> OpenAttributionStore(const StorageOptions& options) {
  if (options.backend == Backend::kMemory) {
    return std::unique_ptr<AttributionStore>(std::make_unique<MemoryAttributionStore>());
  }
  if (options.backend == Backend::kPostgres)
    return OpenPg<AttributionStore, PgAttributionStore>(options);
  ASSIGN_OR_RETURN(auto s, SqliteAttributionStore::Open(options.attribution_path));
  return std::unique_ptr<AttributionStore>(std::move(s));
}

Result<std::unique_ptr<ToolPinStore>> OpenToolPinStore(const StorageOptions& options) {
  if (options.backend == Backend::kMemory) {
    return std::unique_ptr<ToolPinStore>(std::make_unique<MemoryToolPinStore>());
  }
  if (options.backend == Backend::kPostgres) return OpenPg<ToolPinStore, PgToolPinStore>(options);
  ASSIGN_OR_RETURN(auto s, SqliteToolPinStore::Open(options.tool_pin_path));
  return std::unique_ptr<ToolPinStore>(std::move(s));
}

Result<std::unique_ptr<CredentialStore>> OpenCredentialStore(const StorageOptions& options) {
  if (options.backend == Backend::kMemory) {
    return std::unique_ptr<CredentialStore>(std::make_unique<MemoryCredentialStore>());
  }
  if (options.backend == Backend::kPostgres) {
    StorageOptions o = options;
    if (!o.migrate) {
      // A component no node has created yet has no older layout to refuse: it is created (only
      // a server with [credentials.*] configured has one).
      ASSIGN_OR_RETURN(auto db, OpenPgDb(options));
      ASSIGN_OR_RETURN(int64_t version, PgSchemaVersion(*db, "credentials"));
      o.migrate = version == 0;
    }
    return OpenPg<CredentialStore, PgCredentialStore>(o);
  }
  ASSIGN_OR_RETURN(auto s, SqliteCredentialStore::Open(options.credential_path));
  return std::unique_ptr<CredentialStore>(std::move(s));
}

Result<std::unique_ptr<AdminTokenStore>> OpenAdminTokenStore(const StorageOptions& options,
                                                             bool create_if_missing) {
  if (options.backend == Backend::kMemory) {
    return std::unique_ptr<AdminTokenStore>(std::make_unique<MemoryAdminTokenStore>());
  }
  if (options.backend == Backend::kPostgres)
    return OpenPg<AdminTokenStore, PgAdminTokenStore>(options);
  ASSIGN_OR_RETURN(auto s,
                   SqliteAdminTokenStore::Open(options.admin_token_path, create_if_missing));
  return std::unique_ptr<AdminTokenStore>(std::move(s));
}

namespace {

Result<Stores> OpenEach(const StorageOptions& options) {
  Stores s;
  ASSIGN_OR_RETURN(s.admin_tokens, OpenAdminTokenStore(options));
  ASSIGN_OR_RETURN(s.ledger, OpenLedgerStore(options));
  ASSIGN_OR_RETURN(s.identity, OpenIdentityStore(options));
  ASSIGN_OR_RETURN(s.attribution, OpenAttributionStore(options));
  ASSIGN_OR_RETURN(s.tool_pins, OpenToolPinStore(options));
  return s;
}

}  // namespace

Result<Stores> OpenStores(const StorageOptions& options) {
  if (options.backend != Backend::kPostgres || options.migrate) return OpenEach(options);
  // A database no Custody has opened has no schema to be older than: the first node creates
  // it. Under a deployment lock, so that a node starting meanwhile sees all of it or none (a
  // part would look like an older schema and be refused).
  ASSIGN_OR_RETURN(auto db, OpenPgDb(options));
  std::optional<Stores> stores;
  RETURN_IF_ERROR(WithPgAdvisoryLock(*db, "schema", [&]() -> Status {
    ASSIGN_OR_RETURN(std::vector<PgSchemaRow> versions, PgSchemaVersions(*db));
    StorageOptions o = options;
    o.migrate = versions.empty();
    ASSIGN_OR_RETURN(stores, OpenEach(o));
    return OkStatus();
  }));
  return std::move(*stores);
}

Result<std::vector<ComponentVersion>> ReadSchemaVersions(const StorageOptions& options) {
  std::vector<ComponentVersion> out;
  if (options.backend == Backend::kPostgres) {
    ASSIGN_OR_RETURN(auto db, OpenPgDb(options));
    ASSIGN_OR_RETURN(std::vector<PgSchemaRow> rows, PgSchemaVersions(*db));
    for (auto& r : rows) out.push_back(ComponentVersion{std::move(r.component), r.version});
    return out;
  }
  if (options.backend == Backend::kMemory) return out;
  for (const auto& [component, path] : SqliteFiles(options)) {
    ASSIGN_OR_RETURN(int64_t v, SqliteFileVersion(component, path));
    out.push_back(ComponentVersion{component, v});
  }
  return out;
}

Status MigrateStores(StorageOptions options) {
  options.migrate = true;
  // Only schemas: the identity store is opened without a key encryption key, which wraps keys
  // on write and checks them on read, neither of which opening does.
  options.key_encryption_key = nullptr;
  ASSIGN_OR_RETURN(Stores stores, OpenStores(options));
  // The credential leases are not among OpenStores (a server without [credentials.*] has none):
  // their schema is brought up to date where it exists, and created by the server that needs it.
  if (options.backend == Backend::kPostgres) {
    ASSIGN_OR_RETURN(auto db, OpenPgDb(options));
    ASSIGN_OR_RETURN(int64_t version, PgSchemaVersion(*db, "credentials"));
    if (version > 0) RETURN_IF_ERROR(OpenCredentialStore(options).status());
  }
  return OkStatus();
}

Status WithDeploymentLock(const StorageOptions& options, std::string_view name,
                          const std::function<Status()>& fn) {
  if (options.backend != Backend::kPostgres) return fn();
  ASSIGN_OR_RETURN(auto db, OpenPgDb(options));
  return WithPgAdvisoryLock(*db, name, fn);
}

// --- SessionReadAndCount (store/session_read_and_count.h)

namespace {

// The two calls, one after the other.
class SeparateReadAndCount final : public SessionReadAndCount {
 public:
  SeparateReadAndCount(IdentityStore& identity, AttributionStore& attribution)
      : identity_(identity), attribution_(attribution) {}
  Result<CountedSessionRead> ReadAndCount(const std::string& sid, const std::string& jti,
                                          const CallToCount& call) override {
    CountedSessionRead out;
    ASSIGN_OR_RETURN(out.read, identity_.GetSessionForToken(sid, jti));
    if (CountsCall(out.read, jti, call)) {
      ASSIGN_OR_RETURN(out.counts,
                       attribution_.CountCall(sid, call.target, call.time_ms, call.since_ms));
    }
    return out;
  }

 private:
  IdentityStore& identity_;
  AttributionStore& attribution_;
};

// One statement on the identity store's connections, which reach the attribution store's
// counters too (one database).
class PgReadAndCount final : public SessionReadAndCount {
 public:
  explicit PgReadAndCount(PgIdentityStore& identity) : identity_(identity) {}
  Result<CountedSessionRead> ReadAndCount(const std::string& sid, const std::string& jti,
                                          const CallToCount& call) override {
    return identity_.GetSessionForTokenAndCountCall(sid, jti, call);
  }

 private:
  PgIdentityStore& identity_;
};

}  // namespace

std::unique_ptr<SessionReadAndCount> SessionReadAndCountOf(IdentityStore& identity,
                                                           AttributionStore& attribution) {
  auto* pg_identity = dynamic_cast<PgIdentityStore*>(&identity);
  auto* pg_attribution = dynamic_cast<PgAttributionStore*>(&attribution);
  if (pg_identity != nullptr && pg_attribution != nullptr &&
      pg_identity->where() == pg_attribution->where()) {
    return std::make_unique<PgReadAndCount>(*pg_identity);
  }
  return std::make_unique<SeparateReadAndCount>(identity, attribution);
}

}  // namespace custody::store
