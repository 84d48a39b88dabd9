// PgIdentityStore: IdentityStore in PostgreSQL (component "identity", version 2): the same
// tables as identity.db (agents, sessions, revoked and used jtis, signing keys, authorization
// codes, refresh token families, consents), shared by the nodes of a deployment so that a token
// issued at one node verifies at another, a code issued at one is redeemed at another, and a
// revocation at one is seen by all.
//
// Races between nodes are settled by row locks, not by a process-wide mutex: a session insert
// holds its parent's and its agent's rows FOR SHARE while it checks and inserts, so a
// revocation (which updates those rows) either waits for it and then revokes it too, or makes
// it fail. Revoking a tree re-reads the tree after each round of updates until no live session
// is left, so a child inserted while the revocation ran is revoked in the same transaction.
//
// Signing keys: opened with a key-encryption key, the private PEM is stored wrapped
// (crypto/key_wrap.h, associated data TokenSigningKeySlot(kid)) and a row that is not wrapped, or
// that the key does not open, is refused; without one (tests, benchmarks) it is stored as PEM.
// `custody serve` always gives one. Thread-safe (PgDb's pool).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/mutex.h"
#include "common/random.h"
#include "crypto/key_wrap.h"
#include "store/identity_store.h"
#include "store/postgres/pg_db.h"
#include "store/session_read_and_count.h"

namespace custody::store {

class PgIdentityStore final : public IdentityStore {
 public:
  static Result<std::unique_ptr<PgIdentityStore>> Open(const std::string& url,
                                                       PgOptions options = {});
  // `random` (for the wrapping's nonces) must outlive the store.
  static Result<std::unique_ptr<PgIdentityStore>> Open(
      const std::string& url, std::shared_ptr<const crypto::KeyEncryptionKey> key_encryption_key,
      Random* random, PgOptions options = {});
  ~PgIdentityStore() override;

  Status CreateAgent(const identity::Agent& agent) override;
  Status UpdateAgent(const identity::Agent& agent) override;
  Result<identity::Agent> GetAgent(const std::string& name) override;
  Result<std::vector<identity::Agent>> ListAgents() override;
  Status CreateSession(const identity::Session& session) override;
  Result<identity::Session> GetSession(const std::string& sid) override;
  Result<SessionForToken> GetSessionForToken(const std::string& sid,
                                             const std::string& jti) override;
  // SessionReadAndCount::ReadAndCount in one statement: GetSessionForToken's, with the
  // attribution component's custody_count_call run in it when CountsCall holds for the row
  // read. The attribution store must be in this database (SessionReadAndCountOf checks it).
  // Concurrent calls are batched: those that arrive while kMaxCountBatches statements run go
  // together in one statement (one round trip, one transaction).
  Result<CountedSessionRead> GetSessionForTokenAndCountCall(const std::string& sid,
                                                            const std::string& jti,
                                                            const CallToCount& call);
  // Several such reads and counts in one statement (one transaction), the answers in the
  // order asked (at most kMaxCountBatch, 32); what GetSessionForTokenAndCountCall does with the
  // calls that wait together.
  struct CountRequest {
    std::string sid;
    std::string jti;
    CallToCount call;
  };
  std::vector<Result<CountedSessionRead>> GetSessionsForTokensAndCountCalls(
      const std::vector<CountRequest>& calls);
  // How many calls GetSessionForTokenAndCountCall sent in a statement with others (tests).
  uint64_t batched_counts() const { return batched_counts_.load(); }
  // host:port/database, to tell whether another store is in the same database.
  const std::string& where() const { return db_->where(); }
  Result<std::vector<identity::Session>> SessionTree(const std::string& sid) override;
  Result<std::vector<std::string>> RevokeSessionTree(const std::string& sid,
                                                     const std::string& reason,
                                                     int64_t now) override;
  Result<std::vector<std::string>> RevokeAgentSessions(const std::string& agent,
                                                       const std::string& reason,
                                                       int64_t now) override;
  Status RevokeJti(const std::string& jti, int64_t expires_at) override;
  Result<bool> IsJtiRevoked(const std::string& jti) override;
  Status UseAssertionJti(const std::string& jti, int64_t expires_at) override;
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
  PgIdentityStore(std::unique_ptr<PgDb> db, std::shared_ptr<const crypto::KeyEncryptionKey> kek,
                  Random* random)
      : db_(std::move(db)), kek_(std::move(kek)), random_(random) {}
  struct PendingCount;
  // One statement for the batch's calls; the answers in the batch's order.
  std::vector<Result<CountedSessionRead>> CountBatch(const std::vector<PendingCount*>& batch);

  std::unique_ptr<PgDb> db_;
  // Counted session reads waiting for a statement, and the statements running. One at a time
  // per node measured best (docs/PERFORMANCE.md): with two, their batches mostly wait for each
  // other's session row locks; fewer authorizations per second, p99 ~23 ms -> 140-170 ms.
  static constexpr int kMaxCountBatches = 1;
  static constexpr size_t kMaxCountBatch = 32;
  Mutex count_mu_;
  CondVar count_done_;
  std::vector<PendingCount*> count_queue_ GUARDED_BY(count_mu_);
  int counts_in_flight_ GUARDED_BY(count_mu_) = 0;
  std::atomic<uint64_t> batched_counts_{0};
  const std::shared_ptr<const crypto::KeyEncryptionKey> kek_;  // null: keys stored as PEM
  Random* const random_;                                       // with kek_
};

}  // namespace custody::store
