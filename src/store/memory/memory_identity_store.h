// MemoryIdentityStore: the IdentityStore in memory, for unit tests of the identity services and
// the modules above them (no file, no fsync). It answers as SqliteIdentityStore does: both pass
// store/testing/identity_store_conformance.h. Thread-safe (one mutex).
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "common/mutex.h"
#include "store/identity_store.h"

namespace custody::store {

class MemoryIdentityStore final : public IdentityStore {
 public:
  Status CreateAgent(const identity::Agent& agent) override;
  Status UpdateAgent(const identity::Agent& agent) override;
  Result<identity::Agent> GetAgent(const std::string& name) override;
  Result<std::vector<identity::Agent>> ListAgents() override;
  Status CreateSession(const identity::Session& session) override;
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
  Status UseAssertionJti(const std::string& jti, int64_t expires_at) override;
  Status PutSigningKey(const identity::SigningKeyRecord& key) override;
  Result<std::vector<identity::SigningKeyRecord>> ListSigningKeys() override;

 private:
  Result<std::vector<identity::Session>> TreeLocked(const std::string& sid) REQUIRES(mu_);
  std::vector<std::string> RevokeTreeLocked(const std::string& sid, const std::string& reason,
                                            int64_t now) REQUIRES(mu_);

  Mutex mu_;
  std::map<std::string, identity::Agent> agents_ GUARDED_BY(mu_);           // by name
  std::map<std::string, identity::Session> sessions_ GUARDED_BY(mu_);       // by sid
  std::vector<std::string> session_order_ GUARDED_BY(mu_);                  // sids, as created
  std::multimap<std::string, std::string> children_ GUARDED_BY(mu_);        // parent sid -> sid
  std::map<std::string, int64_t> revoked_jtis_ GUARDED_BY(mu_);             // jti -> expires_at
  std::map<std::string, int64_t> assertion_jtis_ GUARDED_BY(mu_);           // jti -> expires_at
  std::map<std::string, identity::SigningKeyRecord> keys_ GUARDED_BY(mu_);  // by kid
};

}  // namespace custody::store
