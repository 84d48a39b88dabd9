// SqliteCredentialStore: the credential leases in <data_dir>/credentials.db (schema version 1:
// table `leases`, keyed by role). One mutex around the connection.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "common/mutex.h"
#include "store/credential_store.h"

namespace custody::store {

class SqliteDb;

class SqliteCredentialStore final : public CredentialStore {
 public:
  static Result<std::unique_ptr<SqliteCredentialStore>> Open(const std::string& path);
  ~SqliteCredentialStore() override;

  Status Insert(const LeaseRow& lease) override;
  Result<std::optional<LeaseRow>> Get(const std::string& role) override;
  Result<std::vector<LeaseRow>> ListByState(LeaseState state) override;
  Result<std::vector<LeaseRow>> ListBySession(const std::string& sid) override;
  Result<bool> BeginRevoke(const std::string& role, const std::string& reason) override;
  Result<bool> FinishRevoke(const std::string& role, int64_t now_ms) override;
  Result<bool> Renew(const std::string& role, int64_t expires_ms) override;

 private:
  explicit SqliteCredentialStore(std::unique_ptr<SqliteDb> db);
  Result<std::vector<LeaseRow>> List(const char* sql, const std::string& arg) REQUIRES(mu_);
  // An UPDATE of one lease: true if it changed a row, NotFound if the role is unknown.
  Result<bool> Update(const char* sql, const std::string& role, const std::string& text,
                      int64_t number, const std::string& doing) REQUIRES(mu_);
  Mutex mu_;
  std::unique_ptr<SqliteDb> db_ GUARDED_BY(mu_);
};

}  // namespace custody::store
