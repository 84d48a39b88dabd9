#include "store/memory/memory_admin_token_store.h"

#include <algorithm>
#include <tuple>

namespace custody::store {

Status MemoryAdminTokenStore::Insert(const AdminTokenRecord& record) {
  MutexLock lock(mu_);
  if (!records_.emplace(record.id, record).second) {
    return AlreadyExistsError("token id already exists: " + record.id);
  }
  return OkStatus();
}

Result<std::optional<AdminTokenRecord>> MemoryAdminTokenStore::Get(std::string_view id) {
  MutexLock lock(mu_);
  auto it = records_.find(id);
  if (it == records_.end()) return std::optional<AdminTokenRecord>();
  return std::optional<AdminTokenRecord>(it->second);
}

Result<std::vector<AdminTokenRecord>> MemoryAdminTokenStore::List() {
  MutexLock lock(mu_);
  std::vector<AdminTokenRecord> out;
  for (const auto& [id, r] : records_) out.push_back(r);
  std::stable_sort(out.begin(), out.end(),
                   [](const AdminTokenRecord& a, const AdminTokenRecord& b) {
                     return std::tie(a.created_unix_ms, a.id) < std::tie(b.created_unix_ms, b.id);
                   });
  return out;
}

Status MemoryAdminTokenStore::Revoke(std::string_view id, int64_t at_unix_ms) {
  MutexLock lock(mu_);
  auto it = records_.find(id);
  if (it == records_.end()) return NotFoundError("no token with id " + std::string(id));
  if (!it->second.revoked_unix_ms) it->second.revoked_unix_ms = at_unix_ms;  // the first stays
  return OkStatus();
}

}  // namespace custody::store
