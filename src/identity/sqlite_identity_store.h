// SqliteIdentityStore: the embedded IdentityStore, one SQLite file (WAL, synchronous=FULL).
// Thread-safe: one connection behind a mutex.
#pragma once

#include <memory>
#include <string>
#include <unordered_map>

#include "common/mutex.h"
#include "identity/identity_store.h"

struct sqlite3;
struct sqlite3_stmt;

namespace custody::identity {

class SqliteIdentityStore final : public IdentityStore {
 public:
  static Result<std::unique_ptr<SqliteIdentityStore>> Open(const std::string& path);
  ~SqliteIdentityStore() override;

  Status CreateAgent(const Agent& agent) override;
  Status UpdateAgent(const Agent& agent) override;
  Result<Agent> GetAgent(const std::string& name) override;
  Result<std::vector<Agent>> ListAgents() override;
  Status CreateSession(const Session& session) override;
  Result<Session> GetSession(const std::string& sid) override;
  Result<std::vector<Session>> SessionTree(const std::string& sid) override;
  Result<std::vector<std::string>> RevokeSessionTree(const std::string& sid,
                                                     const std::string& reason,
                                                     int64_t now) override;
  Result<std::vector<std::string>> RevokeAgentSessions(const std::string& agent,
                                                       const std::string& reason,
                                                       int64_t now) override;
  Status RevokeJti(const std::string& jti, int64_t expires_at) override;
  Result<bool> IsJtiRevoked(const std::string& jti) override;
  Status UseAssertionJti(const std::string& jti, int64_t expires_at) override;
  Status PutSigningKey(const SigningKeyRecord& key) override;
  Result<std::vector<SigningKeyRecord>> ListSigningKeys() override;

 private:
  explicit SqliteIdentityStore(sqlite3* db, std::string path) : db_(db), path_(std::move(path)) {}
  Status Exec(const char* sql) REQUIRES(mu_);
  Result<std::vector<std::string>> RevokeTreeLocked(const std::string& sid,
                                                    const std::string& reason, int64_t now)
      REQUIRES(mu_);
  Result<std::vector<Session>> TreeLocked(const std::string& sid) REQUIRES(mu_);

  Mutex mu_;
  sqlite3* db_ GUARDED_BY(mu_);
  std::string path_;
  // Prepared statements by SQL text, reused (reset) across calls: preparing costs more than
  // most of these queries. Finalized before the connection closes.
  std::unordered_map<std::string, sqlite3_stmt*> stmts_ GUARDED_BY(mu_);
};

}  // namespace custody::identity
