// MemoryIdentityStore: the IdentityStore in memory, for unit tests of the identity services and
// the modules above them (no file, no fsync). It answers as SqliteIdentityStore does: both pass
// store/testing/identity_store_conformance.h. Thread-safe (one mutex).
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <tuple>
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
  struct Family {
    identity::RefreshFamily family;
    std::string current;  // SHA-256 of the current refresh token
  };
  std::map<std::string, Family> families_ GUARDED_BY(mu_);             // by family id
  std::map<std::string, std::string> refresh_hashes_ GUARDED_BY(mu_);  // hash -> family id
  struct StoredCode {
    identity::AuthorizationCode code;
    bool reused = false;  // redeemed again after its first use
  };
  std::map<std::string, StoredCode> codes_ GUARDED_BY(mu_);  // by SHA-256 of the code
  struct BrowserState {
    std::string body;
    int64_t expires_at = 0;
  };
  // (kind, SHA-256 of the browser's secret) -> entry
  std::map<std::pair<std::string, std::string>, BrowserState> browser_states_ GUARDED_BY(mu_);
  // (client_id, issuer, initiator) -> consent
  std::map<std::tuple<std::string, std::string, std::string>, identity::Consent> consents_
      GUARDED_BY(mu_);
};

}  // namespace custody::store
