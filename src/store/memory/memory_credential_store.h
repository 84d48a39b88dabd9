// MemoryCredentialStore: the CredentialStore in memory, for unit tests. It answers as the SQLite
// and PostgreSQL stores do: all pass store/testing/credential_store_conformance.h. Thread-safe
// (one mutex).
#pragma once

#include <map>
#include <string>

#include "common/mutex.h"
#include "store/credential_store.h"

namespace custody::store {

class MemoryCredentialStore final : public CredentialStore {
 public:
  Status Insert(const LeaseRow& lease) override;
  Result<std::optional<LeaseRow>> Get(const std::string& role) override;
  Result<std::vector<LeaseRow>> ListByState(LeaseState state) override;
  Result<std::vector<LeaseRow>> ListBySession(const std::string& sid) override;
  Result<bool> BeginRevoke(const std::string& role, const std::string& reason) override;
  Result<bool> FinishRevoke(const std::string& role, int64_t now_ms) override;
  Result<bool> Renew(const std::string& role, int64_t expires_ms) override;

 private:
  Mutex mu_;
  std::map<std::string, LeaseRow> leases_ GUARDED_BY(mu_);  // by role
};

}  // namespace custody::store
