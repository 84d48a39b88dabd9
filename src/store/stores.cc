#include "store/stores.h"

#include "store/memory/memory_admin_token_store.h"
#include "store/memory/memory_attribution_store.h"
#include "store/memory/memory_identity_store.h"
#include "store/memory/memory_ledger_store.h"
#include "store/memory/memory_tool_pin_store.h"
#include "store/postgres/pg_admin_token_store.h"
#include "store/postgres/pg_attribution_store.h"
#include "store/postgres/pg_identity_store.h"
#include "store/postgres/pg_ledger_store.h"
#include "store/postgres/pg_tool_pin_store.h"
#include "store/sqlite/sqlite_admin_token_store.h"
#include "store/sqlite/sqlite_attribution_store.h"
#include "store/sqlite/sqlite_identity_store.h"
#include "store/sqlite/sqlite_ledger_store.h"
#include "store/sqlite/sqlite_tool_pin_store.h"

namespace custody::store {
namespace {

PgOptions Pool(const StorageOptions& options) {
  PgOptions o;
  o.pool_size = options.postgres_pool_size;
  return o;
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
  if (options.backend == Backend::kPostgres) return OpenPg<IdentityStore, PgIdentityStore>(options);
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

Result<Stores> OpenStores(const StorageOptions& options) {
  Stores s;
  ASSIGN_OR_RETURN(s.admin_tokens, OpenAdminTokenStore(options));
  ASSIGN_OR_RETURN(s.ledger, OpenLedgerStore(options));
  ASSIGN_OR_RETURN(s.identity, OpenIdentityStore(options));
  ASSIGN_OR_RETURN(s.attribution, OpenAttributionStore(options));
  ASSIGN_OR_RETURN(s.tool_pins, OpenToolPinStore(options));
  return s;
}

}  // namespace custody::store
