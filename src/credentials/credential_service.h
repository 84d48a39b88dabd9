// CredentialService: just-in-time database credentials bound to a Custody session (issue #23,
// docs/CREDENTIALS.md).
//
// Issue is an action like any other: AttributionService decides `Action::"issue_credential"` on
// `Database::"NAME"` (the access level and ttl under context.arguments), records the decision
// first, bounds it by the session's scopes, and a tripwire can contain on it. On allow, a lease
// is stored, a login role for that session alone is created (RoleManager), a `credential.issue`
// event is recorded (role, database, access, expiry, the password's SHA-256), and only then is
// the password handed out, once.
//
// Revocation (explicit, on expiry, on containment of the session or any ancestor) moves the
// lease to `revoking`, then drops the role; while the database cannot be reached it is retried
// with backoff, and the lease is reported `revoked` only once the drop succeeded. Events
// `credential.revoke` and, on a first failed attempt, `credential.revoke_failed`.
//
// Thread-safe. A background thread expires leases and retries revocations; the revocation
// listener only queues the revoked sessions for it. The token service, attribution service,
// store and recorder must outlive the service.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "common/error_reporter.h"
#include "common/mutex.h"
#include "common/random.h"
#include "common/status.h"
#include "credentials/role_manager.h"
#include "store/credential_store.h"

namespace custody::identity {
class TokenService;
}
namespace custody::attribution {
class AttributionService;
}
namespace custody::events {
class Recorder;
}

namespace custody::credentials {

struct AccessLevel {
  std::string grant;      // credentials/grant_template.h
  int64_t max_ttl_s = 0;  // 0: the database's max_ttl_s
};

// One [credentials.postgres.NAME] section.
struct Database {
  std::string name;
  ConnectionInfo connect;  // what a client is told to connect to
  int64_t max_ttl_s = 3600;
  int64_t connection_limit = 5;
  std::map<std::string, AccessLevel> access;  // by level
  std::shared_ptr<RoleManager> roles;
};

struct CredentialOptions {
  std::vector<Database> databases;
  std::string audience;  // the session tokens' audience ([attribution] audience), may be empty
  // How often leases are checked for expiry (a revocation of a contained session is not waited
  // for: the listener wakes the loop).
  std::chrono::milliseconds expiry_interval{1000};
  // Backoff between attempts of a revocation that failed: doubled from the first to the max.
  std::chrono::milliseconds retry_first{200};
  std::chrono::milliseconds retry_max{30000};
};

struct IssueRequest {
  std::string token;  // the agent's session token
  std::string database;
  std::string access;
  int64_t ttl_s = 0;  // 0: the longest allowed
};

struct IssuedCredential {
  store::LeaseRow lease;
  std::string password;  // handed out once; never stored
  ConnectionInfo connect;
};

// Issue was refused by policy or scopes: the decision (recorded) that refused it.
struct Refusal {
  std::string action_id;
  uint64_t ledger_index = 0;
  std::string message;
};

class CredentialService {
 public:
  static Result<std::unique_ptr<CredentialService>> Create(
      identity::TokenService& tokens, attribution::AttributionService& attribution,
      store::CredentialStore& store, events::Recorder& recorder, const Clock& clock, Random& random,
      ErrorReporter& errors, CredentialOptions options);
  ~CredentialService();

  // NotFound for an unknown database or access level; Unauthenticated for a token that does not
  // verify; PermissionDenied (with `refusal` filled in, if given) when the decision denies;
  // Unavailable when the database cannot be reached (nothing is handed out).
  Result<IssuedCredential> Issue(const IssueRequest& request, Refusal* refusal = nullptr);

  // Revokes `role` now: the lease moves to revoking and the role is dropped. Returns the lease
  // as it then is: `revoked`, or still `revoking` if the database could not be reached (the
  // background loop retries). `by`: "admin:<id>" or "session:<sid>".
  Result<store::LeaseRow> Revoke(const std::string& role, const std::string& reason,
                                 const std::string& by);
  // Moves an active lease's expiry to now + ttl_s (0: the longest allowed), never past the
  // session's expiry or the access level's maximum from now; records credential.renew.
  Result<store::LeaseRow> Renew(const std::string& role, int64_t ttl_s, const std::string& by);

  // The session a bearer token verifies as, for routes that let a session act on its own leases.
  Result<std::string> SessionOf(const std::string& token);
  Result<std::optional<store::LeaseRow>> Get(const std::string& role) { return store_.Get(role); }

  // The configured access levels, by database (what `review` dry-runs against the policies).
  std::map<std::string, std::vector<std::string>> AccessLevels() const {
    std::map<std::string, std::vector<std::string>> out;
    for (const Database& d : options_.databases)
      for (const auto& [level, a] : d.access) out[d.name].push_back(level);
    return out;
  }

  // Revocations begun and not yet completed (leases in state revoking), as last counted.
  int64_t PendingRevocations() const;
  // One pass of the background loop now: queued containments, expiries, due retries (tests).
  void RunOnce();

 private:
  CredentialService(identity::TokenService& tokens, attribution::AttributionService& attribution,
                    store::CredentialStore& store, events::Recorder& recorder, const Clock& clock,
                    Random& random, ErrorReporter& errors, CredentialOptions options);
  const Database* Find(const std::string& name) const;
  std::string NewRoleName(const std::string& sid);
  // Drops the role of a lease in `revoking`; on success records credential.revoke and moves the
  // lease to revoked. Returns whether it is revoked now.
  bool TryDrop(const store::LeaseRow& lease) EXCLUDES(mu_);
  Status RecordEvent(const std::string& kind, const store::LeaseRow& lease,
                     const std::string& extra_key = "", const std::string& extra = "");
  void BeginRevoke(const std::string& role, const std::string& reason);
  void Loop();
  void Pass() EXCLUDES(mu_);

  identity::TokenService& tokens_;
  attribution::AttributionService& attribution_;
  store::CredentialStore& store_;
  events::Recorder& recorder_;
  const Clock& clock_;
  Random& random_;
  ErrorReporter& errors_;
  const CredentialOptions options_;

  Mutex pass_mu_;  // one pass (and one drop of a role) at a time
  mutable Mutex mu_;
  CondVar cv_;
  std::vector<std::string> revoked_sids_ GUARDED_BY(mu_);  // queued by the listener
  struct Retry {
    int64_t next_ms = 0;
    std::chrono::milliseconds backoff{0};
    bool failure_recorded = false;
  };
  std::map<std::string, Retry> retries_ GUARDED_BY(mu_);  // by role, leases whose drop failed
  int64_t pending_ GUARDED_BY(mu_) = 0;
  bool stop_ GUARDED_BY(mu_) = false;
  int listener_ = -1;
  std::thread thread_;
};

}  // namespace custody::credentials
