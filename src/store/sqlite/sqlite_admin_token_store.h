// SqliteAdminTokenStore: AdminTokenStore in a SQLite file (by default <data_dir>/custody.db),
// WAL mode with a busy timeout so a CLI process and the server can use it together.
//
// Layout (schema_version 1):
//   admin_tokens(id TEXT PRIMARY KEY, hash BLOB(32), role TEXT, label TEXT,
//                created_ms INTEGER, revoked_ms INTEGER NULL)
// Not exclusively locked: the server and `custody admin token` commands share the file.
// Thread-safe: one connection guarded by a mutex.
#pragma once

#include <memory>
#include <string>

#include "common/mutex.h"
#include "store/admin_token_store.h"
#include "store/sqlite/sqlite_db.h"

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
  // A write transaction that changes nothing.
  Status CheckWritable() override;

 private:
  explicit SqliteAdminTokenStore(std::unique_ptr<SqliteDb> db) : db_(std::move(db)) {}

  Mutex mu_;
  std::unique_ptr<SqliteDb> db_ PT_GUARDED_BY(mu_);
};

}  // namespace custody::store
