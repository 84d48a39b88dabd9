// MemoryAdminTokenStore: the AdminTokenStore in memory, for unit tests (one process only: the
// cross-process revocation of the SQLite store has no equivalent here). It answers as
// SqliteAdminTokenStore does: both pass store/testing/admin_token_store_conformance.h.
// Thread-safe (one mutex).
#pragma once

#include <map>
#include <string>

#include "common/mutex.h"
#include "store/admin_token_store.h"

namespace custody::store {

class MemoryAdminTokenStore final : public AdminTokenStore {
 public:
  Status Insert(const AdminTokenRecord& record) override;
  Result<std::optional<AdminTokenRecord>> Get(std::string_view id) override;
  Result<std::vector<AdminTokenRecord>> List() override;
  Status Revoke(std::string_view id, int64_t at_unix_ms) override;
  Status CheckWritable() override { return OkStatus(); }

 private:
  Mutex mu_;
  std::map<std::string, AdminTokenRecord, std::less<>> records_ GUARDED_BY(mu_);  // by id
};

}  // namespace custody::store
