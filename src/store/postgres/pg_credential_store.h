// PgCredentialStore: CredentialStore in PostgreSQL (component "credentials", version 1), shared
// by the nodes of a deployment: a lease issued through one node is revoked by whichever node
// sees its expiry or its session's containment first (the state changes are compare-and-set on
// the row). Thread-safe (PgDb's pool).
#pragma once

#include <memory>
#include <string>

#include "store/credential_store.h"
#include "store/postgres/pg_db.h"

namespace custody::store {

class PgCredentialStore final : public CredentialStore {
 public:
  static Result<std::unique_ptr<PgCredentialStore>> Open(const std::string& url,
                                                         PgOptions options = {});
  ~PgCredentialStore() override;

  Status Insert(const LeaseRow& lease) override;
  Result<std::optional<LeaseRow>> Get(const std::string& role) override;
  Result<std::vector<LeaseRow>> ListByState(LeaseState state) override;
  Result<std::vector<LeaseRow>> ListBySession(const std::string& sid) override;
  Result<bool> BeginRevoke(const std::string& role, const std::string& reason) override;
  Result<bool> FinishRevoke(const std::string& role, int64_t now_ms) override;
  Result<bool> Renew(const std::string& role, int64_t expires_ms) override;

 private:
  explicit PgCredentialStore(std::unique_ptr<PgDb> db) : db_(std::move(db)) {}
  Result<bool> Changed(const PgRows& rows, const std::string& role);
  std::unique_ptr<PgDb> db_;
};

}  // namespace custody::store
