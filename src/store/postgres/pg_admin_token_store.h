// PgAdminTokenStore: AdminTokenStore in PostgreSQL (storage.backend = "postgres"), shared by every
// node of a deployment, so a token revoked through one node is refused by all at their next
// request.
//
// Layout (component "admin_tokens", version 1):
//   admin_tokens(id TEXT PRIMARY KEY, hash BYTEA, role TEXT, label TEXT,
//                created_ms BIGINT, revoked_ms BIGINT NULL)
// Thread-safe (PgDb's pool).
#pragma once

#include <memory>
#include <string>

#include "store/admin_token_store.h"
#include "store/postgres/pg_db.h"

namespace custody::store {

class PgAdminTokenStore final : public AdminTokenStore {
 public:
  // Connects and brings the schema up to date.
  static Result<std::unique_ptr<PgAdminTokenStore>> Open(const std::string& url,
                                                         PgOptions options = {});
  ~PgAdminTokenStore() override;

  Status Insert(const AdminTokenRecord& record) override;
  Result<std::optional<AdminTokenRecord>> Get(std::string_view id) override;
  Result<std::vector<AdminTokenRecord>> List() override;
  Status Revoke(std::string_view id, int64_t at_unix_ms) override;
  // A write transaction (a row lock on the table's schema row) that changes nothing.
  Status CheckWritable() override;

 private:
  explicit PgAdminTokenStore(std::unique_ptr<PgDb> db) : db_(std::move(db)) {}
  std::unique_ptr<PgDb> db_;
};

}  // namespace custody::store
