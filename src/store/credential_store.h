// CredentialStore: the leases of just-in-time database credentials (credentials/, issue #23).
// One row per PostgreSQL role Custody created for a session: who it is for (session, root
// session, agent, initiator), the decision that allowed it, what it reaches (database, access
// level), until when, and where its revocation stands. The password is never stored: only its
// SHA-256, so the ledger's credential.issue event can be matched to a lease.
//
// A lease moves active -> revoking -> revoked, each step a compare-and-set on the state, so two
// nodes (or the expiry loop and an explicit revoke) never both drive one revocation, and a lease
// is reported revoked only once its role has been dropped. Implementations are thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace custody::store {

enum class LeaseState : uint8_t { kActive, kRevoking, kRevoked };

// "active" | "revoking" | "revoked": how the store, the ledger and the API spell a state.
inline std::string_view LeaseStateName(LeaseState s) {
  switch (s) {
    case LeaseState::kRevoking:
      return "revoking";
    case LeaseState::kRevoked:
      return "revoked";
    case LeaseState::kActive:
      break;
  }
  return "active";
}
inline std::optional<LeaseState> ParseLeaseState(std::string_view name) {
  for (LeaseState s : {LeaseState::kActive, LeaseState::kRevoking, LeaseState::kRevoked}) {
    if (LeaseStateName(s) == name) return s;
  }
  return std::nullopt;
}

struct LeaseRow {
  std::string role;  // the PostgreSQL role name; the key
  std::string sid;
  std::string root_sid;
  std::string agent;
  std::string initiator;
  std::string action_id;        // the decision that allowed it
  uint64_t decision_index = 0;  // its ledger index
  std::string database;         // [credentials.postgres.NAME]
  std::string access;           // the access level granted
  std::string password_sha256;  // hex
  int64_t issued_ms = 0;
  int64_t expires_ms = 0;  // VALID UNTIL
  LeaseState state = LeaseState::kActive;
  std::string revoke_reason;  // why it is revoking or revoked
  int64_t revoked_ms = 0;     // when the role was dropped (0: not yet)
  bool used = false;          // not kept by the store: filled in by investigations
  bool operator==(const LeaseRow&) const = default;
};

class CredentialStore {
 public:
  virtual ~CredentialStore() = default;
  // AlreadyExists for a role already leased.
  virtual Status Insert(const LeaseRow& lease) = 0;
  virtual Result<std::optional<LeaseRow>> Get(const std::string& role) = 0;
  // Leases in `state`, oldest first (by issued_ms, then role).
  virtual Result<std::vector<LeaseRow>> ListByState(LeaseState state) = 0;
  // Every lease of session `sid`, oldest first.
  virtual Result<std::vector<LeaseRow>> ListBySession(const std::string& sid) = 0;
  // active -> revoking with `reason`; false (nothing changed) if the lease is not active.
  // NotFound for an unknown role.
  virtual Result<bool> BeginRevoke(const std::string& role, const std::string& reason) = 0;
  // revoking -> revoked at `now_ms`; false if the lease was not revoking.
  virtual Result<bool> FinishRevoke(const std::string& role, int64_t now_ms) = 0;
  // Moves an active lease's expiry; false if it is not active.
  virtual Result<bool> Renew(const std::string& role, int64_t expires_ms) = 0;
};

}  // namespace custody::store
