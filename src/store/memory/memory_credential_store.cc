#include "store/memory/memory_credential_store.h"

#include <algorithm>
#include <functional>

namespace custody::store {
namespace {

std::vector<LeaseRow> Oldest(std::vector<LeaseRow> rows) {
  std::sort(rows.begin(), rows.end(), [](const LeaseRow& a, const LeaseRow& b) {
    return a.issued_ms != b.issued_ms ? a.issued_ms < b.issued_ms : a.role < b.role;
  });
  return rows;
}

}  // namespace

Status MemoryCredentialStore::Insert(const LeaseRow& lease) {
  MutexLock lock(mu_);
  if (!leases_.emplace(lease.role, lease).second) {
    return AlreadyExistsError("credential store: role " + lease.role + " is already leased");
  }
  return OkStatus();
}

Result<std::optional<LeaseRow>> MemoryCredentialStore::Get(const std::string& role) {
  MutexLock lock(mu_);
  auto it = leases_.find(role);
  if (it == leases_.end()) return std::optional<LeaseRow>();
  return std::optional<LeaseRow>(it->second);
}

Result<std::vector<LeaseRow>> MemoryCredentialStore::ListByState(LeaseState state) {
  MutexLock lock(mu_);
  std::vector<LeaseRow> out;
  for (const auto& [role, l] : leases_) {
    if (l.state == state) out.push_back(l);
  }
  return Oldest(std::move(out));
}

Result<std::vector<LeaseRow>> MemoryCredentialStore::ListBySession(const std::string& sid) {
  MutexLock lock(mu_);
  std::vector<LeaseRow> out;
  for (const auto& [role, l] : leases_) {
    if (l.sid == sid) out.push_back(l);
  }
  return Oldest(std::move(out));
}

Result<bool> MemoryCredentialStore::BeginRevoke(const std::string& role,
                                                const std::string& reason) {
  MutexLock lock(mu_);
  auto it = leases_.find(role);
  if (it == leases_.end()) return NotFoundError("no credential lease for role " + role);
  if (it->second.state != LeaseState::kActive) return false;
  it->second.state = LeaseState::kRevoking;
  it->second.revoke_reason = reason;
  return true;
}

Result<bool> MemoryCredentialStore::FinishRevoke(const std::string& role, int64_t now_ms) {
  MutexLock lock(mu_);
  auto it = leases_.find(role);
  if (it == leases_.end()) return NotFoundError("no credential lease for role " + role);
  if (it->second.state != LeaseState::kRevoking) return false;
  it->second.state = LeaseState::kRevoked;
  it->second.revoked_ms = now_ms;
  return true;
}

Result<bool> MemoryCredentialStore::Renew(const std::string& role, int64_t expires_ms) {
  MutexLock lock(mu_);
  auto it = leases_.find(role);
  if (it == leases_.end()) return NotFoundError("no credential lease for role " + role);
  if (it->second.state != LeaseState::kActive) return false;
  it->second.expires_ms = expires_ms;
  return true;
}

}  // namespace custody::store
