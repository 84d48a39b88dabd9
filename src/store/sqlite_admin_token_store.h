// SqliteAdminTokenStore: AdminTokenStore in a SQLite file (by default <data_dir>/custody.db),
// WAL mode with a busy timeout so a CLI process and the server can use it together.
//
// Layout (schema_version 1):
//   admin_tokens(id TEXT PRIMARY KEY, hash BLOB(32), role TEXT, label TEXT,
//                created_ms INTEGER, revoked_ms INTEGER NULL)
// Thread-safe: one connection guarded by a mutex.
#pragma once

#include <memory>
#include <string>

#include "common/mutex.h"
#include "store/admin_token_store.h"

struct sqlite3;

namespace custody::store {

class SqliteAdminTokenStore final : public AdminTokenStore {
 public:
  // Creates the file (mode 0600) and schema when `create_if_missing`; else NotFound.
  static Result<std::unique_ptr<SqliteAdminTokenStore>> Open(const std::string& path,
                                                             bool create_if_missing = true);
  ~SqliteAdminTokenStore() override;

  Status Insert(const AdminTokenRecord& record) override;
  Result<std::optional<AdminTokenRecord>> Get(std::string_view id) override;
  Result<std::vector<AdminTokenRecord>> List() override;
  Status Revoke(std::string_view id, int64_t at_unix_ms) override;
  // For readiness checks: a write transaction that changes nothing.
  Status CheckWritable();

 private:
  explicit SqliteAdminTokenStore(sqlite3* db) : db_(db) {}
  Status Exec(const char* sql) REQUIRES(mu_);
  Status Error(const char* what) REQUIRES(mu_);

  Mutex mu_;
  sqlite3* db_ GUARDED_BY(mu_);
};

}  // namespace custody::store
