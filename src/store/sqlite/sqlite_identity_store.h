// SqliteIdentityStore: the embedded IdentityStore, one SQLite file (`identity.db`, WAL,
// synchronous=FULL), opened exclusively by the serving process.
// Thread-safe: two connections, each behind its own mutex: every write goes through the writer,
// every read (agents, sessions, revoked jtis, keys) through the reader, so reads never wait for
// a write's fsync. CreateSessionAsync and UseAssertionJtiAsync hand their rows to a writer thread
// (started on first use) that stores everything queued meanwhile in one transaction: one fsync
// for many exchanges and client authentications. A jti queued or being stored is kept in memory
// too, so its replay is refused before its first use is durable.
// The process owns the file through `identity.db.lock` (SqliteDb::Options::owner_lock_file).
#pragma once

#include <functional>
#include <memory>
#include <span>
#include <string>
#include <thread>
#include <unordered_set>
#include <vector>

#include "common/mutex.h"
#include "store/identity_store.h"
#include "store/sqlite/sqlite_db.h"

namespace custody::store {

class SqliteIdentityStore final : public IdentityStore {
 public:
  // Opens (creating it 0600) and migrates the file (store/sqlite/sqlite_schema.h).
  static Result<std::unique_ptr<SqliteIdentityStore>> Open(const std::string& path);
  // Stores the sessions still queued, then stops the writer.
  ~SqliteIdentityStore() override;

  Status CreateAgent(const identity::Agent& agent) override;
  Status UpdateAgent(const identity::Agent& agent) override;
  Result<identity::Agent> GetAgent(const std::string& name) override;
  Result<std::vector<identity::Agent>> ListAgents() override;
  Status CreateSession(const identity::Session& session) override;
  void CreateSessionAsync(identity::Session session, std::function<void(Status)> done) override;
  Result<identity::Session> GetSession(const std::string& sid) override;
  Result<std::vector<identity::Session>> SessionTree(const std::string& sid) override;
  Result<std::vector<std::string>> RevokeSessionTree(const std::string& sid,
                                                     const std::string& reason,
                                                     int64_t now) override;
  Result<std::vector<std::string>> RevokeAgentSessions(const std::string& agent,
                                                       const std::string& reason,
                                                       int64_t now) override;
  Status RevokeJti(const std::string& jti, int64_t expires_at) override;
  Result<bool> IsJtiRevoked(const std::string& jti) override;
  // Through the writer (UseAssertionJtiAsync), waiting for its answer.
  Status UseAssertionJti(const std::string& jti, int64_t expires_at) override;
  void UseAssertionJtiAsync(std::string jti, int64_t expires_at,
                            std::function<void(Status)> done) override;
  Status PurgeAssertionJtis(int64_t before) override;
  Status PutSigningKey(const identity::SigningKeyRecord& key) override;
  Result<std::vector<identity::SigningKeyRecord>> ListSigningKeys() override;
  Status CreateRefreshFamily(const identity::RefreshFamily& family,
                             const std::string& token_sha256) override;
  Result<identity::RefreshLookup> FindRefreshToken(const std::string& token_sha256) override;
  Status RotateRefreshToken(const std::string& family_id, const std::string& presented_sha256,
                            const std::string& next_sha256, const std::string& sid) override;
  Result<identity::RefreshFamily> RevokeRefreshFamily(const std::string& family_id,
                                                      const std::string& reason,
                                                      int64_t now) override;
  Status CreateAuthorizationCode(const identity::AuthorizationCode& code,
                                 const std::string& code_sha256) override;
  Result<identity::CodeRedemption> RedeemAuthorizationCode(const std::string& code_sha256) override;
  Result<bool> NoteAuthorizationCodeIssued(const std::string& code_sha256, const std::string& sid,
                                           const std::string& family_id) override;
  Status PurgeAuthorizationCodes(int64_t now, int64_t used_grace_s) override;
  Status PutBrowserState(const std::string& kind, const std::string& key_sha256,
                         const std::string& body, int64_t expires_at) override;
  Result<std::string> TakeBrowserState(const std::string& kind, const std::string& key_sha256,
                                       int64_t now) override;
  Result<std::string> GetBrowserState(const std::string& kind, const std::string& key_sha256,
                                      int64_t now) override;
  Status PurgeBrowserStates(int64_t now) override;
  Status PutConsent(const identity::Consent& consent) override;
  Result<identity::Consent> GetConsent(const std::string& initiator_issuer,
                                       const std::string& initiator,
                                       const std::string& client_id) override;
  Result<std::vector<identity::Consent>> ListConsents() override;
  Status DeleteConsent(const std::string& initiator_issuer, const std::string& initiator,
                       const std::string& client_id) override;

 private:
  SqliteIdentityStore(std::unique_ptr<SqliteDb> db, std::unique_ptr<SqliteDb> reader)
      : db_(std::move(db)), reader_(std::move(reader)) {}
  Result<std::vector<std::string>> RevokeTreeLocked(const std::string& sid,
                                                    const std::string& reason, int64_t now)
      REQUIRES(mu_);
  struct QueuedJti {
    std::string jti;
    int64_t expires_at = 0;
    std::function<void(Status)> done;
  };
  // One transaction: each jti's status, then each session's, in order. A refused jti or
  // session (AlreadyExists, FailedPrecondition) is not stored and the others are; a failed
  // write stores none.
  std::vector<Status> WriteBatchLocked(std::span<const QueuedJti> jtis,
                                       std::span<const identity::Session> sessions) REQUIRES(mu_);
  Status InsertSessionLocked(const identity::Session& session) REQUIRES(mu_);
  void WriterLoop() EXCLUDES(mu_, queue_mu_);
  // The family and its current token's hash, through the writer; its sessions (a row per
  // refresh) only `with_sessions`.
  Result<identity::RefreshFamily> ReadFamilyLocked(const std::string& family_id,
                                                   std::string* current, bool with_sessions)
      REQUIRES(mu_);

  Mutex mu_;
  // Its prepared statements are kept by SQL text and reused across calls (preparing costs more
  // than most of these queries).
  std::unique_ptr<SqliteDb> db_ PT_GUARDED_BY(mu_);  // the writer
  Mutex read_mu_;
  std::unique_ptr<SqliteDb> reader_ PT_GUARDED_BY(read_mu_);  // closed before the writer

  struct QueuedSession {
    identity::Session session;
    std::function<void(Status)> done;
  };
  Mutex queue_mu_;
  CondVar queue_cv_;
  std::vector<QueuedSession> queue_ GUARDED_BY(queue_mu_);
  std::vector<QueuedJti> jti_queue_ GUARDED_BY(queue_mu_);
  // The jtis queued or in the writer's transaction: a second use is refused at once.
  std::unordered_set<std::string> jtis_in_flight_ GUARDED_BY(queue_mu_);
  bool stopping_ GUARDED_BY(queue_mu_) = false;
  std::thread writer_ GUARDED_BY(queue_mu_);
};

}  // namespace custody::store
