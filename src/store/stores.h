// The one factory that opens Custody's stores, and the only code outside store/<backend>/ that
// names a backend. `custody serve` opens them all (OpenStores); a command that touches one file
// opens just that store (`custody ledger` the ledger, `custody admin token` the token store).
// SQLite files by default; kPostgres one PostgreSQL database; kMemory gives fresh, empty
// in-memory stores for unit tests.
//
// What each store keeps, and how durably, is the store's own business (the ledger fsyncs every
// commit; the attribution index is derived and synchronous=NORMAL): that is not an option here.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/random.h"
#include "common/status.h"
#include "crypto/key_wrap.h"
#include "store/admin_token_store.h"
#include "store/attribution_store.h"
#include "store/credential_store.h"
#include "store/identity_store.h"
#include "store/ledger_store.h"
#include "store/tool_pin_store.h"

namespace custody::store {

enum class Backend {
  kSqlite,    // one SQLite file per store, at the paths below
  kMemory,    // in memory: empty when opened, gone when closed (tests)
  kPostgres,  // one PostgreSQL database for every store (store/postgres/), at postgres_url
};

struct StorageOptions {
  Backend backend = Backend::kSqlite;
  // SQLite: the file of each store (created mode 0600 when missing). Empty paths are not
  // needed by kMemory.
  std::string ledger_path;
  std::string identity_path;
  std::string attribution_path;
  std::string admin_token_path;
  std::string tool_pin_path;
  std::string credential_path;  // credentials.db: the just-in-time credential leases
  // PostgreSQL: a postgresql:// URL (its password never appears in errors or logs) and the
  // connections each store may hold.
  std::string postgres_url;
  size_t postgres_pool_size = 4;
  bool postgres_prepared_statements = true;  // PgOptions::prepare_statements
  // PostgreSQL: wraps the token signing keys' private parts (crypto/key_wrap.h), with `random`
  // for the nonces. `custody serve` always sets it on PostgreSQL (api::Service); without it the
  // keys are stored as PEM (tests, benchmarks), and with it a key stored unwrapped is refused.
  std::shared_ptr<const crypto::KeyEncryptionKey> key_encryption_key;
  Random* random = nullptr;
  // Brings an older schema to this binary's version. false (`custody serve` on PostgreSQL
  // without --migrate): an older schema is refused, naming `custody migrate`; a database no
  // Custody has opened yet is still created. SQLite files always migrate (one node per file).
  bool migrate = true;

  // The files of a data directory: ledger.db, identity.db, attribution.db, custody.db, mcp.db,
  // credentials.db.
  static StorageOptions InDirectory(const std::string& dir);
  static StorageOptions InMemory() {
    StorageOptions o;
    o.backend = Backend::kMemory;
    return o;
  }
};

// Every store the server runs on.
struct Stores {
  std::unique_ptr<AdminTokenStore> admin_tokens;
  std::unique_ptr<LedgerStore> ledger;
  std::unique_ptr<IdentityStore> identity;
  std::unique_ptr<AttributionStore> attribution;
  std::unique_ptr<ToolPinStore> tool_pins;
};

// Opens every store, in the order above (an error names the store that failed; the stores
// opened before it are closed again).
Result<Stores> OpenStores(const StorageOptions& options);

// One component's schema version: a SQLite file's user_version, a PostgreSQL custody_schema row.
struct ComponentVersion {
  std::string component;  // "ledger", "identity", … (SQLite: the file's name)
  int64_t version = 0;    // 0: none yet
};
// The versions as they are, without writing anything (a missing file or table is version 0).
Result<std::vector<ComponentVersion>> ReadSchemaVersions(const StorageOptions& options);
// `custody migrate`: opens every store once with migrate on (which applies the missing steps,
// or refuses a newer schema) and closes it again. Needs no key encryption key.
Status MigrateStores(StorageOptions options);

// Runs `fn` while no other node of the deployment runs a function under the same `name`
// (PostgreSQL: an advisory lock). SQLite and memory: a single node, `fn` just runs. For what
// several nodes starting at once must do exactly once, such as creating the ledger key.
Status WithDeploymentLock(const StorageOptions& options, std::string_view name,
                          const std::function<Status()>& fn);

struct LedgerOpenOptions {
  // Never writes (not even a migration): `custody ledger verify`, readers of a live ledger.
  bool read_only = false;
  // A missing ledger is created; otherwise NotFound.
  bool create_if_missing = true;
};
Result<std::unique_ptr<LedgerStore>> OpenLedgerStore(const StorageOptions& options,
                                                     const LedgerOpenOptions& open = {});
// The SQLite ledger file at `path` alone (the `custody ledger --db` commands, tests and tools
// that read a ledger file).
Result<std::unique_ptr<LedgerStore>> OpenLedgerFile(const std::string& path,
                                                    const LedgerOpenOptions& open = {});
Result<std::unique_ptr<IdentityStore>> OpenIdentityStore(const StorageOptions& options);
Result<std::unique_ptr<AttributionStore>> OpenAttributionStore(const StorageOptions& options);
Result<std::unique_ptr<ToolPinStore>> OpenToolPinStore(const StorageOptions& options);
// The just-in-time credential leases (credentials/). Not one of OpenStores: only a server with
// [credentials.*] configured opens it. On PostgreSQL without `migrate` a missing component is
// created all the same (nothing older to refuse); `custody migrate` upgrades it once it exists.
Result<std::unique_ptr<CredentialStore>> OpenCredentialStore(const StorageOptions& options);
// `create_if_missing` false: a missing token database is NotFound.
Result<std::unique_ptr<AdminTokenStore>> OpenAdminTokenStore(const StorageOptions& options,
                                                             bool create_if_missing = true);

}  // namespace custody::store
